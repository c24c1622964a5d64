// The agent worker against real emulators: dynalite (tables), fauxqs (queues, bucket) and the
// local Step Functions service (task tokens: a one-state machine dispatches as TaskBatch does,
// with sqs:sendMessage.waitForTaskToken). Workers run in this process, and as agent/main.ts child
// processes where a test kills one.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  type QueueAttributeName,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandDriver } from '../../agent/drivers/command.ts';
import { Checkpoints } from '../../agent/checkpoint.ts';
import { killAllProcessesOf, resolveRunAs } from '../../agent/run-as.ts';
import { ClaudeCodeDriver } from '../../agent/drivers/claude-code.ts';
import { type Logger, Worker, type WorkerDeps } from '../../agent/worker.ts';
import { Workspaces } from '../../agent/workspace.ts';
import type { AgentType, Priority } from '../../core/agent-types.ts';
import { AgentStore } from '../../core/aws/agent-store.ts';
import { DynamoBreakerStore } from '../../core/aws/breaker-store.ts';
import { ExecutionStore } from '../../core/aws/execution-store.ts';
import { PayloadStore } from '../../core/aws/payload-store.ts';
import { CircuitBreaker } from '../../core/breakers.ts';
import type { Task } from '../../core/plan.ts';
import type { ExecutionRecord, TaskRecord, TaskStatus } from '../../core/records.ts';
import { LocalStepFunctions } from '../../local/stepfunctions/index.ts';
import { type Emulators, LOCAL_CLIENT, startEmulators, type TableNames } from '../support/emulators.ts';
import { alive, waitFor } from '../support/processes.ts';

const ROOT = join(import.meta.dirname, '../..');
const HEARTBEAT_SECONDS = 1.5; // interval 500 ms; lease and visibility 1 s
const INTERVAL_MS = (HEARTBEAT_SECONDS * 1000) / 3;
const DISPATCH_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:Dispatch';

let emulators: Emulators;
let tables: TableNames;
let bucket: string;
let sfnService: LocalStepFunctions;
let sfnEndpoint: string;
let ddb: DynamoDBDocumentClient;
let sqs: SQSClient;
let s3: S3Client;
let sfn: SFNClient;
let executions: ExecutionStore;
let agents: AgentStore;
let breakers: DynamoBreakerStore;
let queuePrefix: string;
let scratch: string;
const workers: Worker[] = [];
const children: ChildProcess[] = [];

// ---- fixtures ---------------------------------------------------------------------------------

beforeAll(async () => {
  emulators = await startEmulators({ prefix: 'xlt-', queues: ['tester', 'coder', 'reviewer', 'documenter', 'architect', 'performance'] });
  ({ ddb, sqs, s3, tables, bucket, queuePrefix } = emulators);
  scratch = await mkdtemp(join(tmpdir(), 'xl-worker-test-'));
  // Worker processes started as root run commands as another user (agent/run-as.ts): they write here.
  await chmod(scratch, 0o777);
  executions = new ExecutionStore(ddb, tables.executions);
  agents = new AgentStore(ddb, tables.agents);
  breakers = new DynamoBreakerStore(ddb, tables.breakers);

  // The dispatch as the TaskBatch fragment does it: ids and the token in the message, then wait.
  sfnService = new LocalStepFunctions({
    stateMachines: [
      {
        arn: DISPATCH_ARN,
        name: 'Dispatch',
        definition: {
          StartAt: 'Dispatch',
          States: {
            Dispatch: {
              Type: 'Task',
              Resource: 'arn:aws:states:::sqs:sendMessage.waitForTaskToken',
              Parameters: {
                'QueueUrl.$': '$.queueUrl',
                MessageBody: {
                  'executionId.$': '$.executionId',
                  'taskIndex.$': '$.taskIndex',
                  'dispatchSeq.$': '$.dispatchSeq',
                  'dispatchTimeoutSeconds.$': '$.dispatchTimeoutSeconds',
                  'probe.$': '$.probe',
                  'breakers.$': '$.breakers',
                  'taskToken.$': '$$.Task.Token',
                },
              },
              TimeoutSeconds: 120,
              End: true,
            },
          },
        },
      },
    ],
    lambdas: {},
    sqs,
  });
  sfnEndpoint = (await sfnService.start()).endpoint;
  sfn = new SFNClient({ ...LOCAL_CLIENT, endpoint: sfnEndpoint });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(workers.map((w) => w.stop({ graceful: false })));
  await sfnService?.close();
  await emulators?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

// ---- helpers ----------------------------------------------------------------------------------

interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

function collectingLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => void lines.push({ level, msg, fields });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** An SQS client that remembers what its worker received (body and receipt handle). */
function spyingSqs(received: Message[]): SQSClient {
  const client = new SQSClient({ ...LOCAL_CLIENT, endpoint: emulators.fauxqs.endpoint });
  const send = client.send.bind(client) as (cmd: unknown, opts?: unknown) => Promise<{ Messages?: Message[] }>;
  client.send = (async (cmd: unknown, opts?: unknown) => {
    const out = await send(cmd, opts);
    if (cmd instanceof ReceiveMessageCommand) received.push(...(out.Messages ?? []));
    return out;
  }) as SQSClient['send'];
  return client;
}

interface MetricPoint {
  name: string;
  unit: string;
  value: number;
  dimensions?: Readonly<Record<string, string>>;
}

interface TestWorker {
  worker: Worker;
  agentId: string;
  logs: LogLine[];
  received: Message[];
  metrics: MetricPoint[];
}

async function startWorker(
  agentType: AgentType,
  opts: { slots?: number; graceMs?: number; drivers?: WorkerDeps['drivers']; checkpoints?: boolean; sqs?: SQSClient; affinityWaitMs?: number } = {},
): Promise<TestWorker> {
  const agentId = `${agentType}-inproc-${randomUUID().slice(0, 6)}`;
  const logs: LogLine[] = [];
  const received: Message[] = [];
  const metrics: MetricPoint[] = [];
  const worker = new Worker(
    {
      agentId,
      agentType,
      slots: opts.slots ?? 1,
      queueUrlPrefix: queuePrefix,
      heartbeatIntervalMs: INTERVAL_MS,
      graceMs: opts.graceMs ?? 1000,
      runtime: { kind: 'process', pid: process.pid },
      ...(opts.affinityWaitMs !== undefined ? { affinityWaitMs: opts.affinityWaitMs } : {}),
    },
    {
      executions,
      payloads: new PayloadStore(s3, bucket),
      agents,
      breaker: new CircuitBreaker(breakers),
      sqs: opts.sqs ?? spyingSqs(received),
      sfn: new SFNClient({ ...LOCAL_CLIENT, endpoint: sfnEndpoint }),
      drivers: opts.drivers ?? { command: new CommandDriver() },
      workspaces: new Workspaces(join(scratch, 'workspaces')),
      ...(opts.checkpoints ? { checkpoints: new Checkpoints({ payloads: new PayloadStore(s3, bucket) }) } : {}),
      log: collectingLogger(logs),
      metrics: { add: (name, unit, value, dimensions) => void metrics.push({ name, unit, value, ...(dimensions ? { dimensions } : {}) }) },
    },
  );
  workers.push(worker);
  await worker.start();
  return { worker, agentId, logs, received, metrics };
}

/** A worker process (agent/main.ts), as the local layer starts one. */
function startWorkerProcess(agentType: AgentType, extraEnv: Record<string, string> = {}): { child: ChildProcess; agentId: string; runDir: string; stderr: () => string } {
  const agentId = `${agentType}-proc-${randomUUID().slice(0, 6)}`;
  const runDir = join(scratch, 'run');
  let err = '';
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'agent/main.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      AWS_REGION: LOCAL_CLIENT.region,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_DYNAMODB: emulators.dynamo.endpoint,
      AWS_ENDPOINT_URL_SQS: emulators.fauxqs.endpoint,
      AWS_ENDPOINT_URL_S3: emulators.fauxqs.endpoint,
      AWS_ENDPOINT_URL_SFN: sfnEndpoint,
      XL_TABLE_EXECUTIONS: tables.executions,
      XL_TABLE_AGENTS: tables.agents,
      XL_TABLE_BREAKERS: tables.breakers,
      XL_BUCKET: bucket,
      XL_QUEUE_URL_PREFIX: queuePrefix,
      XL_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
      XL_AGENT_TYPE: agentType,
      XL_AGENT_ID: agentId,
      XL_RUN_DIR: runDir,
      XL_WORKSPACE_ROOT: join(scratch, 'workspaces'),
      ...extraEnv,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  children.push(child);
  return { child, agentId, runDir, stderr: () => err };
}

interface TaskSpec {
  /** Exactly one of command and instructions. */
  command?: string;
  instructions?: string;
  agentType?: AgentType;
  stage?: number;
  status?: TaskStatus;
  dispatchSeq?: number;
  attempts?: number;
  output?: Record<string, unknown>;
  timeoutSeconds?: number;
  priority?: Priority;
}

/** Records an execution and its tasks as POST /executions would (the tasks queued, ready for dispatch). */
async function createExecution(
  specs: TaskSpec[],
  opts: { pattern?: ExecutionRecord['pattern']; input?: Record<string, unknown>; stages?: ExecutionRecord['stages']; stopping?: ExecutionRecord['stopping'] } = {},
): Promise<string> {
  const executionId = `ex-${randomUUID().slice(0, 12)}`;
  const tasks: TaskRecord[] = specs.map((s, index) => {
    const definition = {
      id: `t${index}`,
      agentType: s.agentType ?? 'tester',
      ...(s.instructions ? { instructions: s.instructions } : { command: s.command }),
      timeoutSeconds: s.timeoutSeconds ?? 60,
      failureStrategy: 'stop',
      priority: s.priority ?? 'normal',
    } as Task;
    return {
      executionId,
      index,
      taskId: definition.id,
      stage: s.stage ?? 0,
      agentType: definition.agentType,
      priority: s.priority ?? 'normal',
      timeoutSeconds: definition.timeoutSeconds,
      failureStrategy: 'stop',
      definition: { inline: definition },
      status: s.status ?? 'queued',
      attempts: s.attempts ?? 0,
      dispatchSeq: s.dispatchSeq ?? 1,
      retries: {},
      ...(s.output ? { output: { inline: s.output } } : {}),
    };
  });
  await executions.createExecution(
    {
      executionId,
      name: executionId,
      pattern: opts.pattern ?? 'sequential',
      status: 'RUNNING',
      planHash: 'test',
      planKey: `plans/${executionId}.json`,
      input: { inline: opts.input ?? {} },
      maxConcurrency: 1,
      stages: opts.stages ?? [{ name: '', from: 0, to: specs.length }],
      taskCount: specs.length,
      startedAt: new Date().toISOString(),
      ...(opts.stopping ? { stopping: opts.stopping } : {}),
    },
    tasks,
  );
  return executionId;
}

const queueUrl = (type: AgentType = 'tester') => `${queuePrefix}${type}-normal`;

/** Dispatches a task through the local Step Functions service; returns the workflow execution. */
async function dispatch(executionId: string, taskIndex: number, opts: { type?: AgentType; seq?: number; probe?: boolean; breakers?: string[]; priority?: Priority; url?: string } = {}): Promise<string> {
  const res = await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: DISPATCH_ARN,
      name: `${executionId}-${taskIndex}-${randomUUID().slice(0, 4)}`,
      input: JSON.stringify({
        queueUrl: opts.url ?? (opts.priority ? `${queuePrefix}${opts.type ?? 'tester'}-${opts.priority}` : queueUrl(opts.type)),
        executionId,
        taskIndex,
        dispatchSeq: opts.seq ?? 1,
        dispatchTimeoutSeconds: 120,
        probe: opts.probe ?? false,
        breakers: opts.breakers ?? [],
      }),
    }),
  );
  return res.executionArn!;
}

/** How the dispatch ended: the SendTaskSuccess output, or the SendTaskFailure error and cause. */
async function dispatchOutcome(executionArn: string, ms = 10_000): Promise<{ status: string; output?: unknown; error?: string; cause?: string }> {
  let last: string | undefined;
  await waitFor(async () => {
    const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    last = d.status;
    return d.status !== 'RUNNING';
  }, ms).catch((err) => {
    throw new Error(`dispatch still ${last}: ${(err as Error).message}`);
  });
  const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  return { status: d.status!, output: d.output ? JSON.parse(d.output) : undefined, error: d.error, cause: d.cause };
}

async function sendRaw(body: string, type: AgentType = 'tester'): Promise<void> {
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl(type), MessageBody: body }));
}

/** Messages on the queue, visible, in flight or delayed (a held task's relayed copy: agent/custody.ts). */
async function queueDepth(type: AgentType = 'tester'): Promise<number> {
  const res = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl(type),
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  const count = (name: QueueAttributeName) => Number(res.Attributes?.[name] ?? 0);
  return count('ApproximateNumberOfMessages') + count('ApproximateNumberOfMessagesNotVisible') + count('ApproximateNumberOfMessagesDelayed');
}

const task = (executionId: string, index = 0) => executions.getTask(executionId, index) as Promise<TaskRecord>;

/** Whether a Claude Code session transcript exists in some run's home under the workspace root. */
async function sessionStarted(workspaceRoot: string): Promise<boolean> {
  const homes = (await readdir(workspaceRoot).catch(() => [])).filter((d) => d.endsWith('.home'));
  for (const home of homes) {
    const projects = join(workspaceRoot, home, '.claude', 'projects');
    for (const dir of await readdir(projects).catch(() => [])) {
      if ((await readdir(join(projects, dir))).some((f) => f.endsWith('.jsonl'))) return true;
    }
  }
  return false;
}

const pidIn = async (file: string) => Number((await readFile(file, 'utf8').catch(() => '')).trim());

// ---- the tests --------------------------------------------------------------------------------

describe('agent worker', () => {
  let a: TestWorker;
  let b: TestWorker;

  beforeAll(async () => {
    // Two single-slot agents of one type, as a small pool would be.
    [a, b] = await Promise.all([startWorker('tester'), startWorker('tester')]);
  });

  it('registers itself as an idle agent with its runtime', async () => {
    const record = await agents.get(a.agentId);
    expect(record).toMatchObject({ agentType: 'tester', status: 'idle', runtime: { kind: 'process', pid: process.pid } });
    expect(record?.health.metrics).toEqual(expect.objectContaining({ cpu: expect.any(Number), memory: expect.any(Number) }));
  });

  it('completes a task: output recorded, attempts 1, SendTaskSuccess, message deleted', async () => {
    const id = await createExecution([{ command: `echo working; echo '{"answer":42,"attempt":'$XL_ATTEMPT'}'` }]);
    const arn = await dispatch(id, 0);
    expect(await dispatchOutcome(arn)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 1 } });
    const t = await task(id);
    expect(t).toMatchObject({ status: 'completed', attempts: 1, output: { inline: { answer: 42, attempt: 1 } } });
    expect(t.durationMs).toBeGreaterThanOrEqual(0);
    expect(t.finishedAt).toBeTruthy();
    expect([a.agentId, b.agentId]).toContain(t.agentId);
    await waitFor(async () => (await queueDepth()) === 0);
    // The run's lines carry its ids.
    const finished = () => [...a.logs, ...b.logs].find((l) => l.msg === 'task finished' && l.fields?.executionId === id);
    await waitFor(async () => finished() !== undefined);
    expect(finished()!.fields).toMatchObject({ executionId: id, index: 0, taskId: t.taskId, attempt: 1, dispatchSeq: 1, status: 'completed' });
    // The runner's metrics: started, queue wait, completed, duration; no cost (a command spends none).
    const ran = t.agentId === a.agentId ? a : b;
    expect(ran.metrics.map((m) => m.name)).toEqual(['TasksStarted', 'QueueWait', 'TasksCompleted', 'TaskDuration']);
    expect(ran.metrics.find((m) => m.name === 'QueueWait')).toMatchObject({ unit: 'Milliseconds', value: expect.any(Number) });
    expect(ran.metrics.find((m) => m.name === 'TaskDuration')!.value).toBe(t.durationMs);
    ran.metrics.length = 0;
  });

  it('a failing command fails the dispatch with error "permanent" and the stderr message', async () => {
    const id = await createExecution([{ command: 'echo "cannot open config.yml" >&2; exit 2' }]);
    const arn = await dispatch(id, 0);
    expect(await dispatchOutcome(arn)).toMatchObject({ status: 'FAILED', error: 'permanent', cause: 'cannot open config.yml' });
    expect(await task(id)).toMatchObject({ status: 'failed', attempts: 1, error: { type: 'permanent', message: 'cannot open config.yml' } });
    await waitFor(async () => (await queueDepth()) === 0);
    expect([...a.metrics, ...b.metrics]).toContainEqual({ name: 'TasksFailed', unit: 'Count', value: 1, dimensions: { errorType: 'permanent' } });
  });

  it('a command past its timeoutSeconds fails the dispatch with error "timeout"', async () => {
    const id = await createExecution([{ command: 'sleep 10', timeoutSeconds: 1 }]);
    const arn = await dispatch(id, 0);
    expect(await dispatchOutcome(arn)).toMatchObject({ status: 'FAILED', error: 'timeout', cause: 'timed out after 1 s' });
    expect(await task(id)).toMatchObject({ status: 'failed', error: { type: 'timeout' } });
  });

  it('drops a hand-made message for a task that does not exist, and a message that is not a dispatch', async () => {
    const marker = join(scratch, 'forged-ran');
    await sendRaw(JSON.stringify({ executionId: 'ex-forged', taskIndex: 0, dispatchSeq: 1, dispatchTimeoutSeconds: 60, taskToken: 'forged' }));
    await sendRaw(`{"command":"touch ${marker}"}`);
    await sendRaw('not json at all');
    await waitFor(async () => (await queueDepth()) === 0);
    const logs = [...a.logs, ...b.logs].map((l) => l.msg);
    expect(logs.filter((m) => m === 'dropped a message for a task that does not exist')).toHaveLength(1);
    expect(logs.filter((m) => m === 'dropped a message that is not a dispatch')).toHaveLength(2);
    await expect(readFile(marker)).rejects.toThrow();
  });

  it('drops a stale dispatch (another dispatchSeq) without running it', async () => {
    const marker = join(scratch, 'stale-ran');
    const id = await createExecution([{ command: `touch ${marker}`, dispatchSeq: 3 }]);
    await sendRaw(JSON.stringify({ executionId: id, taskIndex: 0, dispatchSeq: 2, dispatchTimeoutSeconds: 60, taskToken: 'old-token' }));
    await waitFor(async () => (await queueDepth()) === 0);
    await expect(readFile(marker)).rejects.toThrow();
    expect(await task(id)).toMatchObject({ status: 'queued', attempts: 0, dispatchSeq: 3 });
  });

  it('reports a dispatched task that a stop skipped before any agent claimed it, without running it', async () => {
    const marker = join(scratch, 'skipped-ran');
    const id = await createExecution([{ command: `touch ${marker}` }], { stopping: { taskId: 'other', stage: '' } });
    // What Recover does after marking the execution stopping: unclaimed tasks are skipped.
    expect(await executions.skipWaitingTasks(id, 'task other failed with failureStrategy "stop"')).toBe(1);
    const arn = await dispatch(id, 0);
    expect(await dispatchOutcome(arn)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'skipped', attempts: 0 } });
    expect(await task(id)).toMatchObject({ status: 'skipped' });
    await expect(readFile(marker)).rejects.toThrow();
  });

  it('gives a later pipeline stage the plan input merged with earlier stages’ outputs', async () => {
    const id = await createExecution(
      [
        { command: 'true', stage: 0, status: 'completed', output: { a: 1, shared: 'first' } },
        { command: 'true', stage: 0, status: 'completed', output: { b: 2, shared: 'second' } },
        { command: 'cat', stage: 1 },
      ],
      {
        pattern: 'pipeline',
        input: { seed: true, shared: 'input' },
        stages: [
          { name: 'one', from: 0, to: 2 },
          { name: 'two', from: 2, to: 3 },
        ],
      },
    );
    const arn = await dispatch(id, 2);
    expect((await dispatchOutcome(arn)).status).toBe('SUCCEEDED');
    expect((await task(id, 2)).output).toEqual({ inline: { seed: true, a: 1, b: 2, shared: 'second' } });
  });

  it('a probe dispatch that completes closes the half-open breaker it probes', async () => {
    await breakers.put({ key: 'agent:tester', state: 'half-open', failures: 5, openedAt: new Date().toISOString(), probeId: 'p', version: 1 }, 0);
    const id = await createExecution([{ command: `echo '{}'` }]);
    const arn = await dispatch(id, 0, { probe: true, breakers: ['agent:tester'] });
    expect((await dispatchOutcome(arn)).status).toBe('SUCCEEDED');
    await waitFor(async () => (await breakers.get('agent:tester'))?.state === 'closed', 3000);
    expect(await breakers.get('agent:tester')).toMatchObject({ state: 'closed', failures: 0 });
  });

  it('a completed run resets the counts of the breakers its dispatch names; a transient failure reports nothing to them', async () => {
    const failedAt = Date.now();
    await breakers.put({ key: 'dependency:git:flaky.example', state: 'closed', failures: 2, failureTimes: [failedAt, failedAt], version: 1 }, 0);
    const failing = await createExecution([{ command: 'exit 75' }]);
    expect((await dispatchOutcome(await dispatch(failing, 0, { breakers: ['dependency:git:flaky.example'] }))).error).toBe('transient');
    expect(await breakers.get('dependency:git:flaky.example')).toMatchObject({ failures: 2, version: 1 });

    const id = await createExecution([{ command: `echo '{}'` }]);
    expect((await dispatchOutcome(await dispatch(id, 0, { breakers: ['dependency:git:flaky.example'] }))).status).toBe('SUCCEEDED');
    await waitFor(async () => (await breakers.get('dependency:git:flaky.example'))?.failures === 0, 3000);
    expect(await breakers.get('dependency:git:flaky.example')).toMatchObject({ state: 'closed', failures: 0 });
  });

  it('runs a message delivered twice only once: the second delivery finds the task held', async () => {
    const counter = join(scratch, 'twice-count');
    const id = await createExecution([{ command: `echo run >> ${counter}; sleep 1.2; echo '{"ok":true}'` }]);
    const arn = await dispatch(id, 0);
    await waitFor(async () => (await task(id)).status === 'running');
    const holder = (await task(id)).agentId === a.agentId ? a : b;
    const other = holder === a ? b : a;
    const delivery = holder.received.find((m) => m.Body?.includes(id))!;
    expect(delivery).toBeDefined();
    // At-least-once delivery: the message becomes visible again while the first agent runs it.
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl(), ReceiptHandle: delivery.ReceiptHandle!, VisibilityTimeout: 0 }));
    await waitFor(() => other.received.some((m) => m.Body === delivery.Body), 3000);
    expect(await dispatchOutcome(arn)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 1 } });
    await waitFor(async () => (await queueDepth()) === 0, 5000);
    expect((await readFile(counter, 'utf8')).trim().split('\n')).toEqual(['run']);
    expect(other.logs.some((l) => l.msg === 'task is held by another agent' && l.fields?.executionId === id)).toBe(true);
    expect(await task(id)).toMatchObject({ status: 'completed', attempts: 1, agentId: holder.agentId });
  });

  it('losing the claim kills the command’s process group and reports nothing', async () => {
    const pidFile = join(scratch, 'lost-pid');
    const id = await createExecution([{ command: `sleep 30 & echo $! > ${pidFile}; wait` }]);
    const arn = await dispatch(id, 0);
    await waitFor(async () => (await pidIn(pidFile)) > 0);
    const grandchild = await pidIn(pidFile);
    expect(alive(grandchild)).toBe(true);
    // Another agent takes the task over (as after a lease that ran out while this one stalled).
    await ddb.send(
      new UpdateCommand({
        TableName: tables.executions,
        Key: { pk: `X#${id}`, sk: 'T#000000' },
        UpdateExpression: 'SET claimId = :c, agentId = :a, leaseExpiresAt = :l',
        ExpressionAttributeValues: { ':c': 'someone-else', ':a': 'tester-other', ':l': Date.now() + 60_000 },
      }),
    );
    const lostAt = Date.now();
    await waitFor(() => !alive(grandchild), 3 * INTERVAL_MS + 1000);
    // At a renewal, not at the command's end (generous for a loaded machine: the renewal is every 0.5 s).
    expect(Date.now() - lostAt).toBeLessThan(3 * INTERVAL_MS + 1000);
    await new Promise((r) => setTimeout(r, 300));
    // Nothing was reported, and the message was left for the holder.
    expect((await sfn.send(new DescribeExecutionCommand({ executionArn: arn }))).status).toBe('RUNNING');
    expect(await queueDepth()).toBe(1);
    expect(await task(id)).toMatchObject({ status: 'running', claimId: 'someone-else' });
    expect([...a.logs, ...b.logs].some((l) => l.msg === 'claim lost; the command was killed' && l.fields?.executionId === id)).toBe(true);

    // The other agent finishes: the message, delivered again, is found finished and dropped.
    await ddb.send(
      new UpdateCommand({
        TableName: tables.executions,
        Key: { pk: `X#${id}`, sk: 'T#000000' },
        UpdateExpression: 'SET #s = :s REMOVE leaseExpiresAt',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': 'completed' },
      }),
    );
    expect(await dispatchOutcome(arn, 5000)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 1 } });
    await waitFor(async () => (await queueDepth()) === 0, 5000);
  });
});

describe('the agent\'s user after a run', () => {
  it.skipIf(process.getuid?.() !== 0)('with one agent per user, nothing a command left running outside its group survives the run', async () => {
    // A user of its own: killing every process of `nobody` could hit the machine's own services.
    execFileSync('sh', ['-c', 'id xl-reap-test >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin xl-reap-test']);
    const user = resolveRunAs('xl-reap-test')!;
    const daemonPid = join(scratch, `daemon-pid-${randomUUID().slice(0, 6)}`);
    // `setsid -f` forks the sleep into a session of its own: the group kill does not reach it.
    const daemon = `echo $$ > ${daemonPid}; exec sleep 60`;
    const started = `setsid -f sh -c '${daemon}' > /dev/null 2>&1 < /dev/null; while [ ! -s ${daemonPid} ]; do sleep 0.05; done`;
    const id = await createExecution([{ agentType: 'coder', command: `${started}; echo '{"started":true}'` }]);
    const w = await startWorker('coder', { drivers: { command: new CommandDriver({ runAs: user, reap: () => killAllProcessesOf(user) }) } });
    expect(await dispatchOutcome(await dispatch(id, 0, { type: 'coder' }), 10_000)).toMatchObject({ status: 'SUCCEEDED' });
    const pid = await pidIn(daemonPid);
    expect(pid).toBeGreaterThan(0);
    await waitFor(async () => !alive(pid), 3000);
    await w.worker.stop();
  });
});

describe('preemption', () => {
  it('asked to yield, an agent hands its low-priority run back checkpointed, runs the high-priority task, then resumes the first', async () => {
    const pidFile = join(scratch, 'yield-pid');
    const low = `if [ "$XL_ATTEMPT" = 1 ]; then echo half > progress.txt; sleep 30 & echo $! > ${pidFile}; wait; fi; echo '{"found":"'"$(cat progress.txt)"'"}'`;
    const id = await createExecution([
      { agentType: 'reviewer', command: low, priority: 'low' },
      { agentType: 'reviewer', command: `echo '{"urgent":true}'`, priority: 'high' },
    ]);
    const w = await startWorker('reviewer', { checkpoints: true });
    const lowRun = await dispatch(id, 0, { type: 'reviewer', priority: 'low' });
    await waitFor(async () => (await pidIn(pidFile)) > 0, 10_000);
    await waitFor(async () => (await agents.get(w.agentId))?.preemptible === true, 5000);
    const highRun = await dispatch(id, 1, { type: 'reviewer', priority: 'high' });

    // What the pool manager does when high-priority work waits and the pool is at its max.
    expect(await agents.requestYield(w.agentId, new Date().toISOString())).toBe(true);
    expect(await dispatchOutcome(highRun, 10_000)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 1 } });
    expect(await dispatchOutcome(lowRun, 10_000)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 2 } });
    const [first, urgent] = [await task(id, 0), await task(id, 1)];
    expect(first.output).toEqual({ inline: { found: 'half' } }); // resumed from its checkpoint
    expect(Date.parse(urgent.finishedAt!)).toBeLessThan(Date.parse(first.startedAt!)); // the high one ran in between
    expect(w.logs.some((l) => l.msg === 'yielding a low-priority task to high-priority work')).toBe(true);
    expect((await agents.get(w.agentId))?.yieldRequestedAt).toBeUndefined();
    await w.worker.stop();
  });
});

/**
 * An SQS client that counts its calls by command name, the messages each receive returned, and
 * each receive's WaitTimeSeconds in the order the receives were sent.
 */
function countingSqs(): { client: SQSClient; calls: Map<string, number>; receives: number[]; waits: number[] } {
  const calls = new Map<string, number>();
  const receives: number[] = [];
  const waits: number[] = [];
  const client = new SQSClient({ ...LOCAL_CLIENT, endpoint: emulators.fauxqs.endpoint });
  // A middleware sees every call the worker makes, whatever command class it used.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = context.commandName ?? '?';
      calls.set(name, (calls.get(name) ?? 0) + 1);
      if (name === 'ReceiveMessageCommand') waits.push((args.input as { WaitTimeSeconds?: number }).WaitTimeSeconds ?? 0);
      const out = await next(args);
      if (name === 'ReceiveMessageCommand') receives.push(((out.output as { Messages?: unknown[] }).Messages ?? []).length);
      return out;
    },
    { step: 'initialize', name: 'countCalls' },
  );
  return { client, calls, receives, waits };
}

describe('batching', () => {
  it('receives a burst of small tasks in one call and deletes their messages in one batch', async () => {
    const id = await createExecution(Array.from({ length: 4 }, () => ({ agentType: 'architect' as const, command: 'true' })));
    const arns = await Promise.all([0, 1, 2, 3].map((i) => dispatch(id, i, { type: 'architect' })));
    await waitFor(async () => {
      const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl('architect'), AttributeNames: ['ApproximateNumberOfMessages'] }));
      return Number(attrs.Attributes?.ApproximateNumberOfMessages) === 4;
    });
    const counting = countingSqs();
    // A type no other test's agent polls now.
    const w = await startWorker('architect', { slots: 4, sqs: counting.client });
    for (const arn of arns) expect((await dispatchOutcome(arn)).status).toBe('SUCCEEDED');
    // The four messages came in one receive: every other receive found nothing.
    expect(counting.receives.filter((n) => n > 0)).toEqual([4]);
    await waitFor(() => (counting.calls.get('DeleteMessageBatchCommand') ?? 0) > 0);
    expect(counting.calls.get('DeleteMessageCommand') ?? 0).toBeLessThan(4);
    await w.worker.stop();
  });
});

describe('polling', () => {
  it('an idle agent takes each new task with its long poll, and polls that queue again with a long poll, not a short one', async () => {
    const counting = countingSqs();
    // A type no other test's agent polls (a stopped agent's long polls stay out at the emulator).
    const w = await startWorker('performance', { slots: 2, sqs: counting.client });
    const id = await createExecution(Array.from({ length: 3 }, () => ({ agentType: 'performance' as const, command: 'true' })));
    for (const index of [0, 1, 2]) {
      // Each task is sent once the agent idles in its long polls again.
      await waitFor(() => counting.waits.filter((s) => s > 0).length >= 4 + index);
      expect((await dispatchOutcome(await dispatch(id, index, { type: 'performance' }))).status).toBe('SUCCEEDED');
    }
    // The short polls of its start (its direct queue and the three priority queues), then long polls only.
    const firstLong = counting.waits.findIndex((s) => s > 0);
    expect(counting.waits.slice(0, firstLong)).toEqual([0, 0, 0, 0]);
    expect(counting.waits.slice(firstLong).every((s) => s > 0)).toBe(true);
    await w.worker.stop();
  });
});

describe('affinity', () => {
  it('a task sent to a busy agent\'s direct queue goes back to its type queue after the short wait, and another agent runs it', async () => {
    const busy = await startWorker('architect', { slots: 1, affinityWaitMs: 200 });
    const record = await agents.get(busy.agentId);
    expect(record?.directQueueUrl).toContain('architect-direct-');
    const id = await createExecution([
      { agentType: 'architect', command: 'sleep 3' },
      { agentType: 'architect', command: `echo '{"moved":true}'` },
    ]);
    const long = await dispatch(id, 0, { type: 'architect' });
    await waitFor(async () => (await task(id, 0))?.agentId === busy.agentId);
    const other = await startWorker('architect');
    const preferred = await dispatch(id, 1, { url: record!.directQueueUrl });
    expect(await dispatchOutcome(preferred)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await task(id, 1)).toMatchObject({ status: 'completed', agentId: other.agentId });
    // It did not wait for the busy agent's task to end.
    expect((await task(id, 0))?.status).toBe('running');
    expect((await dispatchOutcome(long)).status).toBe('SUCCEEDED');
    await Promise.all([busy.worker.stop(), other.worker.stop()]);
    // The stopped agent's direct queue is gone.
    await expect(sqs.send(new GetQueueAttributesCommand({ QueueUrl: record!.directQueueUrl, AttributeNames: ['All'] }))).rejects.toThrow();
  });
});

describe('stopping an agent', () => {
  it('a graceful stop lets a running task finish and report, then marks the agent terminated', async () => {
    const w = await startWorker('documenter', { graceMs: 5000 });
    const id = await createExecution([{ agentType: 'documenter', command: `sleep 0.6; echo '{"finished":true}'` }]);
    const arn = await dispatch(id, 0, { type: 'documenter' });
    await waitFor(async () => (await task(id)).status === 'running');
    const stoppedAt = Date.now();
    await w.worker.stop();
    expect(Date.now() - stoppedAt).toBeLessThan(4500); // it waited for the task (0.6 s), not the grace (5 s)
    expect(await dispatchOutcome(arn, 1000)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 1 } });
    expect(await agents.get(w.agentId)).toMatchObject({ status: 'terminated' });
  });

  it('a forced stop during the grace period hands the task back at once', async () => {
    const command = `if [ "$XL_ATTEMPT" = 1 ]; then sleep 30; fi; echo '{"attempt":'$XL_ATTEMPT'}'`;
    const w = await startWorker('architect', { graceMs: 30_000 });
    const id = await createExecution([{ agentType: 'architect', command }]);
    const arn = await dispatch(id, 0, { type: 'architect' });
    await waitFor(async () => (await task(id)).status === 'running');
    const draining = w.worker.stop(); // graceful: would wait up to 30 s
    await waitFor(async () => (await agents.get(w.agentId))?.status === 'draining', 2000);
    const forcedAt = Date.now();
    await w.worker.stop({ graceful: false });
    await draining;
    expect(Date.now() - forcedAt).toBeLessThan(15_000); // not the 30 s grace
    expect(await task(id)).toMatchObject({ status: 'running', attempts: 1, leaseExpiresAt: 0 });
    expect(await agents.get(w.agentId)).toMatchObject({ status: 'terminated' });

    const rescuer = await startWorker('architect');
    expect(await dispatchOutcome(arn, 5000)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 2 } });
    await rescuer.worker.stop();
  });
});

describe('agent worker process', () => {
  it('killed with SIGKILL mid-task: the message comes back and another agent completes it with attempts 2', async () => {
    const attemptsFile = join(scratch, 'killed-attempts');
    const pidFile = join(scratch, 'killed-pid');
    const id = await createExecution([
      {
        agentType: 'coder',
        command: `echo $XL_ATTEMPT >> ${attemptsFile}; if [ "$XL_ATTEMPT" = 1 ]; then sleep 30 & echo $! > ${pidFile}; wait; fi; echo '{"attempt":'$XL_ATTEMPT'}'`,
      },
    ]);
    const proc = startWorkerProcess('coder');
    const arn = await dispatch(id, 0, { type: 'coder' });
    await waitFor(async () => (await pidIn(pidFile)) > 0, 15_000).catch((err) => {
      throw new Error(`${err.message}; worker stderr: ${proc.stderr()}`);
    });
    expect(await task(id)).toMatchObject({ status: 'running', attempts: 1, agentId: proc.agentId });
    expect(await agents.get(proc.agentId)).toMatchObject({ agentType: 'coder', runtime: { kind: 'process', pid: proc.child.pid } });

    // The pgid file names the command's process group, for the supervisor to reap.
    const pgidsFile = join(proc.runDir, `${proc.agentId}.pgids`);
    const pgids = (await readFile(pgidsFile, 'utf8')).trim().split('\n').map(Number);
    expect(pgids).toHaveLength(1);
    proc.child.kill('SIGKILL');
    await new Promise((r) => proc.child.once('exit', r));
    const killedAt = Date.now();
    for (const pgid of pgids) process.kill(-pgid, 'SIGKILL'); // what local/process-runtime.ts reap() does
    await waitFor(() => !alive(Number(readFileSync(pidFile, 'utf8'))), 2000);

    const rescuer = await startWorker('coder');
    expect(await dispatchOutcome(arn, 10_000)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 2 } });
    // Visible again within two intervals of the death, claimable once the lease has run out.
    expect(Date.now() - killedAt).toBeLessThan(4 * INTERVAL_MS + 2000);
    expect(await task(id)).toMatchObject({ status: 'completed', attempts: 2, agentId: rescuer.agentId, output: { inline: { attempt: 2 } } });
    expect((await readFile(attemptsFile, 'utf8')).trim().split('\n')).toEqual(['1', '2']);
    await rescuer.worker.stop();
    expect(await agents.get(rescuer.agentId)).toMatchObject({ status: 'terminated' });
  });

  it('SIGTERM hands a long task back at once after the grace period; another agent runs it with attempts 2', async () => {
    const pidFile = join(scratch, 'term-pid');
    const id = await createExecution([
      {
        agentType: 'reviewer',
        command: `if [ "$XL_ATTEMPT" = 1 ]; then sleep 30 & echo $! > ${pidFile}; wait; fi; echo '{"attempt":'$XL_ATTEMPT'}'`,
      },
    ]);
    const proc = startWorkerProcess('reviewer', { XL_GRACE_SECONDS: '0.5' });
    const arn = await dispatch(id, 0, { type: 'reviewer' });
    await waitFor(async () => (await pidIn(pidFile)) > 0, 15_000);
    const grandchild = await pidIn(pidFile);
    await waitFor(async () => (await agents.get(proc.agentId))?.status === 'busy', 3000);

    proc.child.kill('SIGTERM');
    // 'close', not 'exit': its log is read to the end.
    const code = await new Promise<number | null>((r) => proc.child.once('close', (c) => r(c)));
    expect(code).toBe(0);
    expect(alive(grandchild)).toBe(false);
    // Once failed in CI with the record still "draining" after a clean exit (2026-12-07, not
    // reproduced in 5 runs here): the worker's own lines say which of its writes went where.
    expect(await agents.get(proc.agentId), proc.stderr()).toMatchObject({ status: 'terminated' });
    await expect(readFile(join(proc.runDir, `${proc.agentId}.pgids`))).rejects.toThrow(); // removed on a clean exit
    const handedBack = await task(id);
    expect(handedBack).toMatchObject({ status: 'running', attempts: 1, leaseExpiresAt: 0 });
    expect(proc.stderr()).toContain('"msg":"task handed back"');
    // Every line about the run names the agent, the execution and the task (the run's child logger).
    const runLines = proc
      .stderr()
      .split('\n')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      })
      .filter((l) => l.executionId === id);
    expect(runLines.map((l) => l.msg)).toContain('task handed back');
    for (const l of runLines) expect(l, String(l.msg)).toMatchObject({ agentId: proc.agentId, executionId: id, index: 0, taskId: handedBack.taskId });
    // Visible and claimable at once: no lease or visibility timeout to wait out.
    const visible = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl('reviewer'), AttributeNames: ['ApproximateNumberOfMessages'] }));
    expect(Number(visible.Attributes?.ApproximateNumberOfMessages)).toBe(1);

    const rescuer = await startWorker('reviewer');
    expect(await dispatchOutcome(arn, 15_000)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 2 } });
    expect(await task(id)).toMatchObject({ status: 'completed', attempts: 2, agentId: rescuer.agentId });
    await rescuer.worker.stop();
  });
  it('SIGTERM saves a checkpoint of the workspace; the next attempt starts from the files the first one wrote', async () => {
    const pidFile = join(scratch, 'ckpt-pid');
    const command =
      `if [ "$XL_ATTEMPT" = 1 ]; then mkdir -p src; echo half > src/progress.txt; sleep 30 & echo $! > ${pidFile}; wait; fi; ` +
      `echo '{"found":"'"$(cat src/progress.txt)"'","attempt":'$XL_ATTEMPT'}'`;
    const id = await createExecution([{ agentType: 'documenter', command }]);
    const proc = startWorkerProcess('documenter', { XL_GRACE_SECONDS: '0.3' });
    const arn = await dispatch(id, 0, { type: 'documenter' });
    await waitFor(async () => (await pidIn(pidFile)) > 0, 15_000);
    proc.child.kill('SIGTERM');
    expect(await new Promise<number | null>((r) => proc.child.once('exit', (c) => r(c)))).toBe(0);

    const handedBack = await task(id);
    expect(handedBack).toMatchObject({ status: 'running', attempts: 1, leaseExpiresAt: 0, checkpoint: { attempt: 1, key: `checkpoints/${id}/t0/1.tar.gz` } });
    expect(handedBack.checkpoint!.bytes).toBeGreaterThan(0);

    const rescuer = await startWorker('documenter', { checkpoints: true });
    expect(await dispatchOutcome(arn, 5000)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 2 } });
    const done = await task(id);
    expect(done).toMatchObject({ status: 'completed', attempts: 2, output: { inline: { found: 'half', attempt: 2 } } });
    expect(done.checkpoint).toBeUndefined(); // used up: a later retry would start afresh
    expect(rescuer.logs.some((l) => l.msg === 'resuming from a checkpoint')).toBe(true);
    await rescuer.worker.stop();
  });

  it('a drained idle agent lets its long polls answer before it exits: a task sent after goes to the next agent at once', async () => {
    const id = await createExecution([{ agentType: 'documenter', command: `echo '{"ok":true}'` }]);
    // A long lease: a message taken by a poll nobody reads would stay hidden for a minute.
    const drained = startWorkerProcess('documenter', { XL_HEARTBEAT_SECONDS: '90' });
    await waitFor(async () => drained.stderr().includes('"agent started"'), 15_000);
    const exited = new Promise<number | null>((r) => drained.child.once('exit', (c) => r(c)));
    drained.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // Had it let go of its long polls, SQS would still hand one of them this message, and nobody
    // would read it for the visibility timeout.
    const arn = await dispatch(id, 0, { type: 'documenter' });
    const next = await startWorker('documenter');
    expect(await dispatchOutcome(arn, 15_000)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 1 } });
    expect(await task(id)).toMatchObject({ status: 'completed', agentId: next.agentId });
    await next.worker.stop();
  });

  it('keeps a Claude Code run\'s session transcript as an artifact, completed or failed', async () => {
    const standin = join(ROOT, 'test/fixtures/claude-standin.mjs');
    const w = await startWorker('reviewer', { drivers: { 'claude-code': new ClaudeCodeDriver({ bin: process.execPath, binArgs: [standin], silenceSeconds: 30 }) } });
    const id = await createExecution([
      { agentType: 'reviewer', instructions: 'Review it. [standin:success]' },
      { agentType: 'reviewer', instructions: 'Review it. [standin:error-max-turns]' },
    ]);
    const outcomes = [await dispatch(id, 0, { type: 'reviewer' }), await dispatch(id, 1, { type: 'reviewer' })];
    await Promise.all(outcomes.map((arn) => dispatchOutcome(arn, 10_000)));
    for (const [index, status] of [[0, 'completed'], [1, 'failed']] as const) {
      const record = await task(id, index);
      expect(record.status).toBe(status);
      const transcript = record.artifacts?.find((a) => a.name === 'claude-transcript.jsonl');
      expect(transcript?.uri).toBe(`s3://${bucket}/artifacts/${id}/t${index}/1/claude-transcript.jsonl`);
      const body = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: transcript!.uri.slice(`s3://${bucket}/`.length) }))).Body!.transformToString();
      expect(body.length).toBe(transcript!.bytes);
      // The session's messages as the CLI kept them, the result last.
      const lines = body.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
      expect(lines[0]).toMatchObject({ type: 'system' });
      expect(lines.at(-1)).toMatchObject({ type: 'result' });
    }
    await w.worker.stop();
  });

  it('a running Claude Code task reports its spend so far with each lease renewal', async () => {
    const standin = join(ROOT, 'test/fixtures/claude-standin.mjs');
    const id = await createExecution([{ agentType: 'architect', instructions: 'Think it over. [standin:interrupted]' }]);
    const w = await startWorker('architect', { graceMs: 100, drivers: { 'claude-code': new ClaudeCodeDriver({ bin: process.execPath, binArgs: [standin], silenceSeconds: 30 }) } });
    await dispatch(id, 0, { type: 'architect' });
    // The transcript's one turn: 10 input tokens plus 500 written to the cache, 12 output tokens.
    await waitFor(async () => (await task(id)).progress !== undefined, 10_000);
    const first = (await task(id)).progress!;
    expect(first).toEqual({ usd: 0, inputTokens: 510, outputTokens: 12, turns: 1, at: expect.any(String) });
    // Written again with the next renewal.
    await waitFor(async () => (await task(id)).progress!.at > first.at, 3000);
    await w.worker.stop();
    // The run was handed back; its message must not reach the next test's architects.
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl('architect'), MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    for (const m of Messages) await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl('architect'), ReceiptHandle: m.ReceiptHandle! }));
  });

  it('a Claude Code run handed back resumes its session on the next agent (--resume, with the transcript carried over)', async () => {
    const standin = join(ROOT, 'test/fixtures/claude-standin.mjs');
    // The instructions' marker names the stand-in's transcript: a session that starts, then hangs.
    const claude = () => new ClaudeCodeDriver({ bin: process.execPath, binArgs: [standin], silenceSeconds: 30 });
    const id = await createExecution([{ agentType: 'architect', instructions: 'Design the thing. [standin:interrupted]' }]);
    const first = await startWorker('architect', { graceMs: 200, checkpoints: true, drivers: { 'claude-code': claude() } });
    const arn = await dispatch(id, 0, { type: 'architect' });
    await waitFor(async () => (await task(id)).status === 'running');
    // Wait until the session has started (its transcript is in the run's config directory).
    await waitFor(async () => first.logs.length > 0 && (await sessionStarted(join(scratch, 'workspaces'))), 10_000);
    await first.worker.stop();
    const handedBack = await task(id);
    expect(handedBack).toMatchObject({ status: 'running', attempts: 1, checkpoint: { attempt: 1, sessionId: '5f1c2a3e-0000-4000-8000-00000000000a' } });

    const rescuer = await startWorker('architect', { checkpoints: true, drivers: { 'claude-code': claude() } });
    expect(await dispatchOutcome(arn, 10_000)).toMatchObject({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 2 } });
    // The stand-in fails `--resume` unless the session's transcript is where the CLI looks for it.
    expect(await task(id)).toMatchObject({
      status: 'completed',
      attempts: 2,
      output: { inline: { resumed: true, sessionId: '5f1c2a3e-0000-4000-8000-00000000000a' } },
      cost: { turns: 1 },
    });
    await rescuer.worker.stop();
  });
});
