// What the engines need from the worker around a task run, and what they share: running a script
// in the workspace through the command driver (the task's user, its own process group, a timeout),
// reading a file the task's process wrote, and the files the run changed.
import { constants } from 'node:fs';
import { access, lstat, open, readdir, realpath } from 'node:fs/promises';
import { delimiter, isAbsolute, join, relative } from 'node:path';
import type { Task } from '../../core/plan.ts';
import type { Driver, DriverResult } from '../drivers/types.ts';

export interface EngineContext {
  /**
   * Runs the engines' scripts (checks, test runs) exactly as a command task runs: the worker's
   * command driver, with its user switch. Without it checks are skipped and test runs fail.
   */
  commands?: Driver;
  signal: AbortSignal;
  /** As the driver's: each process group started, so the worker kills leftovers. */
  onSpawn(pgid: number): void;
  /** When the task's driver started (ms since the epoch): files changed since are the run's. */
  startedAt: number;
  now?: () => number;
  /** Where tools are looked up (default: process.env.PATH, which the command driver passes on). */
  path?: string;
}

/** Seconds left of the task's timeoutSeconds; 0 when none. */
export function secondsLeft(task: Pick<Task, 'timeoutSeconds'>, ctx: EngineContext): number {
  const used = ((ctx.now ?? Date.now)() - ctx.startedAt) / 1000;
  return Math.max(0, Math.floor(task.timeoutSeconds - used));
}

/** Runs a `/bin/sh -c` script in the workspace as the task's commands run. */
export function runScript(
  task: Pick<Task, 'id' | 'agentType'>,
  workspace: string,
  script: string,
  opts: { ctx: EngineContext; commands: Driver; env: Record<string, string>; timeoutSeconds: number },
): Promise<DriverResult> {
  const scriptTask = { id: task.id, agentType: task.agentType, command: script, timeoutSeconds: opts.timeoutSeconds, failureStrategy: 'stop', priority: 'normal' } as Task;
  return opts.commands.run(scriptTask, {
    workspace,
    input: {},
    signal: opts.ctx.signal,
    env: { XL_TASK_ID: task.id, XL_WORKSPACE: workspace, CI: '1', ...opts.env },
    onSpawn: opts.ctx.onSpawn,
  });
}

/** A shell word. */
export const shq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** An executable `name`: the workspace's node_modules/.bin first when asked, then PATH. */
export async function findTool(name: string, opts: { workspace?: string; path?: string }): Promise<string | undefined> {
  const dirs = [...(opts.workspace ? [join(opts.workspace, 'node_modules/.bin')] : []), ...(opts.path ?? process.env.PATH ?? '').split(delimiter).filter(isAbsolute)];
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      await access(file, constants.X_OK);
      if ((await lstat(file)).isDirectory()) continue;
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

export const REPORT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * A file the task's process wrote, read by the worker: inside the workspace (no link out of it),
 * a regular file, not too large. The worker may read what the task's user cannot, so a link to
 * elsewhere is refused.
 */
export async function readWorkspaceFile(workspace: string, file: string, what: string): Promise<string> {
  const text = await readWorkspaceFileIfPresent(workspace, file, what);
  if (text === undefined) throw new Error(`${what} could not be read: ENOENT`);
  return text;
}

/** The same, undefined when there is no such file. */
export async function readWorkspaceFileIfPresent(workspace: string, file: string, what: string): Promise<string | undefined> {
  const root = await realpath(workspace);
  let real: string;
  try {
    real = await realpath(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new Error(`${what} could not be read: ${code ?? (err as Error).message}`, { cause: err });
  }
  const rel = relative(root, real);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`${what} leads out of the workspace`);
  // O_NONBLOCK: a FIFO planted at the path must not hang the agent; O_NOFOLLOW: no link swapped in.
  let handle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new Error(`${what} could not be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error(`${what} is not a regular file`);
    if (stat.size > REPORT_MAX_BYTES) throw new Error(`${what} is larger than ${REPORT_MAX_BYTES / (1024 * 1024)} MiB`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** Folders that are tools' output or dependencies, not the task's work. */
const SKIPPED_DIRS = new Set(['.git', 'node_modules', '__pycache__', '.xl-tests', '.xl-check', 'target', '.venv', 'bin', 'obj']);
const MAX_ENTRIES = 20_000;
export const MAX_FILES = 500;

/**
 * Files (relative paths, sorted) modified at or after `since` in the workspace: new and changed
 * files of a run (a cloned repository's files are older). Links are not followed.
 */
export async function changedFiles(workspace: string, since: number): Promise<string[]> {
  const found: string[] = [];
  let seen = 0;
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (++seen > MAX_ENTRIES || found.length >= MAX_FILES) return;
      const full = join(dir, e.name);
      if (e.isDirectory()) {
        if (!SKIPPED_DIRS.has(e.name)) await walk(full);
      } else if (e.isFile() && !e.name.startsWith('.xl-')) {
        const st = await lstat(full).catch(() => undefined);
        if (st && st.mtimeMs >= since) found.push(relative(workspace, full));
      }
    }
  };
  await walk(workspace);
  return found.sort();
}
