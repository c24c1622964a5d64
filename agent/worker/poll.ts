// Taking work: the agent's own direct queue first (affinity: core/affinity.ts), then its type's
// queues high before normal before low, never more messages in flight than the agent has slots.
// Each message taken goes to `handle` (claim.ts). One receive takes up to the free slots (at most
// 10, SQS's limit): a burst of small tasks fills every free slot in one call. An agent never holds
// more messages than slots: a message held unstarted keeps its visibility while other agents idle.
import { CreateQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { directQueueName, PRIORITIES, type Priority, queueKey } from '../../core/agent-types.ts';
import { DirectQueues } from '../../core/aws/direct-queues.ts';
import { DISPATCHED_AT_ATTRIBUTE } from '../custody.ts';
import type { Received } from './claim.ts';
import type { WorkerContext } from './context.ts';

export const LONG_POLL_SECONDS = 20;

interface QueueRef {
  url: string;
  priority: Priority;
  /** The agent's direct queue: what cannot be taken goes back to the type's queue. */
  direct?: boolean;
}

const DEFAULT_AFFINITY_WAIT_MS = 2000;

export class Poller {
  /** Messages taken and not yet done with. */
  inFlight = 0;
  private queues: QueueRef[];
  private readonly direct: DirectQueues;
  private readonly longPolls = new Map<string, Promise<number>>();
  private readonly pollAbort = new AbortController();
  private slotWaiter: (() => void) | undefined;
  private wakeLoop: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly ctx: WorkerContext,
    /** Resolves when the worker stops: an outstanding long poll no longer holds the loop. */
    private readonly stopSignal: Promise<void>,
    private readonly handle: (queueUrl: string, m: Received) => Promise<void>,
  ) {
    const { config } = ctx;
    this.direct = new DirectQueues(ctx.deps.sqs, ctx.deps.executions, config.queueUrlPrefix);
    this.queues = PRIORITIES.map((priority) => ({ url: config.queueUrlPrefix + queueKey(config.agentType, priority), priority }));
  }

  /**
   * Creates the agent's direct queue (affinity). Under the stack's queue prefix, so the stack's
   * grants name it; without it (no permission, an emulator without CreateQueue) the agent works as
   * before and Gate never prefers it.
   */
  async openDirectQueue(): Promise<void> {
    const { ctx } = this;
    const { config } = ctx;
    const base = config.queueUrlPrefix.slice(0, config.queueUrlPrefix.lastIndexOf('/') + 1);
    const name = directQueueName(config.queueUrlPrefix.slice(base.length), config.agentType, config.agentId);
    try {
      const res = await ctx.deps.sqs.send(
        new CreateQueueCommand({
          QueueName: name,
          // SSE with SQS-owned keys, as the stack's queues; messages live no longer than a day.
          Attributes: { VisibilityTimeout: String(ctx.visibilitySeconds), MessageRetentionPeriod: '86400', SqsManagedSseEnabled: 'true' },
        }),
      );
      if (!res.QueueUrl) return;
      // Addressed as the type's queues are (an emulator may answer a host of its own naming).
      const url = base + name;
      ctx.directQueueUrl = url;
      this.queues = [{ url, priority: 'high', direct: true }, ...this.queues];
    } catch (err) {
      ctx.warnSparse('direct-queue', 'could not create the agent\'s direct queue; affinity is off for this agent', err);
    }
  }

  /** At the drain: what is left in the direct queue goes back to the type's queues, then the queue goes. */
  async closeDirectQueue(): Promise<void> {
    const { ctx } = this;
    const url = ctx.directQueueUrl;
    if (!url) return;
    ctx.directQueueUrl = undefined;
    this.queues = this.queues.filter((q) => !q.direct);
    try {
      await this.direct.reclaim(url);
    } catch (err) {
      ctx.warnSparse('direct-queue', 'could not close the agent\'s direct queue', err);
    }
  }

  /** A message of the direct queue this agent cannot take goes to its type's queue (core/aws/direct-queues.ts). */
  private async sendBack(url: string, m: Received): Promise<void> {
    try {
      await this.direct.sendBack(url, m);
      this.ctx.log.debug('sent a direct message back to its type queue', { messageId: m.MessageId });
    } catch (err) {
      // It stays, and comes back to this agent after its visibility timeout.
      this.ctx.warnSparse('direct-queue', 'could not send a direct message back to its type queue', err);
    }
  }

  /**
   * All slots taken for the affinity wait: what waits in the direct queue goes back to the type's
   * queues, where any agent may take it.
   */
  private async releaseDirect(): Promise<void> {
    const url = this.ctx.directQueueUrl;
    if (!url || this.longPolls.has(url)) return;
    const messages = await this.receive(url, 0, 10);
    await Promise.all(messages.map((m) => this.sendBack(url, m)));
  }

  private get free(): number {
    return this.ctx.config.slots - this.inFlight;
  }

  /**
   * Until the worker stops. High before normal before low: short polls in priority order while
   * they find messages (at the start, and whenever slots free up after all were taken); when all
   * are empty, one long poll per queue at once, taking what comes, and a new long poll for each
   * that answers. A queue with a long poll outstanding is not short-polled (a message arriving
   * there goes to that poll).
   */
  async run(): Promise<void> {
    const { ctx } = this;
    let shortPoll = true;
    let failures = 0;
    while (!ctx.stopping) {
      try {
        if (this.free <= 0) {
          if (!ctx.directQueueUrl) await this.waitForSlot();
          else {
            const waitMs = ctx.config.affinityWaitMs ?? DEFAULT_AFFINITY_WAIT_MS;
            let timer: NodeJS.Timeout | undefined;
            const timedOut = await Promise.race([
              this.waitForSlot().then(() => false),
              new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), waitMs))),
            ]);
            clearTimeout(timer);
            if (timedOut && this.free <= 0) await this.releaseDirect();
          }
          shortPoll = true;
          continue;
        }
        if (shortPoll) {
          let got = 0;
          for (const q of this.queues) {
            if (ctx.stopping || this.free <= 0) break;
            if (this.longPolls.has(q.url)) continue;
            const messages = await this.receive(q.url, 0, this.free);
            got += messages.length;
            this.accept(q.url, messages);
          }
          failures = 0;
          if (got > 0) continue;
        }
        for (const q of this.queues) if (!this.longPolls.has(q.url)) this.startLongPoll(q.url);
        await Promise.race([...this.longPolls.values(), this.stopSignal]);
        // The queue whose long poll answered is polled again by a new long poll, which answers at
        // once while messages wait there: a short poll first would only add a request. The other
        // queues' long polls are still out. Priority order matters when slots free up (above).
        shortPoll = false;
      } catch (err) {
        if (ctx.stopping) break;
        failures++;
        ctx.warnSparse('receive', 'receiving messages failed; retrying', err);
        await ctx.pause(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  /** Lets a loop waiting for a slot see that the worker stops. */
  wake(): void {
    this.wakeLoop?.();
  }

  /** Resolves when every outstanding long poll has answered (what they bring is released: accept()). */
  async longPollsSettled(): Promise<void> {
    await Promise.allSettled([...this.longPolls.values()]);
  }

  /** Ends the outstanding long polls, client side only: SQS may still hand them a message (see Worker.shutdown). */
  abortLongPolls(): void {
    this.pollAbort.abort();
  }

  /** Resolves when no message is in flight. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private startLongPoll(url: string): void {
    const poll = this.receive(url, LONG_POLL_SECONDS, Math.max(1, this.free), this.pollAbort.signal).then(
      (messages) => {
        this.longPolls.delete(url);
        this.accept(url, messages);
        return messages.length;
      },
      async (err) => {
        if (!this.ctx.stopping) {
          this.ctx.warnSparse('receive', 'long poll failed; retrying', err);
          await this.ctx.pause(1000);
        }
        this.longPolls.delete(url);
        return 0;
      },
    );
    this.longPolls.set(url, poll);
  }

  private async receive(url: string, waitSeconds: number, max: number, abortSignal?: AbortSignal): Promise<Received[]> {
    const receivedAt = this.ctx.clock.now();
    const res = await this.ctx.deps.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: Math.min(10, Math.max(1, max)),
        WaitTimeSeconds: waitSeconds,
        VisibilityTimeout: this.ctx.visibilitySeconds,
        // When the state machine sent it: the task record keeps it, for dispatch latency.
        MessageSystemAttributeNames: ['SentTimestamp'],
        // A relayed copy carries the first dispatch's send time (agent/custody.ts).
        MessageAttributeNames: [DISPATCHED_AT_ATTRIBUTE],
      }),
      abortSignal ? { abortSignal } : undefined,
    );
    return (res.Messages ?? []).map((m) => ({ ...m, receivedAt }));
  }

  /** Takes each message into a free slot; one that finds no free slot goes back at once. */
  private accept(url: string, messages: Received[]): void {
    for (const m of messages) {
      if (!m.ReceiptHandle) continue;
      if (this.ctx.stopping || this.inFlight >= this.ctx.config.slots) {
        if (url === this.ctx.directQueueUrl) void this.sendBack(url, m);
        else void this.ctx.calls.changeVisibility(url, m.ReceiptHandle, 0);
        continue;
      }
      this.inFlight++;
      void this.handle(url, m).finally(() => {
        this.inFlight--;
        this.slotWaiter?.();
        if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private waitForSlot(): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.slotWaiter = undefined;
        this.wakeLoop = undefined;
        resolve();
      };
      this.slotWaiter = wake;
      this.wakeLoop = wake;
    });
  }
}
