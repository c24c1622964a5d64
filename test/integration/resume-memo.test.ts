// The resume memo on a real executions table (dynalite): which tasks a new workflow run dispatches,
// what a resume and a redrive do to the records, and that a superseded run's end is ignored.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecutionStore } from '#core/aws/execution-store.ts';
import type { PayloadStore } from '#core/aws/payload-store.ts';
import type { LayerEvent } from '#core/events.ts';
import { ExecutionService, type Workflows } from '#core/executions.ts';
import type { Pattern } from '#core/plan.ts';
import type { ExecutionRecord, TaskRecord, TaskStatus } from '#core/records.ts';
import { recordWorkflowStatus } from '#core/execution-events.ts';
import { startDynalite } from '../../local/services/dynalite.ts';
import { LOCAL_CLIENT, createTables } from '../support/emulators.ts';

let dynamo: Awaited<ReturnType<typeof startDynalite>>;
let ddb: DynamoDBDocumentClient;
let store: ExecutionStore;
let n = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
  ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_CLIENT }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  await createTables(ddb, { executions: 'executions' });
  store = new ExecutionStore(ddb, 'executions');
});
afterAll(async () => dynamo?.close());

/** An execution whose tasks are in the given statuses (the record as the layer writes it). */
async function execution(statuses: TaskStatus[], extra: Partial<ExecutionRecord> = {}): Promise<string> {
  const executionId = `ex-test-${++n}`;
  const tasks: TaskRecord[] = statuses.map((status, index) => ({
    executionId,
    index,
    taskId: `t${index}`,
    stage: 0,
    agentType: 'coder',
    priority: 'normal',
    timeoutSeconds: 60,
    failureStrategy: 'stop',
    definition: { inline: { id: `t${index}`, agentType: 'coder', command: 'true' } as never },
    status,
    attempts: status === 'pending' ? 0 : 1,
    dispatchSeq: status === 'pending' ? 0 : 1,
    retries: {},
    ...(status === 'running' ? { claimId: `claim-${index}`, leaseExpiresAt: Date.now() + 60_000, agentId: 'coder-gone' } : {}),
  }));
  await store.createExecution(
    {
      executionId,
      name: executionId,
      pattern: 'sequential',
      status: 'RUNNING',
      planHash: 'h',
      planKey: 'plans/x.json',
      input: { inline: {} },
      maxConcurrency: 1,
      stages: [{ name: '', from: 0, to: statuses.length }],
      taskCount: statuses.length,
      startedAt: new Date().toISOString(),
      ...extra,
    },
    tasks,
  );
  return executionId;
}

/** Workflows that record the runs they are asked to start and stop. */
function recordingWorkflows() {
  const started: { executionId: string; run: number }[] = [];
  const stopped: { executionId: string; run: number }[] = [];
  const workflows: Workflows = {
    async start(_pattern: Pattern, executionId: string, run = 0) {
      started.push({ executionId, run });
    },
    async stop(_pattern: Pattern, executionId: string, _cause: string, run = 0) {
      stopped.push({ executionId, run });
    },
  };
  return { workflows, started, stopped };
}

function service() {
  const recorded = recordingWorkflows();
  const events: LayerEvent[] = [];
  const executions = new ExecutionService({
    executions: store,
    payloads: undefined as unknown as PayloadStore, // resume and redrive never read the bucket
    workflows: recorded.workflows,
    events: { emit: async (e) => void events.push(e) },
  });
  return { executions, events, ...recorded };
}

describe('a new workflow run dispatches', () => {
  it('pending and queued tasks, and a failure no Recover decided on', async () => {
    const id = await execution(['pending', 'queued', 'failed']);
    for (const index of [0, 1, 2]) expect(await store.prepareDispatch(id, index)).toMatchObject({ status: 'queued' });
  });

  it('never a task whose failure was final, nor a completed, skipped or running one', async () => {
    const id = await execution(['queued', 'completed', 'skipped', 'running']);
    expect(await store.failTask(id, 0, { type: 'permanent', message: 'exit code 1' })).toBe(true);
    for (const index of [0, 1, 2, 3]) expect(await store.prepareDispatch(id, index)).toBeUndefined();
    expect(await store.getTask(id, 0)).toMatchObject({ status: 'failed', finalFailure: true });
  });

  it('a task Recover put back to pending for a retry, but a Recover run twice cannot reopen a final failure', async () => {
    const id = await execution(['failed', 'failed']);
    expect(await store.recordRetry(id, 0, 'transient', { type: 'transient', message: 'flaky' })).toBe(true);
    expect(await store.prepareDispatch(id, 0)).toMatchObject({ status: 'queued', retries: { transient: 1 } });
    await store.failTask(id, 1, { type: 'permanent', message: 'no' });
    expect(await store.recordRetry(id, 1, 'transient', { type: 'transient', message: 'late' })).toBe(false);
    expect(await store.prepareDispatch(id, 1)).toBeUndefined();
  });

  it('nothing of a task a cancel failed', async () => {
    const id = await execution(['running']);
    await store.cancelTasks(id, 'cancelled by request');
    expect(await store.prepareDispatch(id, 0)).toBeUndefined();
  });
});

describe('resume', () => {
  it('starts run 1 with the running and queued tasks back to pending, old dispatches stale, finished ones untouched', async () => {
    const id = await execution(['completed', 'running', 'queued', 'pending']);
    await store.handBack(id, 1, 'claim-1', { key: 'checkpoints/x.tar.gz', bytes: 10, attempt: 1, savedAt: new Date().toISOString() });
    const { executions, started, events } = service();

    expect(await executions.resume(id)).toBe(true);
    expect(started).toEqual([{ executionId: id, run: 1 }]);
    expect(await store.getExecution(id)).toMatchObject({ status: 'RUNNING', workflowRun: 1 });
    const tasks = (await store.listTasks(id)).sort((a, b) => a.index - b.index);
    expect(tasks.map((t) => t.status)).toEqual(['completed', 'pending', 'pending', 'pending']);
    expect(tasks[1]).toMatchObject({ attempts: 1, checkpoint: { key: 'checkpoints/x.tar.gz' } });
    expect(tasks[1]!.claimId).toBeUndefined();
    expect(tasks[2]!.dispatchSeq).toBe(2); // the dead run's message carries 1
    expect(events).toEqual([{ kind: 'execution.resumed', executionId: id, tasks: 3 }]);
  });

  it('of the same execution twice at once starts one run', async () => {
    const id = await execution(['running']);
    const { executions, started } = service();
    const results = await Promise.all([executions.resume(id), executions.resume(id)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(started).toEqual([{ executionId: id, run: 1 }]);
  });
});

describe('redrive', () => {
  it('reopens failed and skipped tasks with a fresh retry budget, clears stopping and starts the next run', async () => {
    const id = await execution(['completed', 'queued', 'pending'], { status: 'FAILED', stoppedAt: new Date().toISOString(), stopping: { taskId: 't1', stage: '' }, result: { status: 'failed' } });
    await store.recordRetry(id, 1, 'transient', { type: 'transient', message: 'flaky' });
    await store.failTask(id, 1, { type: 'permanent', message: 'exit code 1' });
    await store.skipTask(id, 2, 'task t1 failed with failureStrategy "stop"');
    const { executions, started, events } = service();

    expect(await executions.redrive(id)).toEqual({ executionId: id, status: 'RUNNING', workflowRun: 1, tasks: 2 });
    const record = await store.getExecution(id);
    expect(record).toMatchObject({ status: 'PENDING', workflowRun: 1 });
    expect(record).not.toHaveProperty('stopping');
    expect(record).not.toHaveProperty('stoppedAt');
    expect(record).not.toHaveProperty('result');
    const tasks = (await store.listTasks(id)).sort((a, b) => a.index - b.index);
    expect(tasks.map((t) => [t.status, t.attempts, t.retries])).toEqual([['completed', 1, {}], ['pending', 1, {}], ['pending', 0, {}]]); // attempts: still the runs so far
    expect(tasks[1]).not.toHaveProperty('error');
    expect(tasks[1]).not.toHaveProperty('finalFailure');
    expect(await store.prepareDispatch(id, 1)).toMatchObject({ status: 'queued' });
    expect(started).toEqual([{ executionId: id, run: 1 }]);
    expect(events).toEqual([{ kind: 'execution.redriven', executionId: id, tasks: 2 }]);
  });

  it('of the same execution twice at once: one wins, the other is refused', async () => {
    const id = await execution(['failed'], { status: 'TIMED_OUT' });
    const { executions, started } = service();
    const results = await Promise.allSettled([executions.redrive(id), executions.redrive(id)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ status: 409 });
    expect(started).toEqual([{ executionId: id, run: 1 }]);
  });

  it('one that crashed before its run began is carried on by the next: same run, only tasks that ended before it', async () => {
    const crashedAt = new Date(Date.now() - 120_000).toISOString();
    const id = await execution(['pending', 'failed', 'failed'], { status: 'PENDING', workflowRun: 1, redrivenAt: crashedAt });
    // Task 1 ended before the redrive (not reopened yet when it crashed), task 2 after it (the new run's own end).
    await store.failTask(id, 1, { type: 'permanent', message: 'before' });
    await store.failTask(id, 2, { type: 'permanent', message: 'after' });
    const { executions, started } = service();
    const fresh = await execution(['failed'], { status: 'PENDING', workflowRun: 1, redrivenAt: new Date().toISOString() });
    await expect(executions.redrive(fresh)).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/is being redriven/) });

    // failTask stamped both with now: task 1's end goes back to before the redrive, where it was.
    await ddb.send(
      new UpdateCommand({ TableName: 'executions', Key: { pk: `X#${id}`, sk: 'T#000001' }, UpdateExpression: 'SET finishedAt = :t', ExpressionAttributeValues: { ':t': new Date(Date.now() - 180_000).toISOString() } }),
    );
    expect(await executions.redrive(id)).toEqual({ executionId: id, status: 'RUNNING', workflowRun: 1, tasks: 1 });
    expect((await store.listTasks(id)).sort((a, b) => a.index - b.index).map((t) => t.status)).toEqual(['pending', 'pending', 'failed']);
    expect(started).toEqual([{ executionId: id, run: 1 }]);
  });

  it('refuses a running or succeeded execution (409) and an unknown one (404)', async () => {
    const running = await execution(['running']);
    const succeeded = await execution(['completed'], { status: 'SUCCEEDED' });
    const { executions } = service();
    await expect(executions.redrive(running)).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/is RUNNING: only a FAILED, TIMED_OUT, ABORTED execution/) });
    await expect(executions.redrive(succeeded)).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/is SUCCEEDED/) });
    await expect(executions.redrive('ex-unknown')).rejects.toMatchObject({ status: 404 });
  });

  it('cancel stops the current run', async () => {
    const id = await execution(['failed'], { status: 'FAILED' });
    const { executions, stopped } = service();
    await executions.redrive(id);
    await executions.cancel(id);
    expect(stopped).toEqual([{ executionId: id, run: 1 }]);
  });
});

describe('a workflow run\'s end', () => {
  const layerStopped = (name: string) => ({
    executionArn: `arn:aws:states:us-east-1:000000000000:execution:SequentialExecution:${name}`,
    name,
    status: 'FAILED' as const,
    error: 'Local.LayerStopped',
    cause: 'the local layer stopped while this execution was running',
    stopDate: Date.now(),
  });

  it('of a superseded run is ignored: the execution goes on', async () => {
    const id = await execution(['running']);
    await service().executions.resume(id);
    expect(await recordWorkflowStatus(store, layerStopped(id))).toEqual({ kind: 'superseded', executionId: id, run: 0, current: 1 });
    expect(await store.getExecution(id)).toMatchObject({ status: 'RUNNING', workflowRun: 1 });
    expect((await store.getTask(id, 0))!.status).toBe('pending');
  });

  it('of the current run ends the execution, named <executionId>-r<n>', async () => {
    const id = await execution(['running']);
    await service().executions.resume(id);
    expect(await recordWorkflowStatus(store, layerStopped(`${id}-r1`))).toMatchObject({ kind: 'ended', executionId: id, status: 'FAILED' });
    expect(await store.getExecution(id)).toMatchObject({ status: 'FAILED', message: expect.stringMatching(/^Local.LayerStopped: /) });
  });

  it('of a batch child or an unknown name is not an execution\'s', async () => {
    const id = await execution(['running']);
    expect(await recordWorkflowStatus(store, layerStopped(`${id}-0`))).toEqual({ kind: 'not-an-execution' });
    expect(await recordWorkflowStatus(store, layerStopped('ex-nothing-r2'))).toEqual({ kind: 'not-an-execution' });
  });
});
