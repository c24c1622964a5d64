// What the drivers share about running an agent's process: its own process group (so everything it
// starts can be killed at once), the user switch, an allowlisted environment, and bounded output.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type { ErrorType } from '../../core/errors.ts';
import type { RunAs } from '../run-as.ts';

/** The only variables of the worker's environment an agent's process sees (no AWS credentials, no token). */
export const ENV_ALLOWLIST = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER', 'SHELL', 'TERM'] as const;
/** The tail of stdout (fallback output) and of stderr (failure message). */
export const TAIL_BYTES = 4 * 1024;
/** After the process exits (and its group is killed), how long to wait for its pipes to close. */
export const CLOSE_GRACE_MS = 2000;

/** Spawns `file` as the leader of a new process group (setsid), as `runAs` when given. */
export function spawnInOwnGroup(
  file: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string>; runAs?: RunAs },
): ChildProcessWithoutNullStreams {
  return spawn(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    detached: true, // setsid: the process leads a new process group whose id is its pid
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(opts.runAs ? { uid: opts.runAs.uid, gid: opts.runAs.gid } : {}),
  });
}

/** Why we ended a run ourselves: its timeout or the caller's abort. It wins over how the process ended. */
export type Interruption = { type: 'timeout' | 'transient'; message: string };

export interface ProcessGroupRun<R> {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  runAs?: RunAs;
  timeoutSeconds: number;
  signal: AbortSignal;
  /**
   * On abort, SIGTERM the group first and SIGKILL it only after this long (default: SIGKILL at
   * once), for processes that save their state when asked to stop (Claude Code its session).
   */
  abortGraceMs?: number;
  onSpawn: (pgid: number) => void;
  /** The result when the process could not be started. */
  startFailed: (err: NodeJS.ErrnoException) => R;
  /** Wires the started process's pipes; `killGroup` is for the driver's own reasons to stop it. */
  started: (child: ChildProcessWithoutNullStreams, killGroup: () => void) => void;
  /** The result once the process exited and its pipes closed (or the close grace ran out); called once. */
  conclude: (code: number | null, signal: NodeJS.Signals | null, interrupted: Interruption | undefined) => R;
  /** Clears the driver's own timers when the run settles. */
  settled?: () => void;
  /**
   * After the run, before its result is given back: kills whatever else the run's user still runs
   * (agent/run-as.ts killAllProcessesOf), where that user is this agent's alone.
   */
  reap?: () => Promise<void>;
}

/**
 * Runs `file` in a process group of its own until it ends: the group is killed on the timeout, on
 * abort and when the leader exits (leftovers die with it), and the run settles once.
 */
export function runProcessGroup<R>(run: ProcessGroupRun<R>): Promise<R> {
  return new Promise<R>((resolve) => {
    let timedOut = false;
    let aborted = false;
    let settled = false;
    let closeTimer: NodeJS.Timeout | undefined;

    const child = spawnInOwnGroup(run.file, run.args, { cwd: run.cwd, env: run.env, runAs: run.runAs });
    const pgid = child.pid;
    const killGroup = () => killProcessGroup(pgid);
    const finish = (result: R) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(closeTimer);
      clearTimeout(abortTimer);
      run.settled?.();
      run.signal.removeEventListener('abort', onAbort);
      // Nothing the run started (a `setsid` daemon too) outlives it when the caller reads the workspace.
      if (run.reap) void run.reap().then(() => resolve(result), () => resolve(result));
      else resolve(result);
    };
    let abortTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      aborted = true;
      if (!run.abortGraceMs || pgid === undefined) return killGroup();
      try {
        process.kill(-pgid, 'SIGTERM');
      } catch {
        return; // the group is gone already
      }
      abortTimer = setTimeout(killGroup, run.abortGraceMs);
    };

    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, run.timeoutSeconds * 1000);
    run.signal.addEventListener('abort', onAbort, { once: true });

    child.on('error', (err: NodeJS.ErrnoException) => {
      killGroup();
      finish(run.startFailed(err));
    });
    if (pgid === undefined) return; // 'error' follows

    run.onSpawn(pgid);
    run.started(child, killGroup);

    // On exit, whatever the process left running in its group dies too; that also closes the
    // pipes such leftovers hold, so 'close' (all output read) follows promptly.
    child.on('exit', () => {
      killGroup();
      closeTimer = setTimeout(() => {
        // Something outside the group (a setsid daemon) holds a pipe: stop reading.
        child.stdout?.destroy();
        child.stderr?.destroy();
        conclude(child.exitCode, child.signalCode);
      }, CLOSE_GRACE_MS);
    });
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => conclude(code, signal));

    const interruption = (): Interruption | undefined => {
      if (timedOut) return { type: 'timeout', message: `timed out after ${run.timeoutSeconds} s` };
      if (!aborted) return undefined;
      const reason = run.signal.reason instanceof Error ? run.signal.reason.message : String(run.signal.reason ?? 'aborted');
      return { type: 'transient', message: `stopped: ${reason}` };
    };
    const conclude = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      finish(run.conclude(code, signal, interruption()));
    };
  });
}

/** SIGKILL to a whole process group; a group that is gone already is fine. */
export function killProcessGroup(pgid: number | undefined): void {
  if (pgid === undefined) return;
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // ESRCH: the group is gone already
  }
}

/** The error type of a process that could not be started. */
export function startFailureType(err: NodeJS.ErrnoException, missingIsPermanent: boolean): ErrorType {
  if (missingIsPermanent && (err.code === 'ENOENT' || err.code === 'EACCES')) return 'permanent';
  return err.code === 'EAGAIN' || err.code === 'ENOMEM' || err.code === 'EMFILE' ? 'resource' : 'transient';
}

/** The last `bytes` bytes as text, not starting in the middle of a UTF-8 character. */
export function utf8Tail(buf: Buffer, bytes: number): string {
  let start = Math.max(0, buf.length - bytes);
  while (start < buf.length && start > 0 && (buf[start]! & 0xc0) === 0x80) start++;
  return buf.subarray(start).toString('utf8');
}

/** Keeps the last `cap` bytes written (at least; trimmed exactly on read). */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  constructor(private readonly cap: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.chunks.length > 1 && this.bytes - this.chunks[0]!.length >= this.cap) {
      this.bytes -= this.chunks.shift()!.length;
    }
  }

  toBuffer(): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
    if (all.length <= this.cap) return all;
    let start = all.length - this.cap;
    while (start < all.length && (all[start]! & 0xc0) === 0x80) start++;
    return all.subarray(start);
  }

  text(): string {
    return this.toBuffer().toString('utf8');
  }
}
