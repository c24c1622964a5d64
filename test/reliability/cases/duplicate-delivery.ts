// Duplicate delivery of the same dispatch: with no agent of the type yet, the case takes each
// dispatch message off the queue and puts it back twice (the original and a copy, same body and
// task token), then starts the agents, which get both. After the plan ends, a third copy of every
// dispatch arrives late. Each task must run and commit once, and be recorded completed once.
import { ChangeMessageVisibilityCommand, GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { queueKey } from '#core/agent-types.ts';
import { LOCAL_REGION } from '../../../local/template.ts';
import { type Layer, waitFor } from '../../e2e/harness.ts';
import { account } from '../account.ts';
import { type ReliabilityCase, finishesOf, submit, tallyExecution, trialTaskId } from '../suite.ts';

const TYPE = 'reviewer';

function queuesOf(layer: Layer): { sqs: SQSClient; url: Promise<string>; dlq: Promise<string> } {
  const endpoint = layer.endpoint.services?.sqs;
  if (!endpoint) throw new Error('endpoint.json lists no sqs endpoint');
  const sqs = new SQSClient({ endpoint, region: LOCAL_REGION, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  // The stack is `xl` locally: queue names are `xl-<type>-<priority>[-dlq]` (infra/constructs/queues.ts).
  const urlOf = (name: string) => sqs.send(new GetQueueUrlCommand({ QueueName: name })).then((r) => r.QueueUrl!);
  return { sqs, url: urlOf(`xl_${queueKey(TYPE, 'normal')}`), dlq: urlOf(`xl_${queueKey(TYPE, 'normal')}-dlq`) };
}

async function depth(sqs: SQSClient, url: string): Promise<{ visible: number; inFlight: number }> {
  const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return { visible: Number(res.Attributes?.ApproximateNumberOfMessages ?? 0), inFlight: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0) };
}

export const duplicateDelivery: ReliabilityCase = {
  name: 'duplicate-delivery',
  cheap: true,
  agentType: TYPE,
  slots: 4,
  trials: (mode) => (mode === 'full' ? 100 : 20),
  async run(ctx) {
    await ctx.agents(0);
    const queues = queuesOf(ctx.layer);
    const { sqs } = queues;
    const [url, dlq] = await Promise.all([queues.url, queues.dlq]);
    const ids = Array.from({ length: ctx.trials }, (_, i) => trialTaskId(i));
    const executionId = await submit(ctx.layer, {
      pattern: 'parallel',
      maxConcurrency: ctx.trials,
      tasks: ids.map((id) => ({ id, agentType: TYPE, command: ctx.ledger.command(id) })),
    });

    await waitFor('every dispatch on the queue', async () => (await depth(sqs, url)).visible >= ids.length, 60_000);
    const bodies = new Map<string, string>();
    while (bodies.size < ids.length) {
      const res = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 60, WaitTimeSeconds: 1 }));
      for (const m of res.Messages ?? []) {
        const body = JSON.parse(m.Body!);
        if (body.executionId !== executionId) throw new Error(`a dispatch of another execution on ${url}: ${m.Body}`);
        bodies.set(`${body.taskIndex}`, m.Body!);
        await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: m.Body! }));
        await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 }));
      }
    }
    await ctx.agents(2);
    const expectations = ids.map((taskId) => ({ taskId, status: 'completed' as const, attempts: 1, commits: 1 as const }));
    const first = await tallyExecution(ctx, executionId, 'SUCCEEDED', expectations, 120_000 + ctx.trials * 1_000);

    // Late copies, after every task's end: taken as finished tasks and dropped, never run.
    for (const body of bodies.values()) await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    await waitFor('the queue to drain', async () => {
      const d = await depth(sqs, url);
      return d.visible + d.inFlight === 0;
    }, 60_000);
    const execution = (await ctx.layer.request('GET', `/executions/${executionId}`)).body;
    // Drained means handled by agents, not moved aside as undeliverable.
    const deadLetters = await depth(sqs, dlq);
    const tally = account({ execution, expectedStatus: 'SUCCEEDED', expectations, ledger: (id) => ctx.ledger.entry(id), finishes: finishesOf(ctx.layer) });
    if (deadLetters.visible + deadLetters.inFlight) tally.failures.push(`${deadLetters.visible + deadLetters.inFlight} dispatches reached ${dlq}`);
    if (first.failures.length) tally.failures.unshift(...first.failures.map((f) => `before the late copies: ${f}`));
    const ms = Date.parse(first.execution.stoppedAt) - Date.parse(first.execution.startedAt);
    return { ...tally, lost: Math.max(tally.lost, first.lost), doubled: Math.max(tally.doubled, first.doubled), notes: `${ctx.trials} tasks in one plan, 3 deliveries each, ${(ms / 1000).toFixed(1)} s` };
  },
};
