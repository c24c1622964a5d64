// End-to-end: a dispatch that reaches its DLQ on the running local layer fails its task as
// validation (the pool manager's round sweeps the DLQs), is listed by GET /dead-letters and
// `xl dead-letters`, and POST /dead-letters/redrive moves it back.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CLIENT } from '../support/emulators.ts';
import { type Layer, ROOT, removeStateDir, startLayer, waitFor, waitForEnd } from './harness.ts';

const run = promisify(execFile);

describe('dead letters on the local layer', () => {
  let layer: Layer;
  let sqs: SQSClient;
  let queue: string;
  let dlq: string;

  beforeAll(async () => {
    // No documenter agent: the test itself plays the agents that die on the dispatch.
    layer = await startLayer({ env: { XL_POOL: 'coder=0..0,tester=0..0,reviewer=0..0,documenter=0..0', XL_HEARTBEAT_SECONDS: '3' } });
    sqs = new SQSClient({ ...LOCAL_CLIENT, endpoint: layer.endpoint.services!.sqs });
    queue = (await sqs.send(new GetQueueUrlCommand({ QueueName: 'xl_documenter-normal' }))).QueueUrl!;
    dlq = (await sqs.send(new GetQueueUrlCommand({ QueueName: 'xl_documenter-normal-dlq' }))).QueueUrl!;
  });
  afterAll(async () => {
    sqs?.destroy();
    await layer?.stop();
    if (layer) await removeStateDir(layer.stateDir);
  });

  const depth = async (url: string) => {
    const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
    return Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  };

  it('fails the task as validation naming the DLQ, lists the message, and moves it back on redrive', async () => {
    const res = await layer.request('POST', '/executions', {
      pattern: 'sequential',
      tasks: [{ id: 'poison', agentType: 'documenter', command: 'true' }],
    });
    expect(res.status).toBe(202);
    await waitFor('the dispatch', async () => ((await depth(queue)) === 1 ? true : undefined));
    // Received maxReceiveCount (5) times and never deleted, as by agents that die on it; the sixth
    // receive finds it moved to the DLQ.
    for (let i = 0; i < 6; i++) await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue, VisibilityTimeout: 0 }));
    expect(await depth(dlq)).toBe(1);

    const ex = await waitForEnd(layer, res.body.executionId, 30_000);
    expect(ex.status).toBe('FAILED');
    expect(ex.tasks[0]).toMatchObject({ status: 'failed', error: { type: 'validation' } });
    expect(ex.tasks[0].error.message).toContain('reached the dead-letter queue documenter-normal-dlq');

    const listed = await layer.request('GET', '/dead-letters');
    expect(listed.status).toBe(200);
    expect(listed.body.items).toEqual([
      expect.objectContaining({
        queue: 'documenter-normal',
        deadLetterQueue: 'documenter-normal-dlq',
        messages: [expect.objectContaining({ executionId: res.body.executionId, taskIndex: 0, taskId: 'poison', taskStatus: 'failed', taskFailed: true })],
      }),
    ]);
    const cli = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/xl.ts'), 'dead-letters', '--endpoint', layer.url], { cwd: ROOT });
    expect(cli.stdout).toContain('documenter-normal-dlq  1 message(s)');
    expect(cli.stdout).toContain(`${res.body.executionId} task poison`);
    expect(cli.stdout).toContain('task failed as validation');

    const bad = await layer.request('POST', '/dead-letters/redrive', { queue: 'documenter-urgent' });
    expect(bad).toMatchObject({ status: 400, body: { error: { type: 'validation', details: [{ path: '/queue' }] } } });
    const moved = await layer.request('POST', '/dead-letters/redrive', { queue: 'documenter-normal' });
    expect(moved).toEqual({ status: 202, body: { items: [{ queue: 'documenter-normal', mode: 'copied', messages: 1 }] } });
    expect(await depth(dlq)).toBe(0);
    expect(await depth(queue)).toBe(1);
    expect((await layer.request('GET', '/dead-letters')).body.items).toEqual([]);
  });
});
