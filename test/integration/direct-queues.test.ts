// Agents' direct queues (core/aws/direct-queues.ts) against fauxqs and dynalite: what is left in
// one goes back to its task's type queue, at the task's priority, and the queue goes.
import { CreateQueueCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectQueues } from '../../core/aws/direct-queues.ts';
import { ExecutionStore } from '../../core/aws/execution-store.ts';
import type { TaskRecord } from '../../core/records.ts';
import { type Emulators, startEmulators } from '../support/emulators.ts';

let emulators: Emulators;
let executions: ExecutionStore;

beforeAll(async () => {
  emulators = await startEmulators({ prefix: 'xld-', queues: ['coder'] });
  executions = new ExecutionStore(emulators.ddb, emulators.tables.executions);
  const task: TaskRecord = {
    executionId: 'ex-direct',
    index: 0,
    taskId: 'build',
    stage: 0,
    agentType: 'coder',
    priority: 'high',
    timeoutSeconds: 60,
    failureStrategy: 'stop',
    definition: { inline: { id: 'build', agentType: 'coder', command: 'true' } as never },
    status: 'queued',
    attempts: 0,
    dispatchSeq: 1,
    retries: {},
    affinity: 'repo-a',
  };
  await executions.createExecution(
    {
      executionId: 'ex-direct',
      name: 'ex-direct',
      pattern: 'sequential',
      status: 'RUNNING',
      planHash: 'h',
      planKey: 'plans/ex-direct.json',
      input: { inline: {} },
      maxConcurrency: 1,
      stages: [{ name: '', from: 0, to: 1 }],
      taskCount: 1,
      startedAt: new Date().toISOString(),
    },
    [task],
  );
});
afterAll(async () => emulators?.close());

describe('direct queues', () => {
  it('sends what a dead agent\'s direct queue holds back to its task\'s type queue at its priority, then deletes the queue', async () => {
    const { sqs, queuePrefix } = emulators;
    const name = 'xld-coder-direct-coder-dead';
    await sqs.send(new CreateQueueCommand({ QueueName: name }));
    const url = queuePrefix.slice(0, queuePrefix.lastIndexOf('/') + 1) + name;
    const body = JSON.stringify({ executionId: 'ex-direct', taskIndex: 0, dispatchSeq: 1, dispatchTimeoutSeconds: 120, taskToken: 'token-1' });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'not a dispatch' }));

    const moved = await new DirectQueues(sqs, executions, queuePrefix).reclaim(url);
    expect(moved).toBe(2);
    const high = await sqs.send(new ReceiveMessageCommand({ QueueUrl: `${queuePrefix}coder-high`, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
    expect(high.Messages?.map((m) => m.Body)).toEqual([body]);
    // The first dispatch's time goes with it (queue wait is counted from there).
    expect(Number(high.Messages?.[0]?.MessageAttributes?.['xl-dispatched-at']?.StringValue)).toBeGreaterThan(0);
    await expect(sqs.send(new GetQueueUrlCommand({ QueueName: name }))).rejects.toThrow();
    // A queue that is gone already is no error.
    expect(await new DirectQueues(sqs, executions, queuePrefix).reclaim(url)).toBe(0);
  });
});
