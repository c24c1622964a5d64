// Each Lambda handler bundled as deployed (BUNDLE_OPTIONS: minified ESM, AWS SDK inside) and its
// cold import time. Part of `npm run bench`; on its own, `node --import tsx bench/bundles.ts` also
// prints what each bundle carries, by package (from esbuild's metafile).
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { BUNDLE_OPTIONS } from '../infra/constructs/functions.ts';

const ROOT = resolve(import.meta.dirname, '..');
const run = promisify(execFile);
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.ceil(values.length / 2) - 1]!;

export interface BundleFigures {
  /** Minified size of each handler's bundle (KB), source map not counted. */
  bundleKb: Record<string, number>;
  /** Median cold import of each bundle in a fresh Node process (ms), less that of an empty module. */
  coldImportMs: Record<string, number>;
  /** What each bundle carries: KB per npm package (or per project folder), largest first. */
  contents: Record<string, Record<string, number>>;
}

/** The npm package (or the project folder) a bundled input belongs to. */
function owner(input: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
  return pkg ? pkg[1]! : input.split('/').slice(0, 2).join('/');
}

function contentsOf(metafile: Metafile): Record<string, number> {
  const bytes: Record<string, number> = {};
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) bytes[owner(input)] = (bytes[owner(input)] ?? 0) + bytesInOutput;
  }
  return Object.fromEntries(
    Object.entries(bytes)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => [k, round(v / 1024)]),
  );
}

export async function bundleFigures(dir: string, coldImports: number): Promise<BundleFigures> {
  await mkdir(dir, { recursive: true });
  const entries = (await readdir(join(ROOT, 'functions'))).filter((f) => f.endsWith('.ts')).sort();
  await writeFile(join(dir, 'empty.mjs'), 'export const handler = async () => ({});\n');
  const importMs = async (file: string) => {
    const times: number[] = [];
    for (let i = 0; i < coldImports; i++) {
      const { stdout } = await run(process.execPath, [
        '--input-type=module',
        '-e',
        `const t = performance.now(); await import(${JSON.stringify(file)}); console.log(performance.now() - t);`,
      ]);
      times.push(Number(stdout.trim()));
    }
    return median(times);
  };
  const empty = await importMs(join(dir, 'empty.mjs'));
  const figures: BundleFigures = { bundleKb: {}, coldImportMs: {}, contents: {} };
  for (const entry of entries) {
    const name = basename(entry, '.ts');
    const outfile = join(dir, `${name}.mjs`);
    const { metafile } = await build({ ...BUNDLE_OPTIONS, mainFields: [...BUNDLE_OPTIONS.mainFields], entryPoints: [join(ROOT, 'functions', entry)], outfile, metafile: true, logLevel: 'error' });
    figures.bundleKb[name] = round((await stat(outfile)).size / 1024);
    figures.coldImportMs[name] = round((await importMs(outfile)) - empty);
    figures.contents[name] = contentsOf(metafile);
  }
  return figures;
}

if (import.meta.filename === process.argv[1]) {
  const top = Number(process.argv.find((a) => a.startsWith('--top='))?.slice('--top='.length) ?? 12);
  const figures = await bundleFigures(mkdtempSync(join(tmpdir(), 'xl-bundles-')), 5);
  for (const [name, kb] of Object.entries(figures.bundleKb)) {
    console.log(`${name}: ${kb} KB, +${figures.coldImportMs[name]} ms cold import`);
    for (const [what, size] of Object.entries(figures.contents[name]!).slice(0, top)) console.log(`  ${String(size).padStart(6)} KB  ${what}`);
  }
}
