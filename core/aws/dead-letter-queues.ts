// The DLQs in SQS and task tokens in Step Functions, behind core/dead-letters.ts's ports.
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { SendTaskFailureCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { type DeadLetter, type DeadLetterQueues, deadLetterQueueKey, QUEUE_KEYS, type RedriveResult, type TaskTokens } from '../dead-letters.ts';

/**
 * What an SQS that lacks StartMessageMoveTask answers (fauxqs: InvalidAction). AWS has had the
 * action since June 2023; these names never answer a call it knows, so they only pick the fallback.
 */
const UNSUPPORTED = new Set(['InvalidAction', 'UnsupportedOperation', 'UnknownOperationException']);
/** A copying redrive moves at most this many messages per call (the API answers within 29 s). */
const COPY_LIMIT = 2000;

export class SqsDeadLetterQueues implements DeadLetterQueues {
  constructor(
    private readonly sqs: SQSClient,
    /** Queue URL up to and including `<stack>_` (XL_QUEUE_URL_PREFIX). */
    private readonly queueUrlPrefix: string,
    /** The task queues whose DLQs to look at (all 33 in a deployment). */
    private readonly queues: readonly string[] = QUEUE_KEYS,
  ) {}

  private dlqUrl(queue: string): string {
    return this.queueUrlPrefix + deadLetterQueueKey(queue);
  }

  async nonEmpty(): Promise<{ queue: string; depth: number }[]> {
    const depths = await Promise.all(
      this.queues.map(async (queue) => {
        // In flight counts too: the pool manager's sweep hides what it reads for a moment.
        const res = await this.sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: this.dlqUrl(queue), AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
        );
        return { queue, depth: Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) };
      }),
    );
    return depths.filter((d) => d.depth > 0);
  }

  async read(queue: string, max: number, hideSeconds: number): Promise<DeadLetter[]> {
    const out: DeadLetter[] = [];
    for (let first = true; out.length < max; first = false) {
      const res = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.dlqUrl(queue),
          MaxNumberOfMessages: Math.min(10, max - out.length),
          VisibilityTimeout: hideSeconds,
          // A short poll samples only some of SQS's servers; the first read waits a second to ask all.
          WaitTimeSeconds: first ? 1 : 0,
          MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
        }),
      );
      const messages = (res.Messages ?? []).filter((m) => m.ReceiptHandle && m.MessageId);
      if (!messages.length) break;
      out.push(...messages.map((m) => letter(queue, m)));
    }
    return out;
  }

  async release(letters: DeadLetter[]): Promise<void> {
    const byQueue = new Map<string, DeadLetter[]>();
    for (const l of letters) byQueue.set(l.queue, [...(byQueue.get(l.queue) ?? []), l]);
    for (const [queue, list] of byQueue) {
      for (let i = 0; i < list.length; i += 10) {
        const batch = list.slice(i, i + 10);
        await this.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.dlqUrl(queue),
            Entries: batch.map((l, j) => ({ Id: String(j), ReceiptHandle: l.receipt, VisibilityTimeout: 0 })),
          }),
        );
      }
    }
  }

  /**
   * StartMessageMoveTask without a destination: SQS moves the DLQ's messages back to the queues they
   * came from, asynchronously, as new messages (new message ids, receive count 0). One move task
   * per queue at a time (a second start is refused while one runs); a task runs at most 36 hours.
   * It needs sqs:StartMessageMoveTask, sqs:ReceiveMessage, sqs:DeleteMessage and
   * sqs:GetQueueAttributes on the DLQ and sqs:SendMessage on the task queue (SQS Developer Guide,
   * "dead-letter queue redrive"). An SQS without the action (fauxqs) gets the same move by hand.
   */
  async redrive(queue: string): Promise<RedriveResult> {
    const url = this.dlqUrl(queue);
    const attrs = await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn', 'ApproximateNumberOfMessages'] }));
    const messages = Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0);
    try {
      const res = await this.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: attrs.Attributes?.QueueArn }));
      return { queue, mode: 'move-task', messages, ...(res.TaskHandle ? { taskHandle: res.TaskHandle } : {}) };
    } catch (err) {
      if (!UNSUPPORTED.has((err as Error).name)) throw err;
    }
    return { queue, mode: 'copied', messages: await this.copyBack(queue) };
  }

  /** The move by hand: receive, send the same body to the task queue, then delete (never lost; a failure between can leave a copy). */
  private async copyBack(queue: string): Promise<number> {
    let moved = 0;
    while (moved < COPY_LIMIT) {
      const res = await this.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: this.dlqUrl(queue), MaxNumberOfMessages: 10, VisibilityTimeout: 30, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }),
      );
      const messages = res.Messages ?? [];
      if (!messages.length) break;
      for (const m of messages) {
        await this.sqs.send(
          new SendMessageCommand({
            QueueUrl: this.queueUrlPrefix + queue,
            MessageBody: m.Body ?? '',
            ...(m.MessageAttributes && Object.keys(m.MessageAttributes).length ? { MessageAttributes: m.MessageAttributes } : {}),
          }),
        );
        await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.dlqUrl(queue), ReceiptHandle: m.ReceiptHandle! }));
        moved++;
      }
    }
    return moved;
  }
}

function letter(queue: string, m: Message): DeadLetter {
  const sent = Number(m.Attributes?.SentTimestamp);
  return {
    queue,
    messageId: m.MessageId!,
    body: m.Body ?? '',
    receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
    ...(sent ? { sentAt: new Date(sent).toISOString() } : {}),
    receipt: m.ReceiptHandle!,
  };
}

/** Task tokens the workflow may have stopped waiting for. */
const CLOSED_TOKEN_ERRORS = new Set(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist']);

export class StepFunctionsTaskTokens implements TaskTokens {
  constructor(private readonly sfn: SFNClient) {}

  async fail(token: string, error: string, cause: string): Promise<'failed' | 'closed'> {
    try {
      // SendTaskFailure caps error at 256 characters and cause at 32,768.
      await this.sfn.send(new SendTaskFailureCommand({ taskToken: token, error: error.slice(0, 256), cause: cause.slice(0, 32_768) }));
      return 'failed';
    } catch (err) {
      if (CLOSED_TOKEN_ERRORS.has((err as Error).name)) return 'closed';
      throw err;
    }
  }
}
