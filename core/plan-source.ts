// Where a JSON Pointer into a plan is in the plan's source text (JSON or YAML): for `xl validate`
// and the console, which both place the API's validation errors at their lines. No Node APIs here:
// the console's browser bundle includes it.
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';

/** Line and column (1-based) of each JSON Pointer in a plan's source text. */
export class SourceMap {
  private readonly lines = new LineCounter();
  private readonly root: Node | null;

  constructor(text: string) {
    const doc = parseDocument(text, { lineCounter: this.lines, keepSourceTokens: false });
    this.root = doc.errors.length ? null : (doc.contents as Node | null);
  }

  /**
   * Where the pointer's node starts; for a member that is missing (a required field), where the
   * nearest enclosing node starts, so the error still points at the object that lacks it.
   */
  locate(pointer: string): { line: number; column: number } {
    let node: Node | null = this.root;
    let at = node?.range?.[0] ?? 0;
    const segments = pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    for (const segment of segments) {
      let next: Node | null | undefined;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === segment);
        next = (pair?.value as Node | null) ?? (pair?.key as Node | null);
      } else if (isSeq(node)) {
        next = node.items[Number(segment)] as Node | undefined;
      }
      if (!next?.range) break;
      node = next;
      at = next.range[0];
    }
    const { line, col } = this.lines.linePos(at);
    return { line, column: col };
  }
}
