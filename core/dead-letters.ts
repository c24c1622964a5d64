// Dead letters: dispatches that no agent could finish. SQS moves a task queue's message to its
// dead-letter queue (DLQ) once it has been received maxReceiveCount times without being deleted:
// agents kept dying on it (a crash, an OOM kill) or could not handle it. Such a task would otherwise
// wait for its dispatch timeout (up to two days); the sweep fails it at once, as `validation` (never
// retried: the same message would kill the next agent too), naming the queue and what happened.
// The message stays in the DLQ, where GET /dead-letters lists it and a redrive moves it back.
import { AGENT_TYPES, PRIORITIES, queueKey } from './agent-types.ts';
import { parseDispatch } from './dispatch.ts';
import { ValidationError } from './errors.ts';
import type { EventSink } from './events.ts';
import type { DeadLetterMark, DispatchMessage, TaskRecord } from './records.ts';

/** Receives of a task queue's message before SQS moves it to the DLQ (the queues' redrive policy). */
export const MAX_RECEIVE_COUNT = 5;

/** Every task queue's key (`<type>-<priority>`); its DLQ is `<key>-dlq`. */
export const QUEUE_KEYS: readonly string[] = AGENT_TYPES.flatMap((t) => PRIORITIES.map((p) => queueKey(t, p)));

export const deadLetterQueueKey = (queue: string) => `${queue}-dlq`;

/** A message in a DLQ, as one read of it found it (received, so hidden until released). */
export interface DeadLetter {
  /** The task queue it came from (`<type>-<priority>`). */
  queue: string;
  messageId: string;
  body: string;
  /** SQS's ApproximateReceiveCount: the source queue's receives, plus every read of the DLQ (this one included). */
  receiveCount: number;
  /** When it was first sent to the task queue (SentTimestamp; a redrive makes a new message). */
  sentAt?: string;
  /** To release it (or, in the copying redrive, delete it). */
  receipt: string;
}

/** What the layer's DLQs can do: the port; core/aws/dead-letter-queues.ts is the SQS adapter. */
export interface DeadLetterQueues {
  /** The task queues whose DLQs hold messages, with how many (approximate). */
  nonEmpty(): Promise<{ queue: string; depth: number }[]>;
  /** Up to `max` of a DLQ's messages, hidden from other readers for `hideSeconds` (until released). */
  read(queue: string, max: number, hideSeconds: number): Promise<DeadLetter[]>;
  /** Makes read messages visible again (they stay in the DLQ). */
  release(letters: DeadLetter[]): Promise<void>;
  /** Moves a DLQ's messages back to its task queue. */
  redrive(queue: string): Promise<RedriveResult>;
}

export interface RedriveResult {
  queue: string;
  /** `move-task`: SQS moves them asynchronously (StartMessageMoveTask); `copied`: moved one by one, done. */
  mode?: 'move-task' | 'copied';
  /** Messages in the DLQ when the move started (`move-task`), or moved (`copied`). */
  messages: number;
  /** StartMessageMoveTask's handle (to follow or cancel the move with the SQS API). */
  taskHandle?: string;
  /** Why this queue's redrive did not start (when all queues were asked). */
  error?: string;
}

/** The Step Functions side: fails a dispatch's task token. */
export interface TaskTokens {
  /** 'closed' when the workflow no longer waits for that token (TaskTimedOut, InvalidToken). */
  fail(token: string, error: string, cause: string): Promise<'failed' | 'closed'>;
}

export interface DeadLetterDeps {
  queues: DeadLetterQueues;
  executions: {
    getTask(executionId: string, index: number): Promise<TaskRecord | undefined>;
    markDeadLettered(executionId: string, index: number, mark: DeadLetterMark, now: number): Promise<boolean>;
    unmarkDeadLettered(executionId: string, index: number, mark: DeadLetterMark): Promise<boolean>;
  };
  tokens: TaskTokens;
  events: EventSink;
  maxReceiveCount?: number;
  /** Messages read per DLQ per sweep or listing (default 100). */
  readLimit?: number;
  now?: () => number;
  log?: { warn(message: string, fields?: Record<string, unknown>): void };
}

export interface DeadLetterItem {
  messageId: string;
  executionId?: string;
  taskIndex?: number;
  taskId?: string;
  dispatchSeq?: number;
  receiveCount: number;
  sentAt?: string;
  /** The task's status now. */
  taskStatus?: TaskRecord['status'];
  /** The sweep failed this dispatch's task (as validation) when it found the message here. */
  taskFailed: boolean;
  /** Why the layer cannot act on it: not a dispatch, or its task is gone. */
  note?: string;
}

export interface SweepResult {
  /** `<executionId>/<taskIndex>` of each task this sweep failed. */
  failed: string[];
  /** Messages read. */
  read: number;
}

/** How long a read hides a DLQ's messages: long enough to act on them, short enough not to hold them. */
const HIDE_SECONDS = 30;

/** SendTaskFailure's cause, naming the queue and what it means. */
export function deadLetterCause(opts: { queue: string; dlq: string; receives: number; maxReceiveCount: number; taskId: string }): string {
  return (
    `the dispatch of task ${opts.taskId} reached the dead-letter queue ${opts.dlq} (from ${opts.queue}) after its message ` +
    `was received ${opts.receives} times without a result (maxReceiveCount ${opts.maxReceiveCount}): the agents that ` +
    `took it kept dying on it or could not handle it. The message stays in ${opts.dlq}: list it with GET /dead-letters ` +
    `(xl dead-letters) and move it back with POST /dead-letters/redrive once the cause is fixed.`
  );
}

export class DeadLetterService {
  private readonly maxReceiveCount: number;
  private readonly readLimit: number;
  private readonly now: () => number;

  constructor(private readonly deps: DeadLetterDeps) {
    this.maxReceiveCount = deps.maxReceiveCount ?? MAX_RECEIVE_COUNT;
    this.readLimit = deps.readLimit ?? 100;
    this.now = deps.now ?? Date.now;
  }

  /**
   * The pool manager's round: for each dispatch in a DLQ whose task is still waiting for it (queued,
   * or running under a lease that ran out, with the same dispatchSeq), fail the task's token as
   * `validation` and mark the task, so the next round does not report it again.
   */
  async sweep(): Promise<SweepResult> {
    const result: SweepResult = { failed: [], read: 0 };
    for (const { queue } of await this.deps.queues.nonEmpty()) {
      let letters = await this.deps.queues.read(queue, this.readLimit, HIDE_SECONDS);
      // Messages there but none received: another reader (the sweep, a second listing) holds them
      // for a moment; each read waits a second for them to come back.
      for (let tries = 0; !letters.length && tries < 3; tries++) letters = await this.deps.queues.read(queue, this.readLimit, HIDE_SECONDS);
      result.read += letters.length;
      try {
        for (const letter of letters) {
          try {
            if (await this.failTaskOf(letter)) {
              const msg = parseDispatch(letter.body)!;
              result.failed.push(`${msg.executionId}/${msg.taskIndex}`);
            }
          } catch (err) {
            this.deps.log?.warn('could not act on a dead letter; the next round tries again', { queue, messageId: letter.messageId, error: (err as Error).message });
          }
        }
      } finally {
        await this.deps.queues.release(letters);
      }
    }
    return result;
  }

  private async failTaskOf(letter: DeadLetter): Promise<boolean> {
    const msg = parseDispatch(letter.body);
    if (!msg) return false;
    const task = await this.deps.executions.getTask(msg.executionId, msg.taskIndex);
    if (!task || !waitsFor(task, msg, this.now())) return false;
    const dlq = deadLetterQueueKey(letter.queue);
    // The receive count includes this read; what the task queue counted is one less.
    const receives = Math.max(this.maxReceiveCount, letter.receiveCount - 1);
    const mark: DeadLetterMark = { dispatchSeq: msg.dispatchSeq, queue: letter.queue, messageId: letter.messageId, receiveCount: receives, at: new Date(this.now()).toISOString() };
    // The mark is the right to report: of two sweeps that race, one wins it.
    if (!(await this.deps.executions.markDeadLettered(msg.executionId, msg.taskIndex, mark, this.now()))) return false;
    const cause = deadLetterCause({ queue: letter.queue, dlq, receives, maxReceiveCount: this.maxReceiveCount, taskId: task.taskId });
    try {
      await this.deps.tokens.fail(msg.taskToken, 'validation', cause);
    } catch (err) {
      // Not reported: take the mark back so that the next round tries again.
      await this.deps.executions.unmarkDeadLettered(msg.executionId, msg.taskIndex, mark).catch(() => false);
      throw err;
    }
    await this.deps.events.emit({ kind: 'task.dead-lettered', executionId: msg.executionId, taskId: task.taskId, queue: letter.queue, message: cause });
    return true;
  }

  /** GET /dead-letters: per task queue whose DLQ holds messages, what they are. Reads hide them only briefly. */
  async list(): Promise<{ queue: string; deadLetterQueue: string; depth: number; messages: DeadLetterItem[] }[]> {
    const out = [];
    for (const { queue, depth } of await this.deps.queues.nonEmpty()) {
      let letters = await this.deps.queues.read(queue, this.readLimit, HIDE_SECONDS);
      // Messages there but none received: another reader (the sweep, a second listing) holds them
      // for a moment; each read waits a second for them to come back.
      for (let tries = 0; !letters.length && tries < 3; tries++) letters = await this.deps.queues.read(queue, this.readLimit, HIDE_SECONDS);
      try {
        const messages = await Promise.all(letters.map((l) => this.describe(l)));
        out.push({ queue, deadLetterQueue: deadLetterQueueKey(queue), depth: Math.max(depth, letters.length), messages });
      } finally {
        await this.deps.queues.release(letters);
      }
    }
    return out;
  }

  private async describe(letter: DeadLetter): Promise<DeadLetterItem> {
    const base = { messageId: letter.messageId, receiveCount: letter.receiveCount, ...(letter.sentAt ? { sentAt: letter.sentAt } : {}) };
    const msg = parseDispatch(letter.body);
    if (!msg) return { ...base, taskFailed: false, note: 'not a dispatch: agents drop it once it is back on its queue' };
    const ids = { executionId: msg.executionId, taskIndex: msg.taskIndex, dispatchSeq: msg.dispatchSeq };
    const task = await this.deps.executions.getTask(msg.executionId, msg.taskIndex);
    if (!task) return { ...base, ...ids, taskFailed: false, note: 'no such task: agents drop it once it is back on its queue' };
    return { ...base, ...ids, taskId: task.taskId, taskStatus: task.status, taskFailed: task.deadLetter?.dispatchSeq === msg.dispatchSeq };
  }

  /** POST /dead-letters/redrive: one task queue's DLQ (`coder-normal`), or every one that holds messages. */
  async redrive(queue?: string): Promise<RedriveResult[]> {
    if (queue !== undefined && !QUEUE_KEYS.includes(queue)) {
      throw new ValidationError(`no task queue "${queue}": use <agentType>-<priority>, e.g. coder-normal`, [{ path: '/queue', message: 'not a task queue' }]);
    }
    if (queue !== undefined) return [await this.deps.queues.redrive(queue)];
    const out: RedriveResult[] = [];
    // One queue's refusal (a move already running there) does not hold the others back.
    for (const { queue: q, depth } of await this.deps.queues.nonEmpty()) {
      out.push(await this.deps.queues.redrive(q).catch((err: Error) => ({ queue: q, messages: depth, error: `${err.name}: ${err.message}` })));
    }
    return out;
  }
}

/**
 * Whether the task still waits for this dispatch: same dispatchSeq, queued or running, and no agent
 * holds a live lease on it (a live holder reports by itself), and not reported for this dispatch yet.
 */
export function waitsFor(task: TaskRecord, msg: DispatchMessage, now: number): boolean {
  if (task.dispatchSeq !== msg.dispatchSeq) return false;
  if (task.deadLetter?.dispatchSeq === msg.dispatchSeq) return false;
  if (task.status === 'queued') return true;
  return task.status === 'running' && (task.leaseExpiresAt ?? 0) < now;
}
