// `xl validate`: a plan file checked offline by the same schema the API uses (core/plan.ts), each
// error placed at the file's line and column. Both formats go through the yaml package, whose
// Document keeps every node's source range (JSON is YAML 1.2 flow syntax); JSON.parse stays the
// judge of what a .json file means, so yaml only lends the positions.
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { parsePlan } from '../core/plan.ts';
import { ValidationError } from '../core/errors.ts';
import { SourceMap } from '../core/plan-source.ts';

export { SourceMap };

export interface PlanProblem {
  /** JSON Pointer into the plan ('' is the whole plan); absent for a syntax error. */
  pointer?: string;
  line: number;
  column: number;
  message: string;
}

export interface PlanCheck {
  file: string;
  valid: boolean;
  /** The file's value as written (when its syntax is sound), and the plan it parses to (when valid). */
  value?: unknown;
  plan?: unknown;
  problems: PlanProblem[];
}

const isYaml = (file: string) => /\.ya?ml$/i.test(file);

/** Line and column (1-based) of a character offset. */
function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}

/** Why a plan file cannot be read, in words, for the error codes a user meets; others keep Node's message. */
const UNREADABLE: Record<string, string> = { ENOENT: 'no such file', EISDIR: 'it is a directory', EACCES: 'permission denied' };

/** What a plan file holds; an unreadable one throws a message that names the file and why, not Node's error code. */
export async function readPlanFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const why = UNREADABLE[(err as NodeJS.ErrnoException).code ?? ''] ?? (err as Error).message;
    throw new Error(`cannot read the plan file ${file}: ${why}`, { cause: err });
  }
}

/** Reads and checks a plan file; never throws for a bad plan (only for an unreadable file). */
export async function checkPlanFile(file: string): Promise<PlanCheck> {
  return checkPlanText(await readPlanFile(file), file);
}

export function checkPlanText(text: string, file: string): PlanCheck {
  let value: unknown;
  if (isYaml(file)) {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines });
    if (doc.errors.length) {
      const problems = doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
        return { line: pos.line, column: pos.col, message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '') };
      });
      return { file, valid: false, problems };
    }
    value = doc.toJS();
  } else {
    try {
      value = JSON.parse(text);
    } catch (err) {
      // V8 names the offset ("... in JSON at position 11"); its line is what a person needs.
      const message = (err as Error).message;
      const offset = /at position (\d+)/.exec(message)?.[1];
      const at = offset === undefined ? { line: 1, column: 1 } : position(text, Number(offset));
      return { file, valid: false, problems: [{ ...at, message: message.replace(/\s*\(line \d+ column \d+\)$/, '') }] };
    }
  }
  try {
    return { file, valid: true, value, plan: parsePlan(value), problems: [] };
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return { file, valid: false, value, problems: locateDetails(text, err.details ?? []) };
  }
}

/** Places the API's or the schema's validation details ({ path, message }) in the source text. */
export function locateDetails(text: string, details: { path: string; message: string }[]): PlanProblem[] {
  const map = new SourceMap(text);
  return details.map((d) => ({ pointer: d.path, ...map.locate(d.path), message: d.message }));
}

/** `file:line:column: /pointer: message`, the form editors and terminals link to. */
export function formatProblem(file: string, p: PlanProblem): string {
  return `${file}:${p.line}:${p.column}: ${p.pointer !== undefined ? `${p.pointer || '/'}: ` : ''}${p.message}`;
}
