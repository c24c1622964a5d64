// Canonical JSON: JSON.stringify's text with every object's keys sorted, so that equal values give
// equal text whatever order their keys came in (result-cache.ts hashes it into cache keys). The same
// text safe-stable-stringify 2.5 gives by default, which wrote the keys before (so keys already
// stored still match): keys in code unit order, toJSON honoured, undefined, functions and symbols left
// out of objects and null in arrays, non-finite numbers null, a bigint as its digits, a cycle
// "[Circular]". Its own few lines: the library was 7.5 KB of each Lambda bundle.
export function canonicalJson(value: unknown): string | undefined {
  const seen: object[] = [];
  const write = (v: unknown, key: string, inArray: boolean): string | undefined => {
    if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') v = (v as { toJSON(key: string): unknown }).toJSON(key);
    switch (typeof v) {
      case 'string':
        return JSON.stringify(v);
      case 'number':
        return Number.isFinite(v) ? JSON.stringify(v) : 'null';
      case 'boolean':
        return v ? 'true' : 'false';
      case 'bigint':
        return String(v);
      case 'object': {
        if (v === null) return 'null';
        if (seen.includes(v)) return '"[Circular]"';
        seen.push(v);
        let text: string;
        if (Array.isArray(v)) {
          text = `[${v.map((item, i) => write(item, String(i), true) ?? 'null').join(',')}]`;
        } else {
          const members: string[] = [];
          for (const k of Object.keys(v).sort()) {
            const member = write((v as Record<string, unknown>)[k], k, false);
            if (member !== undefined) members.push(`${JSON.stringify(k)}:${member}`);
          }
          text = `{${members.join(',')}}`;
        }
        seen.pop();
        return text;
      }
      default: // undefined, a function, a symbol
        return inArray ? 'null' : undefined;
    }
  };
  return write(value, '', false);
}
