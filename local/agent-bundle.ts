// The local layer's worker processes run the agent bundled, as its container does (agent/Dockerfile:
// esbuild, our TypeScript in one file, packages external), instead of through tsx: a worker is up
// in about a third of a second instead of three quarters (measured here: 0.33 s against 0.75 s to
// import everything and start), which is most of a local agent's start. esbuild takes about 50 ms,
// so the bundle is built at every layer start from the sources as they are. It is written under the
// project's node_modules/.cache (the bundle's packages resolve from there), one folder per content,
// so that layers starting at once never read each other's half-written file. XL_AGENT_BUNDLE=0 runs
// agent/main.ts through tsx as before. Each start keeps the most recently used bundles and removes the
// rest, but never one that a running layer took or a running worker was started from (local/cache-prune.ts).
import { createHash } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CACHE_KEEP, markUsed, markUsedBy, pruneCache, usedByLiveProcess } from './cache-prune.ts';
import { commandLines } from './processes.ts';

/** Folder of the bundles under the project (a path leftovers.ts recognises workers by). */
export const AGENT_BUNDLE_DIR = 'node_modules/.cache/xl-agent';

/** How a worker process is started: node's arguments after its own path. */
export type AgentCommand = string[];

/** The command of a worker running agent/main.ts through tsx (no build; slower to start). */
export const tsxAgentCommand = (projectRoot: string): AgentCommand => ['--import', 'tsx', join(projectRoot, 'agent/main.ts')];

/**
 * Builds the agent's bundle and returns the command that runs it; throws what esbuild reports when
 * the sources do not build (the layer then says so and runs them through tsx). `cacheDir` is for
 * tests: workers started from elsewhere than AGENT_BUNDLE_DIR are not found as leftovers.
 */
export async function bundleAgent(projectRoot: string, cacheDir = join(projectRoot, AGENT_BUNDLE_DIR)): Promise<AgentCommand> {
  // Loaded here: esbuild is a development dependency, and only this needs it.
  const { build } = await import('esbuild');
  const { outputFiles } = await build({
    entryPoints: [join(projectRoot, 'agent/main.ts')],
    absWorkingDir: projectRoot,
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    // As in the image: packages resolve at run time, from the project's node_modules.
    packages: 'external',
    sourcemap: 'external',
    // Written under <hash>/ once its content is known: the source map's relative paths are computed
    // from here, so this folder must be as deep.
    outfile: join(cacheDir, 'hash', 'main.mjs'),
    write: false,
    logLevel: 'silent',
  });
  const hash = createHash('sha256');
  for (const file of outputFiles) hash.update(file.contents);
  const dir = join(cacheDir, hash.digest('hex').slice(0, 16));
  const entry = join(dir, 'main.mjs');
  if (await stat(entry).catch(() => undefined)) await markUsed(dir);
  else {
    const tmp = `${dir}.${process.pid}.tmp`;
    await mkdir(tmp, { recursive: true });
    for (const file of outputFiles) await writeFile(join(tmp, basename(file.path)), file.contents);
    // A layer that started at the same moment may have put the same folder there first.
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      await rm(tmp, { recursive: true, force: true });
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
  }
  await markUsedBy(dir);
  // The processes' command lines are read only when a bundle beyond the kept ones is up for removal.
  let running: Promise<string[]> | undefined;
  const startedFrom = async (path: string) => (await (running ??= commandLines())).some((line) => line.includes(`${path}/`));
  await pruneCache(cacheDir, CACHE_KEEP, async (path) => (await usedByLiveProcess(path)) || (await startedFrom(path)));
  return ['--enable-source-maps', entry];
}
