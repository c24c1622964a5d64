// Taking work: the agent's type's queues polled high before normal before low, never more messages
// in flight than the agent has slots. Each message taken goes to `handle` (claim.ts).
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { PRIORITIES, type Priority, queueKey } from '../../core/agent-types.ts';
import { DISPATCHED_AT_ATTRIBUTE } from '../custody.ts';
import type { Received } from './claim.ts';
import type { WorkerContext } from './context.ts';

const LONG_POLL_SECONDS = 20;

interface QueueRef {
  url: string;
  priority: Priority;
}

export class Poller {
  /** Messages taken and not yet done with. */
  inFlight = 0;
  private readonly queues: QueueRef[];
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
    this.queues = PRIORITIES.map((priority) => ({ url: config.queueUrlPrefix + queueKey(config.agentType, priority), priority }));
  }

  private get free(): number {
    return this.ctx.config.slots - this.inFlight;
  }

  /**
   * Until the worker stops. High before normal before low: short polls in priority order while
   * they find messages; when all are empty, one long poll per queue at once, taking what comes. A
   * queue with a long poll outstanding is not short-polled (a message arriving there goes to that
   * poll).
   */
  async run(): Promise<void> {
    const { ctx } = this;
    let shortPoll = true;
    let failures = 0;
    while (!ctx.stopping) {
      try {
        if (this.free <= 0) {
          await this.waitForSlot();
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
        const received = await Promise.race([...this.longPolls.values(), this.stopSignal.then(() => 0)]);
        shortPoll = received > 0;
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

  /** Ends the outstanding long polls (after the stop: a message they would take goes to another agent). */
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
        void this.ctx.calls.changeVisibility(url, m.ReceiptHandle, 0);
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
