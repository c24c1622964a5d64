/** A validation issue's path as a JSON Pointer (RFC 6901), e.g. `/tasks/0/agentType`. */
export function toJsonPointer(path: readonly PropertyKey[]): string {
  return path.map((p) => '/' + String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('');
}
