// The agent's warm mirrors (the design's Affinity Scheduling: an agent that ran a repository
// before clones it again fetching only what is new). One bare mirror per repository and
// credentials secret, in a directory of the worker's (mode 0700: the command's user, when commands
// run as another one, cannot read it, nor another task's repository through it). Bounded by total
// size: past XL_MIRROR_MAX_MB the least recently used mirrors go.
//
// A mirror is keyed by repository and secret name together, and it always fetches from the origin
// with the task's own credentials before a clone, so a task never gets through a mirror what its
// credentials would not give it.
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { exists } from '../fs.ts';

export const DEFAULT_MIRROR_MAX_MB = 2048;

export interface MirrorOptions {
  /** The worker's own directory for mirrors; created 0700. */
  root: string;
  maxBytes?: number;
  /** A mirror could not be used (the clone fell back to the origin). */
  onTrouble?: (repository: string, message: string) => void;
}

interface Entry {
  dir: string;
  bytes: number;
  lastUsed: number;
  /** The use under way (fetch and clone): uses of one mirror run one at a time, and it is not evicted meanwhile. */
  busy?: Promise<unknown>;
}

export class RepositoryMirrors {
  private readonly entries = new Map<string, Entry>();
  private ready: Promise<void> | undefined;
  readonly maxBytes: number;

  constructor(private readonly opts: MirrorOptions) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_MIRROR_MAX_MB * 2 ** 20;
  }

  /**
   * Runs `fn` with the repository's mirror directory (`fresh`: it does not exist yet; `fn` makes
   * it). A failing `fn` drops the mirror: it may be half-made.
   */
  async use<T>(repository: string, secret: string | undefined, fn: (dir: string, fresh: boolean) => Promise<T>): Promise<T> {
    this.ready ??= mkdir(this.opts.root, { recursive: true, mode: 0o700 }).then(() => undefined);
    await this.ready;
    const key = createHash('sha256').update(`${repository}\0${secret ?? ''}`).digest('hex').slice(0, 32);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { dir: join(this.opts.root, `${key}.git`), bytes: 0, lastUsed: 0 };
      this.entries.set(key, entry);
    }
    const e = entry;
    while (e.busy) await e.busy.catch(() => undefined);
    this.entries.set(key, e); // evicted while this use waited: counted again
    const work = (async () => {
      const fresh = !(await exists(e.dir));
      try {
        const out = await fn(e.dir, fresh);
        e.lastUsed = Date.now();
        e.bytes = await du(e.dir);
        return out;
      } catch (err) {
        await rm(e.dir, { recursive: true, force: true });
        e.bytes = 0;
        throw err;
      }
    })();
    e.busy = work;
    try {
      return await work;
    } finally {
      e.busy = undefined;
      await this.evict();
    }
  }

  /** Total bytes kept. */
  get totalBytes(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  warn(repository: string, message: string): void {
    this.opts.onTrouble?.(repository, message);
  }

  /** Least recently used first, never one in use, until the total fits. */
  private async evict(): Promise<void> {
    const idle = [...this.entries.entries()].filter(([, e]) => !e.busy).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, e] of idle) {
      if (this.totalBytes <= this.maxBytes) return;
      this.entries.delete(key);
      await rm(e.dir, { recursive: true, force: true });
    }
  }

  /** Removes every mirror (the worker's stop). */
  async clear(): Promise<void> {
    this.entries.clear();
    await rm(this.opts.root, { recursive: true, force: true });
  }
}

/** Bytes on disk under a directory (a mirror: a few hundred files at most once packed). */
async function du(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const d of entries) {
    const p = join(dir, d.name);
    if (d.isDirectory()) total += await du(p);
    else if (d.isFile()) total += (await stat(p)).size;
  }
  return total;
}

/** XL_MIRROR_MAX_MB as bytes (0 turns mirrors off: undefined). */
export function mirrorMaxBytes(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return DEFAULT_MIRROR_MAX_MB * 2 ** 20;
  const mb = Number(raw);
  if (!Number.isFinite(mb) || mb < 0) throw new Error(`XL_MIRROR_MAX_MB must be a non-negative number of megabytes, got "${raw}"`);
  return mb === 0 ? undefined : mb * 2 ** 20;
}
