// Breakers in the layer's steps, on the emulators: a submit records the keys each task needs, Gate
// admits every one of them (refusing, by name, what an open breaker gates), Recover counts a failure
// against the key it says something about, and the API shows and resets breakers by URL-encoded key.
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoBreakerStore } from '../../core/aws/breaker-store.ts';
import { ExecutionStore } from '../../core/aws/execution-store.ts';
import { PayloadStore } from '../../core/aws/payload-store.ts';
import { BreakerPolicies, CircuitBreaker } from '../../core/breakers.ts';
import type { TaskError } from '../../core/errors.ts';
import { ExecutionService } from '../../core/executions.ts';
import { noEvents } from '#core/events.ts';
import { ExecutionSteps, type GateResult } from '../../core/steps.ts';
import { type Emulators, startEmulators } from '../support/emulators.ts';

let e: Emulators;
let executions: ExecutionStore;
let store: DynamoBreakerStore;
let breaker: CircuitBreaker;
let service: ExecutionService;
let steps: ExecutionSteps;

beforeAll(async () => {
  e = await startEmulators({ prefix: 'brk-', queues: [] });
  executions = new ExecutionStore(e.ddb, e.tables.executions);
  store = new DynamoBreakerStore(e.ddb, e.tables.breakers);
  breaker = new CircuitBreaker(store, { closedCacheMs: 0 });
  // The workflow port: these tests drive the steps themselves.
  service = new ExecutionService({ executions, payloads: new PayloadStore(e.s3, e.bucket), workflows: { start: async () => {}, stop: async () => {} } });
  steps = new ExecutionSteps({ executions, breaker, queueUrlPrefix: 'https://sqs.local/xl-', dispatchAllowanceSeconds: 60, events: noEvents });
});
afterAll(async () => e?.close());

/** A running execution of a command task, a Claude Code task and a task cloning from GitHub, all coders. */
async function submit(): Promise<string> {
  const { executionId } = await service.submit({
    pattern: 'parallel',
    tasks: [
      { id: 'cmd', agentType: 'coder', command: 'make' },
      { id: 'claude', agentType: 'coder', instructions: 'fix the bug' },
      { id: 'clone', agentType: 'coder', command: 'make', workspace: { repository: 'git@github.com:org/repo.git' } },
    ],
  });
  await steps.prepare({ executionId });
  return executionId;
}

async function open(key: string): Promise<void> {
  for (let i = 0; i < 5; i++) await breaker.recordFailure(key);
}

/** The agent's side of a failed run: claim the task and record its error, as a worker does. */
async function agentFails(executionId: string, taskIndex: number, error: TaskError): Promise<void> {
  const task = (await executions.getTask(executionId, taskIndex))!;
  const claimId = randomUUID();
  await executions.claimTask({ executionId, index: taskIndex, dispatchSeq: task.dispatchSeq, agentId: 'a1', claimId, leaseMs: 60_000 });
  await executions.finishClaim(executionId, taskIndex, claimId, { status: 'failed', error });
}

describe('breakers in the steps', () => {
  it('a submit records the breakers each task needs on its record', async () => {
    const id = await submit();
    const tasks = (await executions.listTasks(id)).sort((a, b) => a.index - b.index);
    expect(tasks.map((t) => t.breakers)).toEqual([['agent:coder'], ['agent:coder', 'dependency:model-api'], ['agent:coder', 'dependency:git:github.com']]);
  });

  it('Gate refuses the Claude Code task while the model API\'s breaker is open, naming it and its probe time; the command task of the same type goes', async () => {
    const id = await submit();
    await open('dependency:model-api');
    const refused = await steps.gate({ executionId: id, taskIndex: 1 });
    const nextProbeAt = (await store.get('dependency:model-api'))!.nextProbeAt;
    expect(refused).toEqual({
      action: 'blocked',
      failure: { Error: 'dependency', Cause: expect.stringMatching(new RegExp(`^circuit breaker dependency:model-api is open .* one probe through at ${nextProbeAt}$`)) },
      breaker: 'dependency:model-api',
      retryAt: nextProbeAt,
    });
    expect((await steps.gate({ executionId: id, taskIndex: 0 })).action).toBe('dispatch');
    await breaker.reset('dependency:model-api');
  });

  it('Gate tells the agent which breakers to report a success to: those with failures counted', async () => {
    const id = await submit();
    await breaker.recordFailure('dependency:git:github.com');
    const gate = (await steps.gate({ executionId: id, taskIndex: 2 })) as Extract<GateResult, { action: 'dispatch' }>;
    expect(gate.dispatch.MessageBody).toMatchObject({ probe: false, breakers: ['dependency:git:github.com'] });
    const quiet = (await steps.gate({ executionId: id, taskIndex: 0 })) as Extract<GateResult, { action: 'dispatch' }>;
    expect(quiet.dispatch.MessageBody).toMatchObject({ probe: false, breakers: [] });
    await breaker.reset('dependency:git:github.com');
  });

  it('Recover counts a failed clone against the git host, a 529 against the model API, and a bad command against nothing', async () => {
    const id = await submit();
    const before = async (key: string) => (await store.get(key))?.failures ?? 0;
    const [git, model, coder] = [await before('dependency:git:github.com'), await before('dependency:model-api'), await before('agent:coder')];

    await steps.gate({ executionId: id, taskIndex: 2 });
    await agentFails(id, 2, { type: 'transient', source: 'git', message: 'the repository could not be cloned: connection reset' });
    expect(await steps.recover({ executionId: id, taskIndex: 2, failure: { Error: 'transient', Cause: 'clone failed' } })).toMatchObject({ action: 'retry' });

    await steps.gate({ executionId: id, taskIndex: 1 });
    await agentFails(id, 1, { type: 'transient', source: 'model-api', message: 'overloaded (529)' });
    await steps.recover({ executionId: id, taskIndex: 1, failure: { Error: 'transient', Cause: 'overloaded' } });

    await steps.gate({ executionId: id, taskIndex: 0 });
    await agentFails(id, 0, { type: 'permanent', source: 'command', message: 'make: *** No rule to make target' });
    await steps.recover({ executionId: id, taskIndex: 0, failure: { Error: 'permanent', Cause: 'make failed' } });

    expect((await store.get('dependency:git:github.com'))?.failures).toBe(git + 1);
    expect((await store.get('dependency:model-api'))?.failures).toBe(model + 1);
    expect((await store.get('agent:coder'))?.failures ?? 0).toBe(coder);
  });

  it('a refusal by an open breaker is not counted as another failure', async () => {
    const id = await submit();
    await open('dependency:model-api');
    const gate = await steps.gate({ executionId: id, taskIndex: 1 });
    const before = await store.get('dependency:model-api');
    await steps.recover({ executionId: id, taskIndex: 1, gate });
    expect(await store.get('dependency:model-api')).toEqual(before);
    await breaker.reset('dependency:model-api');
  });
});

describe('the breakers API', () => {
  const policy = JSON.stringify({ 'dependency:git:*': { failureThreshold: 2, cooldownSeconds: 120 } });
  // Another process of the fleet, with the policy the API reads from XL_BREAKER_POLICY.
  const fleet = () => new CircuitBreaker(store, { policy: BreakerPolicies.parse(policy), closedCacheMs: 0 });
  let handler: (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
  const call = async (httpMethod: string, path: string) => {
    const res = await handler({ httpMethod, path, headers: {}, queryStringParameters: null, body: null, isBase64Encoded: false } as unknown as APIGatewayProxyEvent, {} as Context);
    return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown> };
  };

  beforeAll(async () => {
    Object.assign(process.env, {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_DYNAMODB: e.dynamo.endpoint,
      XL_TABLE_EXECUTIONS: e.tables.executions,
      XL_TABLE_AGENTS: e.tables.agents,
      XL_TABLE_BREAKERS: e.tables.breakers,
      XL_BUCKET: e.bucket,
      XL_QUEUE_URL_PREFIX: e.queuePrefix,
      XL_BREAKER_POLICY: policy,
    });
    delete process.env.XL_API_TOKEN;
    ({ handler } = await import('../support/api.ts'));
  });

  it('GET /breakers shows each key\'s state, failures, openedAt and next probe time', async () => {
    await fleet().recordFailure('dependency:git:gitlab.example.com');
    await fleet().recordFailure('dependency:git:gitlab.example.com');
    const record = (await store.get('dependency:git:gitlab.example.com'))!;
    const res = await call('GET', '/breakers');
    expect(res.status).toBe(200);
    // Two failures open it under that policy, for 120 s.
    expect(res.body.items).toContainEqual({
      key: 'dependency:git:gitlab.example.com',
      state: 'open',
      failures: 2,
      openedAt: record.openedAt,
      nextProbeAt: new Date(Date.parse(record.openedAt!) + 120_000).toISOString(),
    });
  });

  it('POST /breakers/{key}/reset closes a breaker named by its URL-encoded key, or by the key as it is', async () => {
    expect((await store.get('dependency:git:gitlab.example.com'))?.state).toBe('open');
    const encoded = await call('POST', `/breakers/${encodeURIComponent('dependency:git:gitlab.example.com')}/reset`);
    expect(encoded).toEqual({ status: 200, body: { key: 'dependency:git:gitlab.example.com', state: 'closed' } });
    expect(await store.get('dependency:git:gitlab.example.com')).toMatchObject({ state: 'closed', failures: 0 });
    expect((await call('POST', '/v1/breakers/dependency:git:gitlab.example.com/reset')).status).toBe(200);
  });

  it('POST /breakers/{key}/reset of a real key that never failed is the contract\'s 200 (it is closed); a key no breaker can have is a 404 naming it', async () => {
    expect(await call('POST', `/breakers/${encodeURIComponent('agent:monitor')}/reset`)).toEqual({ status: 200, body: { key: 'agent:monitor', state: 'closed' } });
    expect(await call('POST', `/breakers/${encodeURIComponent('dependency:git:git.example.com')}/reset`)).toMatchObject({ status: 200 });
    const nope = await call('POST', `/breakers/${encodeURIComponent('agent:nope')}/reset`);
    expect(nope).toMatchObject({ status: 404, body: { error: { type: 'permanent', source: 'api', message: expect.stringContaining('no circuit breaker agent:nope') } } });
  });
});
