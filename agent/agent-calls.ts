// The worker's AWS calls that must not throw: its reports to Step Functions (a closed token is no
// error: the workflow stopped waiting, or heard from us already) and its message deletes and
// visibility changes (a stale receipt handle is harmless). Each retries a little on top of the SDK.
import { SendTaskFailureCommand, SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { ChangeMessageVisibilityCommand, DeleteMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { TaskOutcome } from '../core/records.ts';
import type { SqsBatcher } from './sqs-batcher.ts';

/** SendTaskFailure caps `cause` at 32,768 characters and `error` at 256. */
const CAUSE_MAX = 32768;
const CLOSED_TOKEN_ERRORS = new Set(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist']);

export function errorName(err: unknown): string {
  return (err as Error | undefined)?.name ?? 'Error';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A few tries with a short backoff, on top of the SDK's own retries. */
export async function retry<T>(fn: () => Promise<T>, retryable: (err: unknown) => boolean = () => true, tries = 3): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i + 1 >= tries || !retryable(err)) throw err;
      await new Promise((r) => setTimeout(r, 200 * 2 ** i));
    }
  }
}

export class AgentCalls {
  constructor(
    private readonly sfn: Pick<SFNClient, 'send'>,
    private readonly sqs: Pick<SQSClient, 'send'>,
    private readonly log: { info(msg: string, fields?: Record<string, unknown>): void; debug(msg: string, fields?: Record<string, unknown>): void },
    /** The worker's sparse warning (one line per kind of trouble every 30 s). */
    private readonly warn: (kind: string, msg: string, err: unknown) => void,
    /** Deletes and visibility changes coalesced into batch calls (XL_BATCH); without it, one call each. */
    private readonly batcher?: SqsBatcher,
  ) {}

  /** Waits for the deletes and visibility changes still buffered or under way (the worker's stop). */
  async flush(): Promise<void> {
    await this.batcher?.flush();
  }

  async sendSuccess(token: string, outcome: TaskOutcome, ref: Record<string, unknown>): Promise<void> {
    await this.callback(() => this.sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(outcome) })), ref);
  }

  async sendFailure(token: string, error: { type: string; message: string }, ref: Record<string, unknown>): Promise<void> {
    await this.callback(
      () =>
        this.sfn.send(
          new SendTaskFailureCommand({ taskToken: token, error: error.type.slice(0, 256), cause: error.message.slice(0, CAUSE_MAX) }),
        ),
      ref,
    );
  }

  private async callback(send: () => Promise<unknown>, ref: Record<string, unknown>): Promise<void> {
    try {
      await retry(send, (err) => !CLOSED_TOKEN_ERRORS.has(errorName(err)));
    } catch (err) {
      const name = errorName(err);
      if (CLOSED_TOKEN_ERRORS.has(name)) {
        // The workflow stopped waiting (timeout, abort) or heard from us already.
        this.log.info('the workflow no longer waits for this task', { ...ref, error: name });
      } else {
        // Left undeleted, the message comes back and the 'finished' path reports again.
        this.warn('callback', 'could not report to Step Functions', err);
        throw err;
      }
    }
  }

  async deleteMessage(url: string, receipt: string): Promise<void> {
    const batcher = this.batcher;
    if (batcher) {
      // Not waited for: the task is reported, and a message whose delete is lost comes back and is
      // dropped as finished. The slot frees now; the delete joins the others of the window.
      void retry(() => batcher.delete(url, receipt), (err) => errorName(err) !== 'ReceiptHandleIsInvalid').catch((err: unknown) =>
        this.warn('delete', 'could not delete a message; it will be delivered again and dropped then', err),
      );
      return;
    }
    try {
      await retry(() => this.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: receipt })));
    } catch (err) {
      this.warn('delete', 'could not delete a message; it will be delivered again and dropped then', err);
    }
  }

  async changeVisibility(url: string, receipt: string, seconds: number): Promise<void> {
    try {
      if (this.batcher) await this.batcher.changeVisibility(url, receipt, seconds);
      else await this.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: receipt, VisibilityTimeout: seconds }));
    } catch (err) {
      // A receipt handle goes stale when the message was received again; harmless.
      this.log.debug('could not change a message visibility', { error: errorMessage(err) });
    }
  }
}
