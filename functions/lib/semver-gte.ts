// Stands in for semver in Lambda bundles (an esbuild alias in infra/constructs/functions.ts), about
// 28 KB of each. Its only users there are in the X-Ray SDK's dependencies, and only `gte` on plain
// versions: cls-hooked picks its context by Node's version as it loads, and the X-Ray SDK's AWS SDK v2
// patcher (unused: the handlers capture v3 clients) checks the v2 SDK's version.
const PLAIN = /^v?(\d+)\.(\d+)\.(\d+)$/;

function parts(version: string): [number, number, number] {
  const m = PLAIN.exec(version.trim());
  if (!m) throw new Error(`semver stand-in (functions/lib/semver-gte.ts): "${version}" is not a plain major.minor.patch version`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Whether version `a` is at or above `b`. */
export function gte(a: string, b: string): boolean {
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! > y[i]!;
  return true;
}
