// The local layer's caches keep the most recently used entries, and never an agent bundle a running
// layer took or a running worker was started from.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bundleAgent } from '../../local/agent-bundle.ts';
import { CACHE_KEEP, markUsedBy, pruneCache, usedByLiveProcess } from '../../local/cache-prune.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const HOUR = 3_600_000;
const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A cache folder with `names` used at the given ages (ms ago): folders, or files for `.json`. */
function cache(entries: Record<string, number>): string {
  const dir = mkdtempSync(join(tmpdir(), 'xl-cache-'));
  made.push(dir);
  for (const [name, ageMs] of Object.entries(entries)) {
    const path = join(dir, name);
    if (name.endsWith('.json')) writeFileSync(path, '{}');
    else mkdirSync(path);
    const at = new Date(Date.now() - ageMs);
    utimesSync(path, at, at);
  }
  return dir;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((ok) => child.once('exit', ok));
  return child.pid!;
}

describe('cache pruning', () => {
  it('keeps the most recently used entries, whatever their names, and removes the rest', async () => {
    const dir = cache({ 'a.json': 5 * HOUR, 'b.json': 1 * HOUR, 'c.json': 3 * HOUR, 'd.json': 2 * HOUR, 'e.json': 4 * HOUR });
    expect((await pruneCache(dir, 2)).sort()).toEqual(['a.json', 'c.json', 'e.json']);
    expect(readdirSync(dir).sort()).toEqual(['b.json', 'd.json']);
    expect(await pruneCache(dir, 2)).toEqual([]);
  });

  it('removes a half-written entry only once it is an hour old: a layer may be writing it now', async () => {
    const dir = cache({ 'a.json': 0, 'x.json.123.tmp': 2 * HOUR, 'abc.456.tmp': 60_000 });
    expect(await pruneCache(dir, 8)).toEqual(['x.json.123.tmp']);
    expect(readdirSync(dir).sort()).toEqual(['a.json', 'abc.456.tmp']);
  });

  it('leaves an entry in use, however old', async () => {
    const dir = cache({ new: 0, old: 9 * HOUR, older: 10 * HOUR });
    expect(await pruneCache(dir, 1, async (path) => path.endsWith('/older'))).toEqual(['old']);
    expect(readdirSync(dir).sort()).toEqual(['new', 'older']);
  });

  it('takes a bundle for in use while a process that marked it lives, and drops the marks of dead ones', async () => {
    const dir = cache({ bundle: 0 });
    const bundle = join(dir, 'bundle');
    const dead = await deadPid();
    await markUsedBy(bundle, dead);
    expect(await usedByLiveProcess(bundle)).toBe(false);
    await markUsedBy(bundle); // this process: it lives
    expect(await usedByLiveProcess(bundle)).toBe(true);
    expect(readdirSync(bundle)).toEqual([`layer-${process.pid}`]);
  });

  it('the agent bundle: a start marks its own and removes only bundles beyond the newest that nothing uses', async () => {
    const root = mkdtempSync(join(tmpdir(), 'xl-agent-cache-'));
    made.push(root);
    const names = Array.from({ length: CACHE_KEEP + 3 }, (_, i) => `0000test${String(i).padStart(8, '0')}`);
    for (const [i, name] of names.entries()) {
      mkdirSync(join(root, name));
      const at = new Date(Date.now() - (i + 1) * HOUR);
      utimesSync(join(root, name), at, at);
    }
    const [kept, removed, startedFrom, held] = [names.slice(0, CACHE_KEEP - 1), names[CACHE_KEEP - 1]!, names[CACHE_KEEP]!, names[CACHE_KEEP + 1]!];
    // The oldest, but a layer that lives (this process) took it (its mark made it new: made old again).
    await markUsedBy(join(root, held));
    utimesSync(join(root, held), new Date(0), new Date(0));
    // A worker that runs from the second oldest (its command line names the bundle).
    const worker = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', join(root, startedFrom, 'main.mjs')], { stdio: 'ignore' });
    try {
      const entry = (await bundleAgent(ROOT, root)).at(-1)!;
      const current = entry.split('/').at(-2)!;
      expect(readdirSync(join(root, current))).toContain(`layer-${process.pid}`);
      expect(readdirSync(root).sort()).toEqual([...kept, current, startedFrom, held].sort());
      expect(existsSync(join(root, removed))).toBe(false);
    } finally {
      worker.kill('SIGKILL');
    }
  });
});
