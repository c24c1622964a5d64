// A task that runs past SQS's visibility cap (12 hours from a message's receipt on AWS; a few
// seconds here) runs once, to its end, and its message never reaches the DLQ (agent/custody.ts).
// The queues have DLQs with a maxReceiveCount of 2, so a message received a third time without
// being deleted would be dead-lettered; the SQS client the in-process agents use refuses, as AWS
// does, a visibility extension past the cap counted from the receipt.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import {
  ChangeMessageVisibilityCommand,
  GetQueueAttributesCommand,
  type Message,
  type QueueAttributeName,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { recordExecution } from '../support/records.ts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CommandDriver } from '../../agent/drivers/command.ts';
import { type Logger, Worker } from '../../agent/worker.ts';
import { Workspaces } from '../../agent/workspace.ts';
import type { AgentType } from '../../core/agent-types.ts';
import { AgentStore } from '../../core/aws/agent-store.ts';
import { DynamoBreakerStore } from '../../core/aws/breaker-store.ts';
import { ExecutionStore } from '../../core/aws/execution-store.ts';
import { PayloadStore } from '../../core/aws/payload-store.ts';
import { CircuitBreaker } from '../../core/breakers.ts';
import type { Task } from '../../core/plan.ts';
import { LocalStepFunctions } from '../../local/stepfunctions/index.ts';
import { type Emulators, LOCAL_CLIENT, startEmulators } from '../support/emulators.ts';
import { alive, waitFor } from '../support/processes.ts';

const ROOT = join(import.meta.dirname, '../..');
// Interval 1 s; lease and visibility 2 s (a lease of 1 s ran out under load once: a renewal late by
// half a second let a second agent claim the task).
const HEARTBEAT_SECONDS = 3;
/** SQS's cap at this test's scale, and the agents' setting just under it. */
const SQS_CAP_SECONDS = 6;
const AGENT_CAP_SECONDS = 4;
const DISPATCH_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:Dispatch';

let emulators: Emulators;
let executions: ExecutionStore;
let sfnService: LocalStepFunctions;
let sfnEndpoint: string;
let sfn: SFNClient;
let scratch: string;
const workers: Worker[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  emulators = await startEmulators({ prefix: 'xlc-', queues: ['tester', 'coder'], maxReceiveCount: 2 });
  executions = new ExecutionStore(emulators.ddb, emulators.tables.executions);
  scratch = await mkdtemp(join(tmpdir(), 'xl-custody-test-'));
  await chmod(scratch, 0o777); // a root worker process runs commands as another user
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
                  dispatchSeq: 1,
                  dispatchTimeoutSeconds: 120,
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
    sqs: emulators.sqs,
  });
  sfnEndpoint = (await sfnService.start()).endpoint;
  sfn = new SFNClient({ ...LOCAL_CLIENT, endpoint: sfnEndpoint });
});

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(workers.splice(0).map((w) => w.stop({ graceful: false })));
});

afterAll(async () => {
  sfn?.destroy();
  await sfnService?.close();
  await emulators?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

// ---- helpers ----------------------------------------------------------------------------------

const queueUrl = (type: AgentType) => `${emulators.queuePrefix}${type}-normal`;

interface CappedSqs {
  client: SQSClient;
  /** What the agent received. */
  received: Message[];
  /** Visibility extensions refused for reaching past the cap. */
  refused: number;
}

/** An SQS client that refuses, as AWS does, a visibility extension reaching past the cap from the receipt. */
function cappedSqs(): CappedSqs {
  const out: CappedSqs = { client: new SQSClient({ ...LOCAL_CLIENT, endpoint: emulators.fauxqs.endpoint }), received: [], refused: 0 };
  const receivedAt = new Map<string, number>();
  const send = out.client.send.bind(out.client) as (cmd: unknown, opts?: unknown) => Promise<{ Messages?: Message[] }>;
  out.client.send = (async (cmd: unknown, opts?: unknown) => {
    if (cmd instanceof ChangeMessageVisibilityCommand) {
      const at = receivedAt.get(cmd.input.ReceiptHandle!);
      if (at !== undefined && Date.now() + cmd.input.VisibilityTimeout! * 1000 > at + SQS_CAP_SECONDS * 1000) {
        out.refused++;
        throw Object.assign(new Error('Total VisibilityTimeout for the message is beyond the limit'), { name: 'InvalidParameterValue' });
      }
    }
    const res = await send(cmd, opts);
    if (cmd instanceof ReceiveMessageCommand) {
      for (const m of res.Messages ?? []) receivedAt.set(m.ReceiptHandle!, Date.now());
      out.received.push(...(res.Messages ?? []));
    }
    return res;
  }) as SQSClient['send'];
  return out;
}

interface TestAgent {
  worker: Worker;
  agentId: string;
  logs: string[];
  sqs: CappedSqs;
}

async function startAgent(agentType: AgentType): Promise<TestAgent> {
  const agentId = `${agentType}-${randomUUID().slice(0, 6)}`;
  const logs: string[] = [];
  const log = (msg: string) => void logs.push(msg);
  const logger: Logger = { debug: log, info: log, warn: log, error: log };
  const sqs = cappedSqs();
  const worker = new Worker(
    {
      agentId,
      agentType,
      slots: 1,
      queueUrlPrefix: emulators.queuePrefix,
      heartbeatIntervalMs: (HEARTBEAT_SECONDS * 1000) / 3,
      graceMs: 500,
      runtime: { kind: 'process', pid: process.pid },
      visibilityCapSeconds: AGENT_CAP_SECONDS,
    },
    {
      executions,
      payloads: new PayloadStore(emulators.s3, emulators.bucket),
      agents: new AgentStore(emulators.ddb, emulators.tables.agents),
      breaker: new CircuitBreaker(new DynamoBreakerStore(emulators.ddb, emulators.tables.breakers)),
      sqs: sqs.client,
      sfn,
      drivers: { command: new CommandDriver() },
      workspaces: new Workspaces(join(scratch, 'workspaces')),
      log: logger,
    },
  );
  workers.push(worker);
  await worker.start();
  return { worker, agentId, logs, sqs };
}

/** A worker process (agent/main.ts) with the cap lowered, as the local layer starts one. */
function startAgentProcess(agentType: AgentType): { child: ChildProcess; agentId: string; runDir: string; stderr: () => string } {
  const agentId = `${agentType}-proc-${randomUUID().slice(0, 6)}`;
  const runDir = join(scratch, 'run');
  let err = '';
  const { tables } = emulators;
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
      XL_BUCKET: emulators.bucket,
      XL_QUEUE_URL_PREFIX: emulators.queuePrefix,
      XL_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
      XL_VISIBILITY_CAP_SECONDS: String(AGENT_CAP_SECONDS),
      XL_AGENT_TYPE: agentType,
      XL_AGENT_ID: agentId,
      XL_RUN_DIR: runDir,
      XL_WORKSPACE_ROOT: join(scratch, 'workspaces'),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
  children.push(child);
  return { child, agentId, runDir, stderr: () => err };
}

/** Records a one-task execution (queued for dispatch 1) and dispatches it; returns the workflow execution. */
async function runTask(agentType: AgentType, command: string): Promise<{ executionId: string; arn: string }> {
  const definition = { id: 't0', agentType, command, timeoutSeconds: 60, failureStrategy: 'stop', priority: 'normal' } as Task;
  const executionId = await recordExecution(executions, [definition]);
  const res = await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: DISPATCH_ARN,
      name: `${executionId}-0`,
      input: JSON.stringify({ queueUrl: queueUrl(agentType), executionId, taskIndex: 0 }),
    }),
  );
  return { executionId, arn: res.executionArn! };
}

async function outcome(executionArn: string, ms = 20_000): Promise<{ status: string; output?: unknown }> {
  await waitFor(async () => (await sfn.send(new DescribeExecutionCommand({ executionArn }))).status !== 'RUNNING', ms);
  const d = await sfn.send(new DescribeExecutionCommand({ executionArn }));
  return { status: d.status!, output: d.output ? JSON.parse(d.output) : undefined };
}

/** Messages on a queue: visible, in flight and delayed. */
async function depth(url: string): Promise<number> {
  const names: QueueAttributeName[] = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'];
  const res = await emulators.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: names }));
  return names.reduce((sum, n) => sum + Number(res.Attributes?.[n] ?? 0), 0);
}

const lines = async (file: string) => (await readFile(file, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);

// ---- the tests --------------------------------------------------------------------------------

describe('a task running past the visibility cap', () => {
  it('runs once, to its end: its message is relayed before the cap, never refused, never dead-lettered', async () => {
    const [a, b] = await Promise.all([startAgent('tester'), startAgent('tester')]);
    const counter = join(scratch, 'long-count');
    const { executionId, arn } = await runTask('tester', `echo run >> ${counter}; sleep 8; echo '{"ok":true}'`);

    expect(await outcome(arn)).toEqual({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 1 } });
    expect(await lines(counter)).toEqual(['run']);
    expect(await executions.getTask(executionId, 0)).toMatchObject({ status: 'completed', attempts: 1 });
    const holder = (await executions.getTask(executionId, 0))!.agentId === a.agentId ? a : b;
    const other = holder === a ? b : a;
    expect(holder.logs).toContain('relayed the message of a task running past the visibility cap');
    // The relayed copy went round: the other agent found the task held and passed the copy on.
    expect(other.logs).toContain('task is held by another agent');
    expect(a.sqs.refused + b.sqs.refused).toBe(0);
    expect(await depth(`${queueUrl('tester')}-dlq`)).toBe(0);
    // The last copy is found finished and dropped.
    await waitFor(async () => (await depth(queueUrl('tester'))) === 0, 5000);
  });

  it('duplicate deliveries of a held task are relayed, so their receives never pile up toward the DLQ', async () => {
    const [a, b] = await Promise.all([startAgent('tester'), startAgent('tester')]);
    const counter = join(scratch, 'duplicate-count');
    const { executionId, arn } = await runTask('tester', `echo run >> ${counter}; sleep 8; echo '{"ok":true}'`);
    await waitFor(async () => (await executions.getTask(executionId, 0))?.status === 'running');
    const body = [...a.sqs.received, ...b.sqs.received].find((m) => m.Body?.includes(executionId))!.Body!;
    // At-least-once delivery, three times over: each copy would be received every visibility timeout while the task runs.
    for (let i = 0; i < 3; i++) await emulators.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl('tester'), MessageBody: body }));

    expect(await outcome(arn)).toEqual({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 1 } });
    expect(await lines(counter)).toEqual(['run']);
    expect(await depth(`${queueUrl('tester')}-dlq`)).toBe(0);
    // Each duplicate was received while the task was held, and passed on rather than left to come back.
    expect([...a.logs, ...b.logs].filter((l) => l === 'task is held by another agent').length).toBeGreaterThanOrEqual(3);
    await waitFor(async () => (await depth(queueUrl('tester'))) === 0, 5000);
  });

  it('whose agent dies after the cap is run again by another agent, from the relayed copy', async () => {
    const attemptsFile = join(scratch, 'relay-attempts');
    const pidFile = join(scratch, 'relay-pid');
    const proc = startAgentProcess('coder');
    const { executionId, arn } = await runTask(
      'coder',
      `echo $XL_ATTEMPT >> ${attemptsFile}; if [ "$XL_ATTEMPT" = 1 ]; then sleep 30 & echo $! > ${pidFile}; wait; fi; echo '{"attempt":'$XL_ATTEMPT'}'`,
    );
    // Past the cap: the process has relayed its message (no receipt of it holds the message any more).
    await waitFor(() => proc.stderr().includes('relayed the message of a task running past the visibility cap'), 15_000).catch((err: Error) => {
      throw new Error(`${err.message}; worker stderr: ${proc.stderr()}`);
    });
    expect(await executions.getTask(executionId, 0)).toMatchObject({ status: 'running', attempts: 1, agentId: proc.agentId });
    expect((await lines(pidFile)).length).toBe(1);

    const pgids = (await lines(join(proc.runDir, `${proc.agentId}.pgids`))).map(Number);
    proc.child.kill('SIGKILL');
    await new Promise((r) => proc.child.once('exit', r));
    const killedAt = Date.now();
    for (const pgid of pgids) process.kill(-pgid, 'SIGKILL'); // what local/process-runtime.ts reap() does
    const sleeper = Number((await lines(pidFile))[0]);
    await waitFor(() => !alive(sleeper), 2000);

    const rescuer = await startAgent('coder');
    expect(await outcome(arn)).toEqual({ status: 'SUCCEEDED', output: { status: 'completed', attempts: 2 } });
    // A copy comes round within a visibility timeout (2 s here), claimable once the dead agent's lease
    // has run out: seconds, not the relay's 900 s cap (the bound leaves room for a loaded machine).
    expect(Date.now() - killedAt).toBeLessThan(30_000);
    expect(await executions.getTask(executionId, 0)).toMatchObject({ status: 'completed', attempts: 2, agentId: rescuer.agentId, output: { inline: { attempt: 2 } } });
    expect(await lines(attemptsFile)).toEqual(['1', '2']);
    expect(await depth(`${queueUrl('coder')}-dlq`)).toBe(0);
  });
});
