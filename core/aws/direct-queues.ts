// Agents' direct queues (core/affinity.ts): a message that its agent cannot take (no free slot
// within the affinity wait, the agent draining, or the agent dead: the pool manager's sweep) goes
// back to its task's type queue, at the task's priority, keeping its first dispatch time.
import { DeleteMessageCommand, DeleteQueueCommand, type Message, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { queueKey } from '../agent-types.ts';
import { parseDispatch } from '../dispatch.ts';
import type { ExecutionStore } from './execution-store.ts';

/** The message attribute a relayed copy keeps its first dispatch's time in (agent/custody.ts DISPATCHED_AT_ATTRIBUTE). */
const DISPATCHED_AT = 'xl-dispatched-at';

export class DirectQueues {
  constructor(
    private readonly sqs: Pick<SQSClient, 'send'>,
    private readonly executions: Pick<ExecutionStore, 'getTask'>,
    /** Queue URL up to the stack's prefix, as the agents' config has it. */
    private readonly queueUrlPrefix: string,
  ) {}

  /**
   * One message of a direct queue sent to its task's type queue and deleted from the direct one.
   * A message that is not a dispatch, or whose task is gone, is only deleted.
   */
  async sendBack(directUrl: string, m: Message): Promise<void> {
    const msg = parseDispatch(m.Body);
    const task = msg ? await this.executions.getTask(msg.executionId, msg.taskIndex) : undefined;
    if (msg && task) {
      const dispatchedAt = m.MessageAttributes?.[DISPATCHED_AT]?.StringValue ?? m.Attributes?.SentTimestamp;
      await this.sqs.send(
        new SendMessageCommand({
          QueueUrl: this.queueUrlPrefix + queueKey(task.agentType, task.priority),
          MessageBody: m.Body,
          ...(dispatchedAt ? { MessageAttributes: { [DISPATCHED_AT]: { DataType: 'Number', StringValue: dispatchedAt } } } : {}),
        }),
      );
    }
    await this.sqs.send(new DeleteMessageCommand({ QueueUrl: directUrl, ReceiptHandle: m.ReceiptHandle }));
  }

  /**
   * Everything in a direct queue sent back, then the queue deleted (an agent's drain; the pool
   * manager's sweep of a dead agent's). Returns how many messages went back. A queue that is gone
   * already counts as done.
   */
  async reclaim(directUrl: string): Promise<number> {
    let moved = 0;
    try {
      for (let round = 0; round < 100; round++) {
        const res = await this.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: directUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            VisibilityTimeout: 30,
            MessageSystemAttributeNames: ['SentTimestamp'],
            MessageAttributeNames: [DISPATCHED_AT],
          }),
        );
        const messages = res.Messages ?? [];
        if (messages.length === 0) break;
        await Promise.all(messages.map((m) => this.sendBack(directUrl, m)));
        moved += messages.length;
      }
      await this.sqs.send(new DeleteQueueCommand({ QueueUrl: directUrl }));
    } catch (err) {
      if ((err as Error).name !== 'QueueDoesNotExist' && (err as Error).name !== 'AWS.SimpleQueueService.NonExistentQueue') throw err;
    }
    return moved;
  }
}
