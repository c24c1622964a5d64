// This machine's processes as /proc shows them: the one place the local layer lists them, reads
// their command lines and asks whether a pid still runs (leftovers.ts, cache-prune.ts, layer.ts).
import { readdir, readFile } from 'node:fs/promises';

/** Every process's pid. */
export const pids = async (): Promise<number[]> => (await readdir('/proc')).filter((e) => /^\d+$/.test(e)).map(Number);

/** A process's command line, NUL-separated arguments; '' when it is gone (or a kernel thread, which has none). */
export const commandLine = (pid: number): Promise<string> => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');

/** Every process's command line (kernel threads have none and are left out). */
export async function commandLines(): Promise<string[]> {
  const all = await pids().catch(() => [] as number[]);
  return (await Promise.all(all.map(commandLine))).filter(Boolean);
}

/** Whether a pid runs, and whether this process may signal it (EPERM: it runs as another user). */
export function pidState(pid: number): 'ours' | "another user's" | 'gone' {
  if (!Number.isInteger(pid) || pid <= 0) return 'gone';
  try {
    process.kill(pid, 0);
    return 'ours';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? "another user's" : 'gone';
  }
}
