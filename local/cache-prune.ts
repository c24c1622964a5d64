// The local layer's caches under node_modules/.cache (agent bundles, synthesized templates) gain an
// entry at each change of the sources they are built from, about 1 MB a bundle and 0.6 MB a
// template. Each layer start keeps the most recently used entries and removes the rest. An entry
// is marked used (its mtime) whenever a layer takes it. An agent bundle that a running layer took
// is never removed, even with none of its workers running (a pool scaled to zero starts them from
// it later): the layer leaves its pid in the bundle's folder.
import { readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pidState } from './processes.ts';

/** Entries each cache keeps: a few branches' worth of switching back and forth. */
export const CACHE_KEEP = 8;

/** A half-written entry (`<name>.<pid>.tmp`) older than this was left by a layer that died writing it. */
const STALE_TMP_MS = 60 * 60 * 1000;

/** Marks a cache entry as just used; an entry that is gone is fine (the next start writes it again). */
export async function markUsed(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch(() => undefined);
}

const USER_PREFIX = 'layer-';

/** Leaves this process's pid in a cache entry's folder (the entry is in use while it lives), and drops the dead ones'. */
export async function markUsedBy(dir: string, pid = process.pid): Promise<void> {
  await writeFile(join(dir, `${USER_PREFIX}${pid}`), '').catch(() => undefined);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(USER_PREFIX) && !alive(Number(name.slice(USER_PREFIX.length)))) await rm(join(dir, name), { force: true }).catch(() => undefined);
  }
}

/** Whether a process that left its pid in the folder (markUsedBy) still runs. */
export async function usedByLiveProcess(dir: string): Promise<boolean> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.some((name) => name.startsWith(USER_PREFIX) && alive(Number(name.slice(USER_PREFIX.length))));
}

/** A process that marked an entry may run as another user (a cache shared by root and a user): still a user. */
const alive = (pid: number) => pidState(pid) !== 'gone';

/**
 * Removes the entries of `dir` beyond the `keep` most recently used, except those `inUse` names,
 * and half-written ones older than an hour. Returns the names removed; never throws (a cache that
 * cannot be pruned costs disk, not a start).
 */
export async function pruneCache(dir: string, keep: number, inUse: (path: string) => boolean | Promise<boolean> = () => false): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const entries = (
    await Promise.all(names.map(async (name) => ({ name, path: join(dir, name), mtimeMs: (await stat(join(dir, name)).catch(() => undefined))?.mtimeMs })))
  ).filter((e): e is { name: string; path: string; mtimeMs: number } => e.mtimeMs !== undefined);
  const now = Date.now();
  const beyond = entries.filter((e) => !e.name.endsWith('.tmp')).sort((a, b) => b.mtimeMs - a.mtimeMs).slice(keep);
  const doomed = entries.filter((e) => e.name.endsWith('.tmp') && now - e.mtimeMs > STALE_TMP_MS);
  for (const e of beyond) if (!(await inUse(e.path))) doomed.push(e);
  const removed: string[] = [];
  for (const e of doomed) {
    if (await rm(e.path, { recursive: true, force: true }).then(() => true, () => false)) removed.push(e.name);
  }
  return removed;
}
