// The Recover step carrying out a task's RecoveryStrategy, on a real DynamoDB emulator: retries with
// the attempt logged, the fallbacks (another agent type, a default output, a skip), the escalations
// and waiting for an open breaker. The state machine around it is the local layer's business
// (test/e2e); here each call is what one Catch -> Recover would do.
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoBreakerStore } from '#core/aws/breaker-store.ts';
import { ExecutionStore } from '#core/aws/execution-store.ts';
import { CircuitBreaker } from '#core/breakers.ts';
import type { TaskError } from '#core/errors.ts';
import type { LayerEvent } from '#core/events.ts';
import { ExecutionService } from '#core/executions.ts';
import { deriveOutcome } from '#core/patterns.ts';
import type { Task } from '#core/plan.ts';
import type { TaskRecord } from '#core/records.ts';
import { ExecutionSteps } from '#core/steps.ts';
import { startDynalite } from '../../local/services/dynalite.ts';
import { recordExecution } from '../support/records.ts';
import { createTables, LOCAL_CLIENT } from '../support/emulators.ts';

let dynamo: Awaited<ReturnType<typeof startDynalite>>;
let executions: ExecutionStore;
let breakers: DynamoBreakerStore;
let steps: ExecutionSteps;
let service: ExecutionService;
const events: LayerEvent[] = [];
const NOW = Date.parse('2026-12-06T12:00:00Z');

beforeAll(async () => {
  dynamo = await startDynalite();
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: dynamo.endpoint }), { marshallOptions: { removeUndefinedValues: true } });
  await createTables(client, { executions: 'executions', breakers: 'breakers' });
  executions = new ExecutionStore(client, 'executions');
  breakers = new DynamoBreakerStore(client, 'breakers');
  steps = new ExecutionSteps({
    executions,
    breaker: new CircuitBreaker(breakers, { clock: () => NOW, closedCacheMs: 0 }),
    queueUrlPrefix: 'q/',
    dispatchAllowanceSeconds: 60,
    events: { emit: async (e) => void events.push(e) },
    now: () => NOW,
  });
  service = new ExecutionService({ executions, payloads: { load: async (s: { inline: unknown }) => s.inline } as never, workflows: {} as never });
});
afterAll(async () => dynamo?.close());

type Spec = Partial<Task> & { failureStrategy?: 'stop' | 'continue' };

async function createExecution(specs: Spec[]): Promise<string> {
  const definitions = specs.map((s, index) => ({ id: `t${index}`, agentType: 'coder', command: 'true', timeoutSeconds: 60, failureStrategy: 'stop', priority: 'normal', ...s }) as Task);
  // Pending, as submitted: each test's Gate makes the dispatches.
  return recordExecution(executions, definitions, { status: 'pending', dispatchSeq: 0 });
}

/** Gate, an agent's claim, and the agent's recorded failure: what precedes a Catch -> Recover. */
async function agentFails(executionId: string, taskIndex: number, error: TaskError, agentId = 'agent-1') {
  const gate = await steps.gate({ executionId, taskIndex });
  if (gate.action !== 'dispatch') throw new Error(`gate said ${gate.action}`);
  const claimId = randomUUID();
  const claim = await executions.claimTask({ executionId, index: taskIndex, dispatchSeq: gate.dispatch.MessageBody.dispatchSeq, agentId, claimId, leaseMs: 60_000 });
  if (!claim.claimed) throw new Error('not claimed');
  await executions.finishClaim(executionId, taskIndex, claimId, { status: 'failed', error, finishedAt: new Date(NOW).toISOString(), durationMs: 5 });
  return { gate, recover: () => steps.recover({ executionId, taskIndex, failure: { Error: error.type, Cause: error.message }, gate }) };
}

const task = (executionId: string, index = 0) => executions.getTask(executionId, index) as Promise<TaskRecord>;
const transient: TaskError = { type: 'transient', source: 'command', message: 'try later' };

describe('Recover', () => {
  it('retries with the backoff of the task\'s strategy and logs the attempt with its source and delay', async () => {
    const id = await createExecution([{ recovery: { transient: { maxRetries: 2, backoff: { strategy: 'fixed', baseSeconds: 7, jitter: 'none' } } } }]);
    const first = await agentFails(id, 0, transient);
    expect(await first.recover()).toEqual({ executionId: id, taskIndex: 0, action: 'retry', delaySeconds: 7 });
    const t = await task(id);
    expect(t).toMatchObject({ status: 'pending', retries: { transient: 1 }, error: transient });
    expect(t.attemptLog).toEqual([
      expect.objectContaining({ attempt: 1, agentId: 'agent-1', agentType: 'coder', status: 'failed', errorType: 'transient', source: 'command', message: 'try later', next: 'retry', delaySeconds: 7 }),
    ]);
  });

  it('uses the error the agent recorded (with its source), not only the Step Functions error name', async () => {
    const id = await createExecution([{ failureStrategy: 'continue' }]);
    const modelDown: TaskError = { type: 'dependency', source: 'model-api', message: 'API Error: 529 overloaded' };
    await (await agentFails(id, 0, modelDown)).recover();
    expect((await task(id)).attemptLog?.[0]).toMatchObject({ errorType: 'dependency', source: 'model-api', message: 'API Error: 529 overloaded' });
  });

  it('hands the task to the fallback agent type once the retries are spent, once', async () => {
    const id = await createExecution([{ recovery: { transient: { maxRetries: 0, fallback: { action: 'agent-type', agentType: 'architect' } } } }]);
    expect(await (await agentFails(id, 0, transient)).recover()).toMatchObject({ action: 'retry', delaySeconds: 0 });
    expect(await task(id)).toMatchObject({ status: 'pending', agentType: 'architect', fallbackFrom: 'coder' });
    const second = await agentFails(id, 0, transient, 'architect-1');
    expect(second.gate).toMatchObject({ action: 'dispatch', dispatch: { QueueUrl: 'q/architect-normal' } });
    expect(await second.recover()).toMatchObject({ action: 'done' });
    const t = await task(id);
    expect(t).toMatchObject({ status: 'failed', agentType: 'architect', fallbackFrom: 'coder' });
    expect(t.attemptLog?.map((e) => [e.agentType, e.next])).toEqual([['coder', 'fallback'], ['architect', 'none']]);
  });

  it('completes the task with the fallback\'s default output, keeping the failure it stands in for', async () => {
    const id = await createExecution([{ recovery: { permanent: { fallback: { action: 'default-output', output: { verdict: 'unknown' } } } } }]);
    const broken: TaskError = { type: 'permanent', source: 'command', message: 'broken' };
    expect(await (await agentFails(id, 0, broken)).recover()).toMatchObject({ action: 'done' });
    const t = await task(id);
    expect(t).toMatchObject({ status: 'completed', output: { inline: { verdict: 'unknown' } }, recoveredBy: { action: 'default-output', error: broken } });
    expect(t.error).toBeUndefined();
    const view = await service.describe(id);
    expect(view.status).toBe('RUNNING');
    expect(view.tasks[0]).toMatchObject({ status: 'completed', output: { verdict: 'unknown' }, recoveredBy: { action: 'default-output' } });
    expect(deriveOutcome({ pattern: 'sequential', stages: [] }, [t]).status).toBe('SUCCEEDED');
  });

  it('skips the task with the fallback\'s reason, and a "stop" task\'s skip stops nothing', async () => {
    const id = await createExecution([{ recovery: { timeout: { maxRetries: 0, fallback: { action: 'skip', reason: 'best effort only' } } } }, {}]);
    await (await agentFails(id, 0, { type: 'timeout', source: 'command', message: 'timed out' })).recover();
    expect(await task(id)).toMatchObject({ status: 'skipped', skipReason: 'best effort only', recoveredBy: { action: 'skip' } });
    expect((await executions.getExecution(id))!.stopping).toBeUndefined();
    expect((await service.describe(id)).tasks[0]).toMatchObject({ status: 'skipped', skipReason: 'best effort only' });
  });

  it('escalates with notify: an event names the task and the failure', async () => {
    const id = await createExecution([{ failureStrategy: 'continue', recovery: { permanent: { escalation: 'notify' } } }]);
    await (await agentFails(id, 0, { type: 'permanent', source: 'command', message: 'broken' })).recover();
    expect(events).toContainEqual({ kind: 'task.escalated', executionId: id, taskId: 't0', errorType: 'permanent', message: 'broken', action: 'notify' });
  });

  it('escalates with open-breaker: the agent type\'s breaker opens at once', async () => {
    const id = await createExecution([{ agentType: 'monitor', failureStrategy: 'continue', recovery: { permanent: { escalation: 'open-breaker' } } }, { agentType: 'monitor' }]);
    await (await agentFails(id, 0, { type: 'permanent', source: 'command', message: 'broken' })).recover();
    expect(await breakers.get('agent:monitor')).toMatchObject({ state: 'open' });
    expect(await steps.gate({ executionId: id, taskIndex: 1 })).toMatchObject({ action: 'blocked', failure: { Error: 'dependency' } });
  });

  it('escalates with fail-execution: a "continue" task ends the execution, waiting tasks are skipped and running ones cancelled', async () => {
    const id = await createExecution([{ failureStrategy: 'continue', recovery: { permanent: { escalation: 'fail-execution' } } }, {}, {}]);
    // Task 1 is running on another agent; task 2 waits.
    const gate1 = await steps.gate({ executionId: id, taskIndex: 1 });
    if (gate1.action !== 'dispatch') throw new Error('expected a dispatch');
    await executions.claimTask({ executionId: id, index: 1, dispatchSeq: gate1.dispatch.MessageBody.dispatchSeq, agentId: 'other', claimId: 'c1', leaseMs: 60_000 });
    await (await agentFails(id, 0, { type: 'permanent', source: 'command', message: 'broken' })).recover();
    const tasks = await executions.listTasks(id);
    expect(tasks.map((t) => t.status)).toEqual(['failed', 'failed', 'skipped']);
    expect(tasks[1]!.error?.message).toMatch(/fail-execution/);
    const execution = (await executions.getExecution(id))!;
    expect(execution.stopping).toMatchObject({ taskId: 't0', escalated: true });
    expect(deriveOutcome(execution, tasks).status).toBe('FAILED');
    // Every task is final: the execution ends now, not once its skipped dispatches reach a free agent.
    expect(execution).toMatchObject({ status: 'FAILED', stoppedAt: expect.any(String) });
    expect(await steps.gate({ executionId: id, taskIndex: 2 })).toEqual({ action: 'skip' });
  });

  it('waits for an open breaker\'s probe when the recovery says onOpen "wait", and fails fast otherwise', async () => {
    const id = await createExecution([{ agentType: 'logger', recovery: { dependency: { onOpen: 'wait' } } }, { agentType: 'logger', failureStrategy: 'continue' }]);
    await new CircuitBreaker(breakers, { clock: () => NOW, closedCacheMs: 0 }).trip('agent:logger', 'test');
    const gate = await steps.gate({ executionId: id, taskIndex: 0 });
    expect(gate).toMatchObject({ action: 'blocked' });
    const retryAt = new Date(NOW + 45_000).toISOString();
    const waited = await steps.recover({ executionId: id, taskIndex: 0, gate: { ...(gate as Extract<typeof gate, { action: 'blocked' }>), retryAt } });
    expect(waited).toMatchObject({ action: 'retry', delaySeconds: 45 });
    expect(await task(id)).toMatchObject({ status: 'pending', breakerWaits: 1, retries: {} });

    const other = await steps.gate({ executionId: id, taskIndex: 1 });
    const refused = await steps.recover({ executionId: id, taskIndex: 1, gate: other });
    // The default onOpen is "fail": at once, no retry (and no attempt: no agent ran it).
    expect(refused).toMatchObject({ action: 'done' });
    expect(await task(id, 1)).toMatchObject({ status: 'failed', attempts: 0, retries: {}, error: { type: 'dependency', message: expect.stringContaining('agent:logger') } });
    expect((await task(id, 1)).attemptLog).toBeUndefined();
  });

  it('ends a stopped execution at once when no task runs any more, though its skipped dispatches still wait in their queues', async () => {
    const id = await createExecution([{}, {}, {}]);
    await steps.gate({ executionId: id, taskIndex: 1 }); // queued: its message waits for a busy type
    await (await agentFails(id, 0, { type: 'permanent', source: 'command', message: 'broken' })).recover();
    expect((await executions.listTasks(id)).map((t) => t.status)).toEqual(['failed', 'skipped', 'skipped']);
    expect(await executions.getExecution(id)).toMatchObject({ status: 'FAILED', stoppedAt: expect.any(String) });
  });

  it('leaves a stopped execution running while one of its tasks still runs: that task finishes and is reported', async () => {
    const id = await createExecution([{}, {}]);
    const gate1 = await steps.gate({ executionId: id, taskIndex: 1 });
    if (gate1.action !== 'dispatch') throw new Error('expected a dispatch');
    await executions.claimTask({ executionId: id, index: 1, dispatchSeq: gate1.dispatch.MessageBody.dispatchSeq, agentId: 'other', claimId: 'c1', leaseMs: 60_000 });
    await (await agentFails(id, 0, { type: 'permanent', source: 'command', message: 'broken' })).recover();
    expect(await executions.getExecution(id)).toMatchObject({ status: 'RUNNING' });
  });

  it('re-dispatches a task that timed out while still queued, without counting it', async () => {
    const id = await createExecution([{}]);
    await steps.gate({ executionId: id, taskIndex: 0 });
    expect(await steps.recover({ executionId: id, taskIndex: 0, failure: { Error: 'States.Timeout' } })).toMatchObject({ action: 'retry', delaySeconds: 0 });
    expect(await task(id)).toMatchObject({ retries: {} });
  });

  it('logs a run whose agent went silent past its timeout as a timeout of that agent', async () => {
    const id = await createExecution([{ failureStrategy: 'continue' }]);
    const gate = await steps.gate({ executionId: id, taskIndex: 0 });
    if (gate.action !== 'dispatch') throw new Error('expected a dispatch');
    await executions.claimTask({ executionId: id, index: 0, dispatchSeq: gate.dispatch.MessageBody.dispatchSeq, agentId: 'gone', claimId: 'c', leaseMs: 60_000 });
    expect(await steps.recover({ executionId: id, taskIndex: 0, failure: { Error: 'States.Timeout', Cause: '' } })).toMatchObject({ action: 'retry' });
    expect((await task(id)).attemptLog?.[0]).toMatchObject({ agentId: 'gone', errorType: 'timeout', source: 'layer', message: expect.stringContaining('agent gone') });
  });
});
