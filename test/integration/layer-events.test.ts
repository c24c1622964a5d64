// The events the layer's steps, the status-change handler, the health monitor and the pool manager
// emit, on a real DynamoDB emulator: each told by the write that records the change, so once however
// often the step runs.
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentStore } from '#core/aws/agent-store.ts';
import { DynamoBreakerStore } from '#core/aws/breaker-store.ts';
import { ExecutionStore } from '#core/aws/execution-store.ts';
import { CircuitBreaker } from '#core/breakers.ts';
import type { LayerEvent } from '#core/events.ts';
import { ExecutionReconciler, recordWorkflowStatus } from '#core/execution-events.ts';
import type { Task } from '#core/plan.ts';
import { HealthMonitor, PoolManager } from '#core/pool.ts';
import type { AgentRecord } from '#core/records.ts';
import { ExecutionSteps } from '#core/steps.ts';
import { startDynalite } from '../../local/services/dynalite.ts';
import { LOCAL_CLIENT, createTables } from '../support/emulators.ts';

let dynamo: Awaited<ReturnType<typeof startDynalite>>;
let executions: ExecutionStore;
let agents: AgentStore;
let steps: ExecutionSteps;
let events: LayerEvent[] = [];
const sink = { emit: async (e: LayerEvent) => void events.push(e) };
const NOW = Date.parse('2026-12-06T12:00:00Z');

beforeAll(async () => {
  dynamo = await startDynalite();
  const client = DynamoDBDocumentClient.from(new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: dynamo.endpoint }), { marshallOptions: { removeUndefinedValues: true } });
  await createTables(client, { executions: 'executions', breakers: 'breakers', agents: 'agents' });
  executions = new ExecutionStore(client, 'executions');
  agents = new AgentStore(client, 'agents');
  const breaker = new CircuitBreaker(new DynamoBreakerStore(client, 'breakers'), { clock: () => NOW, closedCacheMs: 0 });
  steps = new ExecutionSteps({ executions, breaker, queueUrlPrefix: 'q/', dispatchAllowanceSeconds: 60, events: sink, now: () => NOW });
});
afterAll(async () => dynamo?.close());
beforeEach(() => {
  events = [];
});

/** An execution of one coder task as submitted (PENDING, its task pending), with what `extra` adds. */
async function submitted(extra: { budgetUsd?: number } = {}): Promise<string> {
  const executionId = `ex-${randomUUID().slice(0, 12)}`;
  const definition = { id: 'only', agentType: 'coder', command: 'true', timeoutSeconds: 60, failureStrategy: 'stop', priority: 'normal' } as Task;
  await executions.createExecution(
    {
      executionId,
      name: `plan-${executionId}`,
      pattern: 'sequential',
      status: 'PENDING',
      planHash: 'test',
      planKey: `plans/${executionId}.json`,
      input: { inline: {} },
      maxConcurrency: 1,
      stages: [{ name: '', from: 0, to: 1 }],
      taskCount: 1,
      startedAt: new Date(NOW).toISOString(),
      ...extra,
    },
    [{ executionId, index: 0, taskId: 'only', stage: 0, agentType: 'coder', priority: 'normal', timeoutSeconds: 60, failureStrategy: 'stop', definition: { inline: definition }, status: 'pending', attempts: 0, dispatchSeq: 0, retries: {} }],
  );
  return executionId;
}

/** Gate, a claim and the agent's report of the run: what an agent does with the dispatch. */
async function run(executionId: string, outcome: { status: 'completed' } | { status: 'failed'; error: { type: 'permanent'; message: string } }) {
  const gate = await steps.gate({ executionId, taskIndex: 0 });
  if (gate.action !== 'dispatch') throw new Error(`gate said ${gate.action}`);
  const claimId = randomUUID();
  await executions.claimTask({ executionId, index: 0, dispatchSeq: gate.dispatch.MessageBody.dispatchSeq, agentId: 'agent-1', claimId, leaseMs: 60_000 });
  await executions.finishClaim(executionId, 0, claimId, { ...outcome, finishedAt: new Date(NOW).toISOString(), durationMs: 5 } as never);
  return gate;
}

describe('execution events', () => {
  it('Prepare tells execution.started once, however often it runs', async () => {
    const id = await submitted();
    await steps.prepare({ executionId: id });
    await steps.prepare({ executionId: id });
    expect(events).toEqual([{ kind: 'execution.started', executionId: id, name: `plan-${id}`, run: 0 }]);
  });

  it('Finalize tells execution.succeeded once', async () => {
    const id = await submitted();
    await steps.prepare({ executionId: id });
    await run(id, { status: 'completed' });
    await steps.finalize({ executionId: id });
    await steps.finalize({ executionId: id });
    expect(events.map((e) => e.kind)).toEqual(['execution.started', 'execution.succeeded']);
    expect(events[1]).toEqual({ kind: 'execution.succeeded', executionId: id, name: `plan-${id}`, status: 'SUCCEEDED' });
  });

  it('a Finalize of a run that a redrive has replaced (retried, or the reconcile\'s) leaves the new run going; the new run\'s own Finalize ends it', async () => {
    const id = await submitted();
    await steps.prepare({ executionId: id });
    const gate = await run(id, { status: 'failed', error: { type: 'permanent', message: 'exit 3' } });
    await steps.recover({ executionId: id, taskIndex: 0, failure: { Error: 'permanent', Cause: 'exit 3' }, gate });
    expect(await steps.finalize({ executionId: id, runName: id })).toEqual({ status: 'FAILED' });
    // What POST /executions/{id}/redrive writes before it starts run 1: the execution reopened, the failed task too.
    const since = new Date(NOW + 1000).toISOString();
    expect(await executions.advanceWorkflowRun(id, 0, { statuses: ['FAILED'], redrivenAt: since })).toBe(true);
    expect(await executions.reopenTask(id, 0, since)).toBe(true);

    expect(await steps.finalize({ executionId: id, runName: id })).toEqual({ status: 'SUPERSEDED' });
    expect(await executions.getExecution(id)).toMatchObject({ status: 'PENDING', workflowRun: 1 });

    await steps.prepare({ executionId: id });
    await run(id, { status: 'completed' });
    expect(await steps.finalize({ executionId: id, runName: `${id}-r1` })).toEqual({ status: 'SUCCEEDED' });
    expect(await executions.getExecution(id)).toMatchObject({ status: 'SUCCEEDED', workflowRun: 1 });
    await expect(steps.finalize({ executionId: id, runName: 'ex-other' })).rejects.toThrow(`workflow run ex-other is not one of execution ${id}`);
  });

  it('the reconcile\'s sweep counts an execution as ended only when it ended it: a run that a resume (or a redrive) replaced meanwhile goes on', async () => {
    const id = await submitted();
    await steps.prepare({ executionId: id });
    await run(id, { status: 'completed' });
    let resumeFirst = false;
    const reconciler = new ExecutionReconciler({
      executions,
      deadLetters: { receive: async () => [], delete: async () => undefined },
      // Step Functions' view: run 0 SUCCEEDED, its end event lost. A resume (or a redrive) can start the
      // next run between the sweep's listing and its Finalize.
      workflows: {
        describe: async (_pattern, runName) => {
          if (runName !== id && runName !== `${id}-r1`) return undefined;
          if (resumeFirst) expect(await executions.advanceWorkflowRun(id, 0, { statuses: ['RUNNING'] })).toBe(true);
          resumeFirst = false;
          return { name: runName, status: 'SUCCEEDED' };
        },
      },
      finalize: (executionId, runName) => steps.finalize({ executionId, runName }),
    });

    resumeFirst = true;
    expect((await reconciler.reconcile()).ended).not.toContain(id);
    expect(await executions.getExecution(id)).toMatchObject({ status: 'RUNNING', workflowRun: 1 });
    expect(events.map((e) => e.kind)).not.toContain('execution.succeeded');
    // The next round finds run 1 ended too: that end it records, and counts.
    expect((await reconciler.reconcile()).ended).toContain(id);
    expect(await executions.getExecution(id)).toMatchObject({ status: 'SUCCEEDED', workflowRun: 1 });
  });

  it('a task that fails for good tells task.failed, and the execution it stops execution.failed, once (Finalize after it tells nothing)', async () => {
    const id = await submitted();
    await steps.prepare({ executionId: id });
    const error = { type: 'permanent' as const, message: 'exit 3' };
    const gate = await run(id, { status: 'failed', error });
    await steps.recover({ executionId: id, taskIndex: 0, failure: { Error: 'permanent', Cause: 'exit 3' }, gate });
    await steps.finalize({ executionId: id });
    expect(events.slice(1)).toEqual([
      { kind: 'task.failed', executionId: id, taskId: 'only', agentType: 'coder', errorType: 'permanent', message: 'exit 3', attempts: 1 },
      { kind: 'execution.failed', executionId: id, name: `plan-${id}`, status: 'FAILED' },
    ]);
  });

  it('a workflow that failed tells execution.failed with its error; a second delivery of the status change tells nothing', async () => {
    const id = await submitted();
    await steps.prepare({ executionId: id });
    const change = { name: id, status: 'TIMED_OUT' as const, error: 'States.Timeout', cause: 'the workflow ran out of time', stopDate: NOW };
    await recordWorkflowStatus(executions, change, sink);
    await recordWorkflowStatus(executions, change, sink);
    expect(events.slice(1)).toEqual([{ kind: 'execution.failed', executionId: id, name: `plan-${id}`, status: 'TIMED_OUT', message: 'States.Timeout: the workflow ran out of time' }]);
  });

  it('Gate tells budget.spent with the first task it refuses for the budget, and only then', async () => {
    const id = await submitted({ budgetUsd: 1 });
    await executions.addSpend(id, 1.25);
    expect((await steps.gate({ executionId: id, taskIndex: 0 })).action).toBe('blocked');
    expect((await steps.gate({ executionId: id, taskIndex: 0 })).action).toBe('blocked');
    expect(events).toEqual([{ kind: 'budget.spent', executionId: id, budgetUsd: 1, spentUsd: 1.25 }]);
  });
});

describe('agent events', () => {
  const agent = (agentId: string, heartbeatSecondsAgo: number): AgentRecord => ({
    agentId,
    agentType: 'tester',
    status: 'idle',
    startedAt: new Date(NOW - 3_600_000).toISOString(),
    lastHeartbeatAt: new Date(NOW - heartbeatSecondsAgo * 1000).toISOString(),
    runtime: { kind: 'process', pid: 1 },
    health: { overall: 'healthy', metrics: { cpu: 0, memory: 0, responseTime: 0, errorRate: 0, taskSuccessRate: 1 }, lastCheck: new Date(NOW).toISOString() },
  });

  it('the health monitor tells agent.unhealthy with the reason, and the pool manager agent.replaced when it replaces it', async () => {
    const id = `tester-${randomUUID().slice(0, 8)}`;
    await agents.put(agent(id, 600));
    await new HealthMonitor({ agents, heartbeatSeconds: 60, startAllowanceSeconds: 300, events: sink, now: () => NOW }).check();
    const runtime = { start: async () => [], stop: async () => undefined, isAlive: async () => false };
    await new PoolManager({ agents, runtime, heartbeatSeconds: 60, startAllowanceSeconds: 300, defaults: {}, events: sink, now: () => NOW }).reconcile();
    expect(events.filter((e) => 'agentId' in e && e.agentId === id)).toEqual([
      { kind: 'agent.unhealthy', agentId: id, agentType: 'tester', reason: 'heartbeat: silent for 600 s' },
      { kind: 'agent.replaced', agentId: id, agentType: 'tester' },
    ]);
  });

  it('the pool manager tells agent.started for each agent it starts, with when it decided to', async () => {
    let clock = NOW;
    // The runtime takes 1.5 s to start the agent: the event still names the moment of the decision.
    const runtime = {
      start: async (_type: string, count: number) => {
        clock += 1500;
        return Array.from({ length: count }, (_, i) => ({ agentId: `reviewer-s${i}-${randomUUID().slice(0, 4)}`, runtime: { kind: 'process' as const, pid: 1 } }));
      },
      stop: async () => undefined,
      isAlive: async () => true,
    };
    const manager = new PoolManager({ agents, runtime, heartbeatSeconds: 60, startAllowanceSeconds: 300, defaults: {}, events: sink, now: () => clock });
    const ids = await manager.startAgents('reviewer', 2);
    expect(events.filter((e) => e.kind === 'agent.started' && ids.includes(e.agentId))).toEqual(
      ids.map((agentId) => ({ kind: 'agent.started', agentId, agentType: 'reviewer', requestedAt: new Date(NOW).toISOString() })),
    );
  });
});
