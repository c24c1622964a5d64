// The pool manager's dynamic sizing (the design's "adjust pool size based on load"), on a real
// agent table (dynalite), with a runtime that records what it is asked to start and stop.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AgentType } from '#core/agent-types.ts';
import { AgentStore } from '#core/aws/agent-store.ts';
import { DynamoBreakerStore } from '#core/aws/breaker-store.ts';
import { ExecutionStore } from '#core/aws/execution-store.ts';
import type { Task } from '#core/plan.ts';
import { CircuitBreaker } from '#core/breakers.ts';
import { type Backlog, HealthMonitor, PoolManager, desiredAgents } from '#core/pool.ts';
import type { AgentRecord, AgentStatus, ExecutionRecord } from '#core/records.ts';
import type { AgentRuntime } from '#core/runtime.ts';
import { startDynalite } from '../../local/services/dynalite.ts';
import { LOCAL_CLIENT, createTables } from '../support/emulators.ts';
import { recordExecution } from '../support/records.ts';

let dynamo: Awaited<ReturnType<typeof startDynalite>>;
let ddb: DynamoDBDocumentClient;
let table = 0;

beforeAll(async () => {
  dynamo = await startDynalite();
  ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_CLIENT }), {
    marshallOptions: { removeUndefinedValues: true },
  });
});
afterAll(async () => dynamo?.close());

const NOW = Date.parse('2026-11-25T12:00:00Z');
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

/** A fresh agent table, a recording runtime and a pool manager over both (coder 1..4, 2 slots). */
async function pool(opts: { slots?: number; idleSeconds?: number; reclaimed?: string[] } = {}) {
  const name = `agents-${++table}`;
  await createTables(ddb, { agents: name, breakers: `${name}-breakers` });
  const agents = new AgentStore(ddb, name);
  const started: string[] = [];
  const stopped: { agentId: string; graceful: boolean }[] = [];
  let n = 0;
  const runtime: AgentRuntime = {
    async start(type, count) {
      return Array.from({ length: count }, () => {
        const agentId = `${type}-new-${++n}`;
        started.push(agentId);
        return { agentId, runtime: { kind: 'process' as const, pid: 1 } };
      });
    },
    async stop(agent, graceful) {
      stopped.push({ agentId: agent.agentId, graceful });
    },
    async isAlive() {
      return true;
    },
  };
  const breakers = new DynamoBreakerStore(ddb, `${name}-breakers`);
  const breaker = new CircuitBreaker(breakers, { policy: { failureThreshold: 3 }, clock: () => NOW, closedCacheMs: 0 });
  const manager = new PoolManager({
    agents,
    runtime,
    heartbeatSeconds: 60,
    startAllowanceSeconds: 300,
    defaults: { coder: { min: 1, max: 4 } },
    slots: { coder: opts.slots ?? 2 },
    idleSeconds: opts.idleSeconds ?? 120,
    breaker,
    now: () => NOW,
    ...(opts.reclaimed ? { directQueues: { reclaim: async (url: string) => (opts.reclaimed!.push(url), 1) } } : {}),
  });
  const monitor = new HealthMonitor({ agents, heartbeatSeconds: 60, startAllowanceSeconds: 300, retryCount: 3, now: () => NOW });
  const agent = (agentId: string, status: AgentStatus, idleSince?: string, health: Partial<AgentRecord['health']> = {}, heartbeat = ago(5), extra: Partial<AgentRecord> = {}): Promise<void> =>
    agents.put({
      ...extra,
      agentId,
      agentType: 'coder',
      status,
      startedAt: ago(3600),
      lastHeartbeatAt: heartbeat,
      runtime: { kind: 'process', pid: 1 },
      health: { overall: 'healthy', metrics: { cpu: 0, memory: 0, responseTime: 0, errorRate: 0, taskSuccessRate: 1 }, lastCheck: ago(5), ...health },
      ...(idleSince ? { idleSince } : {}),
    } satisfies AgentRecord);
  // Only coders have work in these tests; every other type is at its default bounds (0..4 or 1..4).
  const backlogOf = (coder: Backlog) => async (type: AgentType): Promise<Backlog> => (type === 'coder' ? coder : { visible: 0, inFlight: 0 });
  return { agents, manager, monitor, breakers, breaker, started, stopped, agent, backlogOf };
}

describe('desired agents', () => {
  it('is what the queued and running tasks need at the slots per agent, within the bounds', () => {
    const bounds = { min: 1, max: 4 };
    expect(desiredAgents(bounds, { visible: 0, inFlight: 0 }, 2)).toBe(1); // min
    expect(desiredAgents(bounds, { visible: 3, inFlight: 2 }, 2)).toBe(3); // 5 tasks, 2 each
    expect(desiredAgents(bounds, { visible: 40, inFlight: 0 }, 2)).toBe(4); // max
    expect(desiredAgents({ min: 0, max: 4 }, { visible: 0, inFlight: 0 }, 1)).toBe(0);
  });
});

describe('pool manager sizing', () => {
  let p: Awaited<ReturnType<typeof pool>>;
  beforeEach(async () => {
    p = await pool();
  });

  it('starts agents for the backlog, counting the ones already there and starting', async () => {
    await p.agent('coder-a', 'busy');
    await p.agent('coder-b', 'starting');
    const result = await p.manager.reconcile(p.backlogOf({ visible: 4, inFlight: 2 }));
    // 6 tasks at 2 slots: 3 agents; 2 exist, so 1 more.
    const coders = (ids: string[]) => ids.filter((id) => id.startsWith('coder'));
    expect(coders(result.started)).toHaveLength(1);
    expect(await p.agents.get(coders(result.started)[0]!)).toMatchObject({ status: 'starting', agentType: 'coder' });
    // The next round counts it: nothing more to start.
    expect(coders((await p.manager.reconcile(p.backlogOf({ visible: 4, inFlight: 2 }))).started)).toEqual([]);
  });

  it('never starts more than max, however long the queue', async () => {
    const result = await p.manager.reconcile(p.backlogOf({ visible: 500, inFlight: 0 }));
    expect(result.started.filter((id) => id.startsWith('coder'))).toHaveLength(4);
  });

  it('drains only agents idle for idleSeconds, the longest idle first, never below what the backlog needs', async () => {
    await p.agent('coder-busy', 'busy');
    await p.agent('coder-idle-long', 'idle', ago(600));
    await p.agent('coder-idle-longer', 'idle', ago(900));
    await p.agent('coder-idle-just', 'idle', ago(10));
    // One task running: the backlog needs 1 agent (min 1 too); 3 could go, but one is idle for 10 s only.
    const result = await p.manager.reconcile(p.backlogOf({ visible: 0, inFlight: 1 }));
    expect(result.drained).toEqual(['coder-idle-longer', 'coder-idle-long']);
    expect(p.stopped).toEqual([
      { agentId: 'coder-idle-longer', graceful: true },
      { agentId: 'coder-idle-long', graceful: true },
    ]);
    expect(await p.agents.get('coder-idle-longer')).toMatchObject({ status: 'draining' });
    expect(await p.agents.get('coder-busy')).toMatchObject({ status: 'busy' });
  });

  it('keeps idle agents the queued work is about to need', async () => {
    await p.agent('coder-1', 'idle', ago(600));
    await p.agent('coder-2', 'idle', ago(600));
    expect((await p.manager.reconcile(p.backlogOf({ visible: 3, inFlight: 0 }))).drained).toEqual([]);
  });

  it('above max, drains idle agents at once', async () => {
    await p.agents.setPoolBounds({ agentType: 'coder', min: 0, max: 1 });
    await p.agent('coder-1', 'idle', ago(1));
    await p.agent('coder-2', 'idle', ago(2));
    expect((await p.manager.reconcile(p.backlogOf({ visible: 0, inFlight: 0 }))).drained).toEqual(['coder-2']);
  });

  it('without a backlog reader, keeps to the bounds only (as before)', async () => {
    await p.agent('coder-1', 'idle', ago(600));
    await p.agent('coder-2', 'idle', ago(600));
    const result = await p.manager.reconcile();
    expect(result.drained).toEqual([]);
    expect(result.started.filter((id) => id.startsWith('coder'))).toEqual([]);
  });

  it('reports per type what the backlog needs', async () => {
    await p.agent('coder-1', 'busy');
    const rows = await p.manager.rows(p.backlogOf({ visible: 5, inFlight: 2 }));
    expect(rows.find((r) => r.agentType === 'coder')).toEqual({ agentType: 'coder', min: 1, max: 4, desired: 4, running: 1, backlog: 5 });
  });
});

describe('preemption', () => {
  let p: Awaited<ReturnType<typeof pool>>;
  beforeEach(async () => {
    p = await pool();
    await p.agents.setPoolBounds({ agentType: 'coder', min: 0, max: 3 });
  });

  it('at max, with high-priority tasks waiting, asks as many agents running low-priority work to yield, once', async () => {
    await p.agent('coder-low-1', 'busy', undefined, {}, ago(5), { preemptible: true });
    await p.agent('coder-low-2', 'busy', undefined, {}, ago(5), { preemptible: true });
    await p.agent('coder-normal', 'busy');
    // Three agents at two slots each, all six slots busy.
    const backlog = p.backlogOf({ visible: 1, inFlight: 6, high: 1 });
    const { yielded } = await p.manager.reconcile(backlog);
    expect(yielded).toHaveLength(1);
    expect(['coder-low-1', 'coder-low-2']).toContain(yielded[0]);
    expect(await p.agents.get(yielded[0]!)).toMatchObject({ yieldRequestedAt: new Date(NOW).toISOString() });
    expect((await p.agents.get('coder-normal'))?.yieldRequestedAt).toBeUndefined();
    // The next round sees the request pending: nobody else is asked for the same task.
    expect((await p.manager.reconcile(backlog)).yielded).toEqual([]);
  });

  it('not while an agent has a free slot: it will take the high-priority task itself', async () => {
    await p.agent('coder-low-1', 'busy', undefined, {}, ago(5), { preemptible: true });
    await p.agent('coder-low-2', 'busy', undefined, {}, ago(5), { preemptible: true });
    await p.agent('coder-normal', 'busy');
    expect((await p.manager.reconcile(p.backlogOf({ visible: 1, inFlight: 5, high: 1 }))).yielded).toEqual([]);
  });

  it('below max, starts an agent for the high-priority work instead', async () => {
    await p.agent('coder-low-1', 'busy', undefined, {}, ago(5), { preemptible: true });
    // Three tasks at two slots an agent want two agents: one more can start.
    const result = await p.manager.reconcile(p.backlogOf({ visible: 1, inFlight: 2, high: 1 }));
    expect(result.yielded).toEqual([]);
    expect(result.started.filter((id) => id.startsWith('coder'))).toHaveLength(1);
  });
});

describe('health escalation', () => {
  let p: Awaited<ReturnType<typeof pool>>;
  beforeEach(async () => {
    p = await pool();
  });
  const sick = { overall: 'unhealthy' as const, issues: [{ check: 'resource' as const, severity: 'critical' as const, message: 'memory at 97%' }] };

  it('an agent silent for a heartbeat span is unhealthy at once, and says why', async () => {
    await p.agent('coder-quiet', 'busy', undefined, {}, ago(75));
    expect(await p.monitor.check()).toEqual({ unhealthy: ['coder-quiet'] });
    expect(await p.agents.get('coder-quiet')).toMatchObject({ status: 'unhealthy', statusReason: 'heartbeat: silent for 75 s' });
  });

  it('an agent that reports itself unhealthy is escalated at its third check in a row, naming the critical issues', async () => {
    await p.agent('coder-sick', 'idle', ago(1), sick);
    expect(await p.monitor.check()).toEqual({ unhealthy: [] });
    expect(await p.monitor.check()).toEqual({ unhealthy: [] });
    expect(await p.agents.get('coder-sick')).toMatchObject({ status: 'idle', healthStrikes: 2 });
    expect(await p.monitor.check()).toEqual({ unhealthy: ['coder-sick'] });
    expect(await p.agents.get('coder-sick')).toMatchObject({ status: 'unhealthy', statusReason: 'unhealthy for 3 checks in a row (resource: memory at 97%)' });
  });

  it('one healthy check in between starts the count again', async () => {
    await p.agent('coder-flaky', 'idle', ago(1), sick);
    await p.monitor.check();
    await p.monitor.check();
    await p.agents.heartbeat('coder-flaky', { health: { overall: 'healthy', metrics: { cpu: 0, memory: 10, responseTime: 0, errorRate: 0, taskSuccessRate: 1 }, lastCheck: ago(0), issues: [] } });
    await p.monitor.check();
    expect(await p.agents.get('coder-flaky')).toMatchObject({ status: 'idle', healthStrikes: 0 });
  });

  it('replacing a dead agent sends back what Gate sent to its direct queue (affinity)', async () => {
    const reclaimed: string[] = [];
    const q = await pool({ reclaimed });
    await q.agent('coder-gone', 'idle', ago(900), {}, ago(600), { directQueueUrl: 'http://q/xl_coder-direct-coder-gone' });
    await q.agent('coder-alive', 'idle', ago(60), {}, ago(5), { directQueueUrl: 'http://q/xl_coder-direct-coder-alive' });
    await q.monitor.check();
    expect((await q.manager.reconcile(q.backlogOf({ visible: 0, inFlight: 0 }))).replaced).toEqual(['coder-gone']);
    expect(reclaimed).toEqual(['http://q/xl_coder-direct-coder-gone']);
  });

  it('replacing dead agents counts against their type\'s breaker: a type whose agents keep dying is no longer dispatched to', async () => {
    for (let round = 1; round <= 3; round++) {
      await p.agent(`coder-dead-${round}`, 'busy', undefined, {}, ago(600));
      await p.monitor.check();
      expect((await p.manager.reconcile(p.backlogOf({ visible: 0, inFlight: 0 }))).replaced).toEqual([`coder-dead-${round}`]);
    }
    expect(await p.breakers.get('agent:coder')).toMatchObject({ state: 'open', failures: 3 });
  });

  it('after each check it reports agents by status (the ones it just marked as unhealthy) and the breakers open, as gauges', async () => {
    const points: { name: string; value: number; dimensions?: Readonly<Record<string, string>> }[] = [];
    const monitor = new HealthMonitor({
      agents: p.agents,
      heartbeatSeconds: 60,
      startAllowanceSeconds: 300,
      now: () => NOW,
      metrics: { add: (name, _unit, value, dimensions) => void points.push({ name, value, ...(dimensions ? { dimensions } : {}) }) },
      breakers: p.breaker,
    });
    await p.agent('coder-a', 'idle', ago(1));
    await p.agent('coder-b', 'busy');
    await p.agent('coder-c', 'busy', undefined, {}, ago(600)); // silent: marked by this check
    await p.agent('coder-d', 'terminated');
    await p.breaker.trip('dependency:git:github.com', 'test');
    await monitor.check();
    const agents = Object.fromEntries(points.filter((x) => x.name === 'Agents').map((x) => [x.dimensions!.status, x.value]));
    expect(agents).toEqual({ starting: 0, idle: 1, busy: 1, draining: 0, unhealthy: 1 });
    expect(points.filter((x) => x.name === 'BreakersOpen')).toEqual([{ name: 'BreakersOpen', value: 1 }]);
  });
});

describe('demand ahead of the queue', () => {
  let p: Awaited<ReturnType<typeof pool>>;
  beforeEach(async () => {
    p = await pool({ slots: 1 });
  });

  it('a plan of 40 coder tasks just submitted asks for coders at once, within max, before any is queued', async () => {
    const result = await p.manager.reconcile(p.backlogOf({ visible: 0, inFlight: 0 }), { coder: 40 });
    expect(result.started.filter((id) => id.startsWith('coder'))).toHaveLength(4);
  });

  it('keeps the arrival-rate estimate between rounds, and keeps room for the tasks it expects', async () => {
    let clock = NOW;
    const manager = new PoolManager({
      agents: p.agents,
      runtime: { start: async (type, count) => Array.from({ length: count }, (_, i) => ({ agentId: `${type}-r${clock}-${i}`, runtime: { kind: 'process' as const, pid: 1 } })), stop: async () => undefined, isAlive: async () => true },
      heartbeatSeconds: 60,
      startAllowanceSeconds: 300,
      defaults: { coder: { min: 1, max: 8 } },
      reactionSeconds: 240,
      now: () => clock,
    });
    await p.agent('coder-a', 'busy', undefined, {}, ago(5), { tasksCompleted: 0 });
    const coders = (ids: string[]) => ids.filter((id) => id.startsWith('coder'));
    expect(coders((await manager.reconcile(p.backlogOf({ visible: 0, inFlight: 1 }))).started)).toEqual([]);
    expect((await p.agents.poolEstimates()).coder).toEqual({ at: NOW, seen: 1, ratePerSecond: 0 });

    // Two minutes later coder-a has finished 11 tasks and runs another: 11 arrived. The rate goes half
    // way (one half-life) to 11/120 per second; over 240 s that is 11 tasks, besides the one running.
    clock = NOW + 120_000;
    await p.agent('coder-a', 'busy', undefined, {}, ago(5), { tasksCompleted: 11 });
    const { started } = await manager.reconcile(p.backlogOf({ visible: 0, inFlight: 1 }));
    expect(coders(started)).toHaveLength(7); // 12 wanted, 8 at most, 1 there
    expect((await p.agents.poolEstimates()).coder).toMatchObject({ at: clock, seen: 12 });
  });

  it('with the start time weighed, keeps the counts behind the mean task duration between rounds', async () => {
    let clock = NOW;
    const manager = new PoolManager({
      agents: p.agents,
      runtime: { start: async (type, count) => Array.from({ length: count }, (_, i) => ({ agentId: `${type}-w${clock}-${i}`, runtime: { kind: 'process' as const, pid: 1 } })), stop: async () => undefined, isAlive: async () => true },
      heartbeatSeconds: 60,
      startAllowanceSeconds: 300,
      defaults: { coder: { min: 0, max: 8 } },
      reactionSeconds: 240,
      startSeconds: 60,
      now: () => clock,
    });
    await p.agent('coder-a', 'busy', undefined, {}, ago(5), { tasksCompleted: 0 });
    await manager.reconcile(p.backlogOf({ visible: 0, inFlight: 1 }));
    expect((await p.agents.poolEstimates()).coder).toEqual({ at: NOW, seen: 1, ratePerSecond: 0, finished: 0, inFlight: 1 });
    // A minute later coder-a has finished two half-minute tasks and runs a third: 60 task-seconds for 2.
    clock = NOW + 60_000;
    await p.agent('coder-a', 'busy', undefined, {}, ago(5), { tasksCompleted: 2 });
    await manager.reconcile(p.backlogOf({ visible: 0, inFlight: 1 }));
    expect((await p.agents.poolEstimates()).coder).toMatchObject({ at: clock, seen: 3, finished: 2, inFlight: 1, busySeconds: 60, completions: 2 });
  });
});

describe('the executions table\'s reads for the pool', () => {
  let executions: ExecutionStore;
  let name: string;
  beforeAll(async () => {
    name = `executions-${++table}`;
    await createTables(ddb, { executions: name });
    executions = new ExecutionStore(ddb, name);
  });

  it('finds the demand hints of running executions started since a time, not older or ended ones', async () => {
    const at = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
    const record = async (startedAt: string, status: ExecutionRecord['status'], demand?: ExecutionRecord['demand']) => {
      const id = await recordExecution(executions, [{ id: 't', agentType: 'tester', command: 'true' } as Task]);
      // Re-put the execution's item as submitted at that time (recordExecution stamps now).
      const execution = (await executions.getExecution(id))!;
      await ddb.send(new PutCommand({ TableName: name, Item: { pk: `X#${id}`, sk: 'META', gsi1pk: 'EXEC', gsi1sk: `${startedAt}#${id}`, ...execution, startedAt, status, ...(demand ? { demand } : {}) } }));
      return id;
    };
    await record(at(1), 'RUNNING', { tester: 40 });
    await record(at(1), 'SUCCEEDED', { tester: 5 });
    await record(at(30), 'RUNNING', { coder: 3 });
    await record(at(1), 'PENDING', { coder: 2 });
    expect(await executions.recentDemands(at(2))).toEqual(expect.arrayContaining([{ tester: 40 }, { coder: 2 }]));
    expect(await executions.recentDemands(at(2))).toHaveLength(2);
  });

  it('reads the report\'s fields of the tasks of executions still running in the window', async () => {
    const id = await recordExecution(executions, [{ id: 'a', agentType: 'reviewer', command: 'true' } as Task], { dispatchedAt: 1234 });
    await executions.setStatus(id, 'SUCCEEDED', { from: ['RUNNING'], stoppedAt: new Date(Date.now() - 7_200_000).toISOString() });
    const ended = await recordExecution(executions, [{ id: 'b', agentType: 'reviewer', command: 'true' } as Task], { dispatchedAt: 5678 });
    const tasks = await executions.recentTasks(new Date(Date.now() - 3_600_000).toISOString(), new Date(Date.now() - 60_000).toISOString());
    // Only what the report reads; and not the tasks of an execution that ended before the window.
    expect(tasks).toContainEqual({ agentType: 'reviewer', status: 'queued', dispatchedAt: 5678 });
    expect(tasks.find((t) => t.dispatchedAt === 1234)).toBeUndefined();
    void ended;
  });
});
