// Task tokens of .waitForTaskToken states, and the clocks AWS keeps for them.
//
// The library races a Task override against its own TimeoutSeconds timer but never tells the
// override that it lost, and it ignores HeartbeatSeconds. So each token carries:
// - a timeout timer armed with the same duration and *before* the library's timer (the override
//   runs synchronously just before the library calls setTimeout, and Node fires equal timers in
//   the order they were armed): when it fires the token is expired, so a late SendTaskSuccess gets
//   TaskTimedOut, and the pending promise is left alone for the library's timer to fail the state
//   with its own States.Timeout error (which Retry/Catch treat as AWS does);
// - a heartbeat timer, reset by SendTaskHeartbeat only, that fails the Task with
//   States.HeartbeatTimeout.
import { randomBytes } from 'node:crypto';
import { InvalidOutput, InvalidToken, TaskTimedOut } from '@aws-sdk/client-sfn';
import { apiError, overPayloadLimit, TaskError, TerminalError } from './errors.ts';

interface PendingTask {
  token: string;
  executionArn: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
  heartbeatMs?: number;
  heartbeatTimer?: NodeJS.Timeout;
  timeoutTimer?: NodeJS.Timeout;
}

// <base64url of the execution ARN>.<192 random bits>: unguessable, and it names its execution,
// so a token of a task that has ended can be told from one that never existed.
const TOKEN = /^([A-Za-z0-9_-]{1,800})\.([A-Za-z0-9_-]{32})$/;

export class TaskTokens {
  private readonly pending = new Map<string, PendingTask>();
  private readonly byExecution = new Map<string, Set<PendingTask>>();

  constructor(private readonly executionExists: (executionArn: string) => boolean) {}

  /** Registers a token before its message is sent: a worker may answer before SendMessage returns. */
  mint(executionArn: string, timeoutMs: number, heartbeatMs: number | undefined): { token: string; result: Promise<unknown> } {
    const token = `${Buffer.from(executionArn).toString('base64url')}.${randomBytes(24).toString('base64url')}`;
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    promise.catch(() => {}); // the Task may stop waiting (its message could not be sent)
    const task: PendingTask = { token, executionArn, resolve, reject, heartbeatMs };
    task.timeoutTimer = setTimeout(() => this.remove(task), timeoutMs);
    if (heartbeatMs !== undefined) this.armHeartbeat(task);
    this.pending.set(token, task);
    let set = this.byExecution.get(executionArn);
    if (!set) this.byExecution.set(executionArn, (set = new Set()));
    set.add(task);
    return { token, result: promise };
  }

  /** Forgets a token whose message could not be sent (the caller fails the Task itself). */
  cancel(token: string): void {
    const task = this.pending.get(token);
    if (task) this.remove(task);
  }

  succeed(token: string, output: string): void {
    const task = this.lookup(token);
    // Rejected outputs leave the token valid, so the worker can send a smaller one.
    if (overPayloadLimit(output)) {
      throw apiError(InvalidOutput, 'Invalid Output: output exceeds the 262144-byte limit');
    }
    let value: unknown;
    try {
      value = JSON.parse(output);
    } catch {
      throw apiError(InvalidOutput, 'Invalid Output: output is not valid JSON');
    }
    this.remove(task);
    task.resolve(value);
  }

  fail(token: string, error: string | undefined, cause: string | undefined): void {
    const task = this.lookup(token);
    this.remove(task);
    task.reject(new TaskError(error ?? '', cause ?? ''));
  }

  heartbeat(token: string): void {
    const task = this.lookup(token);
    if (task.heartbeatMs !== undefined) this.armHeartbeat(task);
  }

  /** The execution ended: its tokens are dead, and its pending Tasks settle so no timer lingers. */
  endExecution(executionArn: string): void {
    const set = this.byExecution.get(executionArn);
    if (!set) return;
    for (const task of [...set]) {
      this.remove(task);
      task.reject(new TerminalError('States.Runtime', 'the execution has ended'));
    }
  }

  private lookup(token: string): PendingTask {
    const task = typeof token === 'string' ? this.pending.get(token) : undefined;
    if (task) return task;
    const m = typeof token === 'string' ? TOKEN.exec(token) : null;
    if (m && this.executionExists(Buffer.from(m[1]!, 'base64url').toString())) {
      throw apiError(TaskTimedOut, 'Task Timed Out: Provided task does not exist anymore');
    }
    throw apiError(InvalidToken, 'Invalid Token');
  }

  private armHeartbeat(task: PendingTask): void {
    clearTimeout(task.heartbeatTimer);
    task.heartbeatTimer = setTimeout(() => {
      this.remove(task);
      task.reject(new TaskError('States.HeartbeatTimeout', `no heartbeat for ${task.heartbeatMs! / 1000} seconds`));
    }, task.heartbeatMs);
  }

  private remove(task: PendingTask): void {
    clearTimeout(task.timeoutTimer);
    clearTimeout(task.heartbeatTimer);
    this.pending.delete(task.token);
    const set = this.byExecution.get(task.executionArn);
    if (set) {
      set.delete(task);
      if (set.size === 0) this.byExecution.delete(task.executionArn);
    }
  }
}
