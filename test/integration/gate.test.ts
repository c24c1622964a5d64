// The Gate step's dispatch write and its read of the execution, on a real DynamoDB emulator: they go
// out together (one round trip along a chain), and a stop that lands between them still keeps the
// task from running, whichever of the two DynamoDB answers first.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoBreakerStore } from '#core/aws/breaker-store.ts';
import { ExecutionStore } from '#core/aws/execution-store.ts';
import { CircuitBreaker } from '#core/breakers.ts';
import type { Task } from '#core/plan.ts';
import { ExecutionSteps } from '#core/steps.ts';
import { startDynalite } from '../../local/services/dynalite.ts';
import { recordExecution } from '../support/records.ts';
import { createTables, LOCAL_CLIENT } from '../support/emulators.ts';

let dynamo: Awaited<ReturnType<typeof startDynalite>>;
let executions: ExecutionStore;
let breakers: DynamoBreakerStore;

beforeAll(async () => {
  dynamo = await startDynalite();
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: dynamo.endpoint }), { marshallOptions: { removeUndefinedValues: true } });
  await createTables(client, { executions: 'executions', breakers: 'breakers' });
  executions = new ExecutionStore(client, 'executions');
  breakers = new DynamoBreakerStore(client, 'breakers');
});
afterAll(async () => dynamo?.close());

/** Gate's steps over `store` (the real one, or one that holds some calls back). */
const stepsOver = (store: ExecutionStore) =>
  new ExecutionSteps({
    executions: store,
    breaker: new CircuitBreaker(breakers, { closedCacheMs: 0 }),
    queueUrlPrefix: 'q/',
    dispatchAllowanceSeconds: 60,
    events: { emit: async () => {} },
  });

const pendingExecution = () =>
  recordExecution(executions, [{ id: 't0', agentType: 'coder', command: 'true', timeoutSeconds: 60, failureStrategy: 'stop', priority: 'normal' } as Task], { status: 'pending', dispatchSeq: 0 });

/** The execution store with prepareDispatch held until `release` resolves; noted: the write's start, the read's answer. */
function holdingDispatch(release: Promise<void>) {
  const calls: string[] = [];
  const store = Object.create(executions) as ExecutionStore;
  store.prepareDispatch = async (executionId, index) => {
    calls.push('prepareDispatch');
    await release;
    return executions.prepareDispatch(executionId, index);
  };
  store.getExecution = async (executionId) => {
    const execution = await executions.getExecution(executionId);
    calls.push('getExecution');
    return execution;
  };
  return { store, calls };
}

describe('Gate', () => {
  it('reads the execution while its dispatch write is still under way', async () => {
    const id = await pendingExecution();
    const { promise: release, resolve } = Promise.withResolvers<void>();
    const { store, calls } = holdingDispatch(release);
    const gate = stepsOver(store).gate({ executionId: id, taskIndex: 0 });
    // Both calls are out before the write has answered; sequential awaits would never get here.
    await expect.poll(() => calls).toEqual(['prepareDispatch', 'getExecution']);
    resolve();
    expect(await gate).toMatchObject({ action: 'dispatch', dispatch: { QueueUrl: 'q/coder-normal', MessageBody: { executionId: id, taskIndex: 0, dispatchSeq: 1 } } });
    expect(await executions.getTask(id, 0)).toMatchObject({ status: 'queued', dispatchSeq: 1 });
  });

  it('skips a task that a stop skipped after the execution was read but before the dispatch write landed', async () => {
    const id = await pendingExecution();
    const { promise: release, resolve } = Promise.withResolvers<void>();
    const { store, calls } = holdingDispatch(release);
    const gate = stepsOver(store).gate({ executionId: id, taskIndex: 0 });
    await expect.poll(() => calls).toEqual(['prepareDispatch', 'getExecution']);
    // Recover's stop, between Gate's read (not stopping yet) and its write.
    await executions.markStopping(id, { taskId: 'other', stage: '' });
    expect(await executions.skipWaitingTasks(id, 'stopped')).toBe(1);
    resolve();
    expect(await gate).toEqual({ action: 'skip' });
    expect(await executions.getTask(id, 0)).toMatchObject({ status: 'skipped', skipReason: 'stopped' });
  });

  it('skips a task the execution has no record for only when the task is not dispatchable, and fails permanently otherwise', async () => {
    const id = await pendingExecution();
    const store = Object.create(executions) as ExecutionStore;
    store.getExecution = async () => undefined;
    await expect(stepsOver(store).gate({ executionId: id, taskIndex: 0 })).rejects.toMatchObject({ name: 'permanent' });
    // Queued by that call: dispatchable again. A finished task is not, and needs no record.
    await executions.skipTask(id, 0, 'done');
    expect(await stepsOver(store).gate({ executionId: id, taskIndex: 0 })).toEqual({ action: 'skip' });
  });
});
