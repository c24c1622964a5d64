// Waiting on processes and conditions in tests that start real processes.
import { readFileSync } from 'node:fs';

/** Whether a process runs; a zombie (dead, not yet reaped by its new parent) does not. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls `check` until it holds; throws after `ms`. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000, stepMs = 25): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
