// The work queued per agent type, from its three priority queues' approximate counts: what the
// pool manager sizes the pool by, and what GET /pool and GET /health show.
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type AgentType, PRIORITIES, queueKey } from '../agent-types.ts';
import type { Backlog } from '../pool.ts';

export class QueueBacklog {
  constructor(
    private readonly sqs: SQSClient,
    /** Queue URL up to and including `<stack>_` (XL_QUEUE_URL_PREFIX). */
    private readonly queueUrlPrefix: string,
  ) {}

  async of(type: AgentType): Promise<Backlog> {
    const counts = await Promise.all(
      PRIORITIES.map(async (p) => {
        const res = await this.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: this.queueUrlPrefix + queueKey(type, p),
            AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
          }),
        );
        const visible = Number(res.Attributes?.ApproximateNumberOfMessages ?? 0);
        return { visible, inFlight: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0), high: p === 'high' ? visible : 0 };
      }),
    );
    return counts.reduce((a, b) => ({ visible: a.visible + b.visible, inFlight: a.inFlight + b.inFlight, high: a.high + b.high }));
  }
}
