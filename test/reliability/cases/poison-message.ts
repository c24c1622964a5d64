// A poison message: a dispatch that no agent can finish. With no agent of the type running, the case
// itself receives every dispatch maxReceiveCount times without deleting it (each receive is an agent
// that took the message and died holding it: its visibility ends at once), so SQS moves it to the
// type's dead-letter queue, as it does once a message's receive count exceeds maxReceiveCount
// (SQS developer guide, "Using dead-letter queues"). The pool manager's sweep must then fail each task
// as `validation`, naming the queue, at once instead of at its dispatch timeout; nothing runs; GET
// /dead-letters lists each message as handled; each execution ends as its failureStrategy says.
import { GetQueueAttributesCommand, GetQueueUrlCommand, PurgeQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type Priority, queueKey } from '#core/agent-types.ts';
import { MAX_RECEIVE_COUNT, deadLetterQueueKey } from '#core/dead-letters.ts';
import { LOCAL_REGION } from '../../../local/template.ts';
import { type Layer, waitFor } from '../../e2e/harness.ts';
import { type Expectation, type TaskCheck, addTally } from '../account.ts';
import { type ReliabilityCase, submit, tallyExecution, trialTaskId } from '../suite.ts';

const TYPE = 'security';

interface Queue {
  key: string;
  url: string;
  dlqUrl: string;
}

function sqsOf(layer: Layer): SQSClient {
  const endpoint = layer.endpoint.services?.sqs;
  if (!endpoint) throw new Error('endpoint.json lists no sqs endpoint');
  return new SQSClient({ endpoint, region: LOCAL_REGION, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
}

/** The type's queue of `priority` and its DLQ; the stack is `xl` locally (infra/constructs/queues.ts). */
async function queueOf(sqs: SQSClient, priority: Priority): Promise<Queue> {
  const key = queueKey(TYPE, priority);
  const urlOf = (name: string) => sqs.send(new GetQueueUrlCommand({ QueueName: name })).then((r) => r.QueueUrl!);
  const [url, dlqUrl] = await Promise.all([urlOf(`xl_${key}`), urlOf(`xl_${deadLetterQueueKey(key)}`)]);
  // The count this case plays out is the one the queue really has.
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['RedrivePolicy'] }));
  const policy = JSON.parse(attrs.Attributes?.RedrivePolicy ?? '{}');
  if (Number(policy.maxReceiveCount) !== MAX_RECEIVE_COUNT) {
    throw new Error(`${key}'s redrive policy is ${attrs.Attributes?.RedrivePolicy}, expected maxReceiveCount ${MAX_RECEIVE_COUNT}`);
  }
  return { key, url, dlqUrl };
}

async function depth(sqs: SQSClient, url: string): Promise<number> {
  const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
}

/**
 * Receives `queue`'s messages, never deleting them, until SQS has moved every one aside; the
 * receives per message id. Only `executionIds`' dispatches may be there.
 */
async function dieOnEvery(sqs: SQSClient, queue: Queue, executionIds: string[]): Promise<Map<string, number>> {
  const receives = new Map<string, number>();
  const deadline = Date.now() + 120_000;
  while ((await depth(sqs, queue.url)) > 0) {
    if (Date.now() > deadline) throw new Error(`${queue.key} still holds ${await depth(sqs, queue.url)} messages after 120 s of receives`);
    const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 0 }));
    for (const m of res.Messages ?? []) {
      const { executionId } = JSON.parse(m.Body!);
      if (!executionIds.includes(executionId)) throw new Error(`a dispatch of another execution on ${queue.key}: ${m.Body}`);
      receives.set(m.MessageId!, (receives.get(m.MessageId!) ?? 0) + 1);
    }
  }
  return receives;
}

export const poisonMessage: ReliabilityCase = {
  name: 'poison-message',
  cheap: true,
  breaker: { failureThreshold: 1_000_000 },
  agentType: TYPE,
  trials: (mode) => (mode === 'full' ? 100 : 20),
  async run(ctx) {
    await ctx.agents(0);
    const sqs = sqsOf(ctx.layer);
    try {
      // The many: one parallel plan, failureStrategy continue (it SUCCEEDS with every task failed).
      // The stop: a sequential plan on the high queue whose first task's failure ends it FAILED.
      const [normal, high] = await Promise.all([queueOf(sqs, 'normal'), queueOf(sqs, 'high')]);
      const ids = Array.from({ length: ctx.trials }, (_, i) => trialTaskId(i));
      const many = await submit(ctx.layer, {
        pattern: 'parallel',
        maxConcurrency: ctx.trials,
        tasks: ids.map((id) => ({ id, agentType: TYPE, failureStrategy: 'continue', command: ctx.ledger.command(id) })),
      });
      const stop = await submit(ctx.layer, {
        pattern: 'sequential',
        tasks: [
          { id: 'stop-0', agentType: TYPE, priority: 'high', command: ctx.ledger.command('stop-0') },
          { id: 'stop-1', agentType: TYPE, priority: 'high', command: ctx.ledger.command('stop-1') },
        ],
      });
      await waitFor('every dispatch on its queue', async () => (await depth(sqs, normal.url)) >= ids.length && (await depth(sqs, high.url)) >= 1, 60_000);

      const receives = new Map([...(await dieOnEvery(sqs, normal, [many])), ...(await dieOnEvery(sqs, high, [stop]))]);
      const movedAt = Date.now();
      const problems: string[] = [];
      if (receives.size !== ids.length + 1) problems.push(`${receives.size} distinct dispatches received, expected ${ids.length + 1}`);
      for (const [messageId, n] of receives) {
        if (n !== MAX_RECEIVE_COUNT) problems.push(`message ${messageId} was received ${n} times before SQS moved it, expected maxReceiveCount ${MAX_RECEIVE_COUNT}`);
      }
      for (const q of [normal, high]) {
        const inDlq = await depth(sqs, q.dlqUrl);
        const want = q === normal ? ids.length : 1;
        if (inDlq !== want) problems.push(`${deadLetterQueueKey(q.key)} holds ${inDlq} messages, expected ${want}`);
      }

      const deadLettered = (queue: Queue): TaskCheck[] => [
        (task) => (String(task.error?.message).includes(`dead-letter queue ${deadLetterQueueKey(queue.key)}`) ? undefined : `error message "${task.error?.message}" does not name ${deadLetterQueueKey(queue.key)}`),
        (_task, entry) => (entry.starts.length === 0 ? undefined : `ran ${entry.starts.length} times, though no agent took its dispatch`),
      ];
      const poisoned = (taskId: string, queue: Queue): Expectation => ({ taskId, status: 'failed', errorType: 'validation', attempts: 0, commits: 0, checks: deadLettered(queue) });
      // Each task fails within a few of the pool manager's rounds (every third of the heartbeat),
      // not at its dispatch timeout.
      const first = await tallyExecution(ctx, many, 'SUCCEEDED', ids.map((id) => poisoned(id, normal)), 60_000 + ctx.trials * 500);
      const second = await tallyExecution(ctx, stop, 'FAILED', [
        poisoned('stop-0', high),
        { taskId: 'stop-1', status: 'skipped', commits: 0, checks: [(_t, entry) => (entry.starts.length === 0 ? undefined : 'ran, though the plan had stopped')] },
      ], 60_000);
      const failedWithin = Math.max(Date.parse(first.execution.stoppedAt), Date.parse(second.execution.stoppedAt)) - movedAt;

      // GET /dead-letters: each message listed against its task, as the one the sweep failed. A sweep
      // that is reading a queue hides its messages for a moment: ask again until all are seen.
      const expected = new Map<string, string>([...ids.map((id) => [`${many}/${id}`, normal.key] as const), [`${stop}/stop-0`, high.key]]);
      let listed = new Map<string, any>();
      try {
        await waitFor('GET /dead-letters to list every poisoned dispatch', async () => {
          const res = await ctx.layer.request('GET', '/dead-letters');
          if (res.status !== 200) throw new Error(`GET /dead-letters: ${res.status} ${JSON.stringify(res.body)}`);
          listed = new Map(res.body.items.flatMap((q: any) => q.messages.map((m: any) => [`${m.executionId}/${m.taskId}`, { ...m, queue: q.queue }])));
          return [...expected.keys()].every((k) => listed.has(k)) || undefined;
        }, 30_000);
      } catch {
        // Reported below, per task.
      }
      for (const [key, queue] of expected) {
        const m = listed.get(key);
        if (!m) problems.push(`${key}: not listed by GET /dead-letters`);
        else if (m.queue !== queue || !m.taskFailed || m.taskStatus !== 'failed') problems.push(`${key}: listed as ${JSON.stringify(m)}, expected queue ${queue}, taskFailed, taskStatus failed`);
      }

      const tally = addTally(addTally({ tasks: 0, lost: 0, doubled: 0, failures: problems }, first), second);
      return { ...tally, notes: `${ctx.trials} tasks in one plan (continue) and one of 2 (stop), each dispatch received ${MAX_RECEIVE_COUNT} times; all failed ${(failedWithin / 1000).toFixed(1)} s after the last reached its DLQ` };
    } finally {
      // The sweep reads every non-empty DLQ each round: leave none for the cases after this one.
      for (const priority of ['normal', 'high'] as const) {
        const url = (await sqs.send(new GetQueueUrlCommand({ QueueName: `xl_${deadLetterQueueKey(queueKey(TYPE, priority))}` }))).QueueUrl!;
        await sqs.send(new PurgeQueueCommand({ QueueUrl: url })).catch(() => undefined);
      }
      sqs.destroy();
    }
  },
};
