// The local layer's synthesized template, kept between starts. Synthesizing the stack takes seconds
// of CPU (aws-cdk-lib, the agent image's directory hash); the template only changes when the code
// that builds it does. The key is a hash of every project file in local/synth.ts's import graph (as
// esbuild resolves it: infra/ and the core modules it imports), cdk.json (the feature flags) and
// package-lock.json (aws-cdk-lib's and every library's version). What the key leaves out: the agent
// image asset's hash in the template (a hash of the project directory), which the local layer never
// reads (its container runtimes build and tag their own image). XL_SYNTH_CACHE=0 turns it off. The
// most recently used templates are kept, the rest removed as a new one is written (local/cache-prune.ts).
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CACHE_KEEP, markUsed, pruneCache } from './cache-prune.ts';
import { synthCacheEnabled } from './switches.ts';

/** Where templates are kept: the conventional cache folder of a project's tools. */
export const SYNTH_CACHE_DIR = 'node_modules/.cache/xl-synth';

/** The files the template is built from: local/synth.ts's import graph in the project, cdk.json and package-lock.json. */
export async function synthInputs(projectRoot: string): Promise<string[]> {
  // Loaded here: esbuild is a development dependency, and only this key needs it.
  const { build } = await import('esbuild');
  const { metafile } = await build({
    entryPoints: [join(projectRoot, 'local/synth.ts')],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    // Libraries count by version (package-lock.json), not by walking them.
    packages: 'external',
    logLevel: 'silent',
    absWorkingDir: projectRoot,
  });
  return [...Object.keys(metafile.inputs), 'cdk.json', 'package-lock.json'].sort();
}

/** The cache key of the template local/synth.ts would write now. */
export async function synthKey(projectRoot: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await synthInputs(projectRoot)) {
    hash.update(file + '\0'); // relative to the project: the same key in every checkout
    hash.update(await readFile(join(projectRoot, file)));
    hash.update('\0');
  }
  return hash.digest('hex').slice(0, 32);
}

/**
 * The template for `key` if one was kept, else synthesizes with `synth` and keeps it. Written to a
 * temporary file and renamed: two layers starting at once each read a whole template.
 */
export async function cachedTemplate(projectRoot: string, synth: () => Promise<string>): Promise<{ text: string; cached: boolean }> {
  if (!synthCacheEnabled(process.env)) return { text: await synth(), cached: false };
  let key: string;
  try {
    key = await synthKey(projectRoot);
  } catch {
    // no esbuild (an installation without development dependencies): no cache
    return { text: await synth(), cached: false };
  }
  const dir = join(projectRoot, SYNTH_CACHE_DIR);
  const file = join(dir, `${key}.template.json`);
  try {
    const text = await readFile(file, 'utf8');
    await markUsed(file);
    return { text, cached: true };
  } catch {
    // not kept yet
  }
  const text = await synth();
  try {
    await mkdir(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, file);
    await pruneCache(dir, CACHE_KEEP);
  } catch {
    // a read-only project: synthesize again next time
  }
  return { text, cached: false };
}
