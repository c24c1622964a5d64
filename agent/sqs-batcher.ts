// The design's Task Batching, for the agent's per-message SQS calls: deletes and visibility changes
// that come close together (within a short window) go out as one DeleteMessageBatch or
// ChangeMessageVisibilityBatch per queue. Both take up to ten entries, with Ids unique within the
// request, and answer per entry (Successful / Failed) even with HTTP 200 (SQS API reference,
// DeleteMessageBatch and ChangeMessageVisibilityBatch): a failed entry is retried alone.
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/** SQS's limit on entries per batch call. */
export const MAX_BATCH = 10;
export const DEFAULT_WINDOW_MS = 10;

interface Pending {
  receipt: string;
  seconds?: number;
  done: (err?: unknown) => void;
}

type Op = 'delete' | 'visibility';

export class SqsBatcher {
  private readonly buffers = new Map<string, { op: Op; url: string; entries: Pending[]; timer?: NodeJS.Timeout }>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly sqs: Pick<SQSClient, 'send'>,
    /** How long the first entry waits for others before its batch goes. */
    private readonly windowMs = DEFAULT_WINDOW_MS,
  ) {}

  /** Resolves once the message is deleted (rejects with the error of a delete that failed). */
  delete(url: string, receipt: string): Promise<void> {
    return this.add('delete', url, { receipt });
  }

  changeVisibility(url: string, receipt: string, seconds: number): Promise<void> {
    return this.add('visibility', url, { receipt, seconds });
  }

  /** Sends what is buffered now and waits for every batch under way (the worker's stop). */
  async flush(): Promise<void> {
    for (const key of [...this.buffers.keys()]) this.send(key);
    await Promise.allSettled([...this.inFlight]);
  }

  private add(op: Op, url: string, entry: Omit<Pending, 'done'>): Promise<void> {
    return new Promise((resolve, reject) => {
      const key = `${op} ${url}`;
      let buffer = this.buffers.get(key);
      if (!buffer) {
        buffer = { op, url, entries: [] };
        this.buffers.set(key, buffer);
      }
      buffer.entries.push({ ...entry, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (buffer.entries.length >= MAX_BATCH) this.send(key);
      else buffer.timer ??= setTimeout(() => this.send(key), this.windowMs);
    });
  }

  private send(key: string): void {
    const buffer = this.buffers.get(key);
    if (!buffer) return;
    this.buffers.delete(key);
    clearTimeout(buffer.timer);
    const p = this.call(buffer.op, buffer.url, buffer.entries).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async call(op: Op, url: string, entries: Pending[]): Promise<void> {
    // One entry: the single call (no batch to gain, and its error is the message's own).
    if (entries.length === 1) {
      const e = entries[0]!;
      await this.single(op, url, e).then(() => e.done(), (err: unknown) => e.done(err ?? new Error('failed')));
      return;
    }
    try {
      const res =
        op === 'delete'
          ? await this.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: entries.map((e, i) => ({ Id: String(i), ReceiptHandle: e.receipt })) }))
          : await this.sqs.send(
              new ChangeMessageVisibilityBatchCommand({
                QueueUrl: url,
                Entries: entries.map((e, i) => ({ Id: String(i), ReceiptHandle: e.receipt, VisibilityTimeout: e.seconds })),
              }),
            );
      const failed = new Map((res.Failed ?? []).map((f) => [f.Id, f]));
      await Promise.all(
        entries.map(async (e, i) => {
          const f = failed.get(String(i));
          if (!f) return e.done();
          // A sender fault (a stale receipt handle) fails the same way alone: say so; else try alone.
          if (f.SenderFault) return e.done(Object.assign(new Error(f.Message ?? f.Code ?? 'batch entry failed'), { name: f.Code ?? 'BatchEntryFailed' }));
          await this.single(op, url, e).then(() => e.done(), (err: unknown) => e.done(err ?? new Error('failed')));
        }),
      );
    } catch (err) {
      for (const e of entries) e.done(err ?? new Error('failed'));
    }
  }

  private async single(op: Op, url: string, e: Pending): Promise<void> {
    if (op === 'delete') await this.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: e.receipt }));
    else await this.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: e.receipt, VisibilityTimeout: e.seconds }));
  }
}

/** XL_BATCH: on unless "0" or "false". */
export function batchingEnabled(raw: string | undefined): boolean {
  return raw !== '0' && raw !== 'false';
}
