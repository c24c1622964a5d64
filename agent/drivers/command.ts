// The `command` driver (CONTRACT.md, "Command tasks"): `/bin/sh -c <command>` in the task's
// workspace, in a process group of its own so that everything it starts can be killed at once.
import { chown } from 'node:fs/promises';
import type { RunAs } from '../run-as.ts';
import { classifyProcessEnd } from '../../core/classify.ts';
import type { Task } from '../../core/plan.ts';
import { ENV_ALLOWLIST, TAIL_BYTES, TailBuffer, runProcessGroup, startFailureType, utf8Tail } from './process.ts';
import type { Driver, DriverContext, DriverResult } from './types.ts';



/** XL_INPUT is set only up to this size: the kernel caps one environment string at 128 KiB. */
export const XL_INPUT_MAX_BYTES = 64 * 1024;
/** stdout kept (its tail): enough for a 1 MiB JSON last line with room to spare. */
export const STDOUT_CAP_BYTES = 8 * 1024 * 1024;

export { EXIT_TRANSIENT } from '../../core/classify.ts';

export interface CommandDriverOptions {
  /** Where the allowlisted variables come from (default: process.env). */
  baseEnv?: NodeJS.ProcessEnv;
  stdoutCapBytes?: number;
  /** Run commands as this user (agent/run-as.ts); the workspace is handed to it first. */
  runAs?: RunAs;
  /** After each command: kill what its user still runs (see ProcessGroupRun.reap). */
  reap?: () => Promise<void>;
}

export class CommandDriver implements Driver {
  readonly name = 'command';
  private readonly baseEnv: Record<string, string>;
  private readonly stdoutCap: number;

  constructor(opts: CommandDriverOptions = {}) {
    const source = opts.baseEnv ?? process.env;
    this.baseEnv = {};
    for (const name of ENV_ALLOWLIST) {
      const value = source[name];
      if (value !== undefined) this.baseEnv[name] = value;
    }
    this.stdoutCap = opts.stdoutCapBytes ?? STDOUT_CAP_BYTES;
    this.runAs = opts.runAs;
    this.reap = opts.reap;
  }

  private readonly runAs?: RunAs;
  private readonly reap?: () => Promise<void>;

  async run(task: Task, ctx: DriverContext): Promise<DriverResult> {
    if (this.runAs) {
      // The command's user owns its workspace and nothing of the worker's.
      await chown(ctx.workspace, this.runAs.uid, this.runAs.gid);
    }
    return this.spawnCommand(task, ctx);
  }

  private spawnCommand(task: Task, ctx: DriverContext): Promise<DriverResult> {
    if (!task.command) {
      return Promise.resolve({ status: 'failed', error: { type: 'validation', message: 'the task has no command' } });
    }
    if (ctx.signal.aborted) {
      return Promise.resolve({ status: 'failed', error: { type: 'transient', message: 'aborted before start' } });
    }
    const inputJson = JSON.stringify(ctx.input);
    const env: Record<string, string> = { ...this.baseEnv, ...ctx.env };
    if (this.runAs) Object.assign(env, { HOME: ctx.workspace, USER: this.runAs.name }); // not the worker's
    if (Buffer.byteLength(inputJson) <= XL_INPUT_MAX_BYTES) env.XL_INPUT = inputJson;

    const stdout = new TailBuffer(this.stdoutCap);
    const stderr = new TailBuffer(TAIL_BYTES);
    return runProcessGroup<DriverResult>({
      ...(this.reap ? { reap: this.reap } : {}),
      file: '/bin/sh',
      args: ['-c', task.command],
      cwd: ctx.workspace,
      env,
      runAs: this.runAs,
      timeoutSeconds: task.timeoutSeconds,
      signal: ctx.signal,
      onSpawn: (pgid) => ctx.onSpawn(pgid),
      startFailed: (err) => ({ status: 'failed', error: { type: startFailureType(err, false), source: 'command', message: `could not start the command: ${err.message}` } }),
      started: (child) => {
        child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
        child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        child.stdin.on('error', () => {}); // EPIPE when the command does not read its input
        child.stdin.end(inputJson);
      },
      conclude: (code, signal, interrupted) => {
        if (interrupted) return { status: 'failed', error: { ...interrupted, source: 'command' } };
        const error = classifyProcessEnd({ code, signal, stderr: signal === null ? stderr.toBuffer().toString('utf8') : '' });
        return error ? { status: 'failed', error } : { status: 'completed', output: commandOutput(stdout.toBuffer()) };
      },
    });
  }
}

/**
 * A command's output: its last non-empty stdout line when that is a JSON object, else
 * `{ stdout: <last 4 KiB of stdout> }`.
 */
export function commandOutput(out: Buffer): Record<string, unknown> {
  const line = lastNonEmptyLine(out);
  if (line.length > 1 && line[0] === 0x7b /* { */) {
    try {
      const parsed: unknown = JSON.parse(line.toString('utf8'));
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      // not JSON: fall back to the text
    }
  }
  return { stdout: utf8Tail(out, TAIL_BYTES) };
}

const isSpace = (b: number) => b === 0x0a || b === 0x0d || b === 0x20 || b === 0x09;

function lastNonEmptyLine(buf: Buffer): Buffer {
  let end = buf.length;
  while (end > 0 && isSpace(buf[end - 1]!)) end--;
  if (end === 0) return buf.subarray(0, 0);
  const start = buf.lastIndexOf(0x0a, end - 1) + 1;
  let s = start;
  while (s < end && isSpace(buf[s]!)) s++;
  return buf.subarray(s, end);
}
