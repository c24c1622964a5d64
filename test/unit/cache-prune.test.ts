// The local layer's caches keep the most recently used entries, and never an agent bundle a running
// layer took or a running worker was started from.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_BUNDLE_DIR, bundleAgent } from '../../local/agent-bundle.ts';
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
    const root = join(ROOT, AGENT_BUNDLE_DIR);
    const names = Array.from({ length: CACHE_KEEP + 2 }, (_, i) => `0000test${String(i).padStart(8, '0')}`);
    for (const [i, name] of names.entries()) {
      mkdirSync(join(root, name), { recursive: true });
      const at = new Date(Date.now() - (i + 1) * HOUR);
      utimesSync(join(root, name), at, at);
    }
    const held = names.at(-1)!; // the oldest, but a layer that lives (this process) took it
    await markUsedBy(join(root, held));
    try {
      const entry = (await bundleAgent(ROOT)).at(-1)!;
      expect(readdirSync(join(entry, '..'))).toContain(`layer-${process.pid}`);
      // The held one stays; of the rest, the newest (the current bundle among them) and no more.
      expect(existsSync(join(root, held))).toBe(true);
      expect(existsSync(join(root, names.at(-2)!))).toBe(false);
      const left = readdirSync(root).filter((name) => !name.endsWith('.tmp') && name !== held);
      expect(left.length).toBeLessThanOrEqual(CACHE_KEEP);
      expect(left).toContain(entry.split('/').at(-2));
    } finally {
      for (const name of names) rmSync(join(root, name), { recursive: true, force: true });
    }
  });
});
