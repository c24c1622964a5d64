// Dead letters on fauxqs, dynalite and the local Step Functions service: a dispatch no agent could
// finish reaches its DLQ, the sweep fails its task as validation (the state machine's Recover step
// records it), and a listed dead letter can be moved back and run.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { DescribeExecutionCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, PurgeQueueCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { recordExecution } from '../support/records.ts';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CommandDriver } from '../../agent/drivers/command.ts';
import { Worker } from '../../agent/worker.ts';
import { Workspaces } from '../../agent/workspace.ts';
import { AgentStore } from '../../core/aws/agent-store.ts';
import { DynamoBreakerStore } from '../../core/aws/breaker-store.ts';
import { SqsDeadLetterQueues, StepFunctionsTaskTokens } from '../../core/aws/dead-letter-queues.ts';
import { ExecutionStore } from '../../core/aws/execution-store.ts';
import { PayloadStore } from '../../core/aws/payload-store.ts';
import { CircuitBreaker } from '../../core/breakers.ts';
import { DeadLetterService } from '../../core/dead-letters.ts';
import { ValidationError } from '../../core/errors.ts';
import type { LayerEvent } from '../../core/events.ts';
import type { Task } from '../../core/plan.ts';
import type { TaskRecord } from '../../core/records.ts';
import { noEvents } from '#core/events.ts';
import { ExecutionSteps } from '../../core/steps.ts';
import { LocalStepFunctions } from '../../local/stepfunctions/index.ts';
import { type Emulators, LOCAL_CLIENT, startEmulators } from '../support/emulators.ts';
import { waitFor } from '../support/processes.ts';

const MAX_RECEIVE_COUNT = 3;
const ACCOUNT = '000000000000';
const DISPATCH_ARN = `arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:Dispatch`;
const RECOVER_ARN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:recover`;

let emulators: Emulators;
let sqs: SQSClient;
let executions: ExecutionStore;
let sfnService: LocalStepFunctions;
let sfn: SFNClient;
let service: DeadLetterService;
let scratch: string;
const events: LayerEvent[] = [];
const workers: Worker[] = [];

const queueUrl = () => `${emulators.queuePrefix}tester-normal`;
const dlqUrl = () => `${emulators.queuePrefix}tester-normal-dlq`;

beforeAll(async () => {
  emulators = await startEmulators({ prefix: 'xld-', queues: ['tester'], maxReceiveCount: MAX_RECEIVE_COUNT });
  sqs = emulators.sqs;
  executions = new ExecutionStore(emulators.ddb, emulators.tables.executions);
  scratch = await mkdtemp(join(tmpdir(), 'xl-dead-letters-'));
  const steps = new ExecutionSteps({
    events: noEvents,
    executions,
    breaker: new CircuitBreaker(new DynamoBreakerStore(emulators.ddb, emulators.tables.breakers)),
    queueUrlPrefix: emulators.queuePrefix,
    dispatchAllowanceSeconds: 60,
  });
  // The TaskBatch fragment's Dispatch and Recover, as small ASL: a failure of any type goes to the
  // layer's own Recover step, which classifies it and records it on the task.
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
                  dispatchTimeoutSeconds: 120,
                  'taskToken.$': '$$.Task.Token',
                },
              },
              TimeoutSeconds: 120,
              ResultPath: '$.outcome',
              Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: 'Recover' }],
              End: true,
            },
            Recover: { Type: 'Task', Resource: RECOVER_ARN, TimeoutSeconds: 30, ResultPath: '$.recovered', End: true },
          },
        },
      },
    ],
    lambdas: { [RECOVER_ARN]: (state) => steps.recover(state as Parameters<ExecutionSteps['recover']>[0]) },
    sqs,
  });
  sfn = new SFNClient({ ...LOCAL_CLIENT, endpoint: (await sfnService.start()).endpoint });
  service = new DeadLetterService({
    queues: new SqsDeadLetterQueues(sqs, emulators.queuePrefix, ['tester-high', 'tester-normal', 'tester-low']),
    executions,
    tokens: new StepFunctionsTaskTokens(sfn),
    events: { emit: async (e) => void events.push(e) },
    maxReceiveCount: MAX_RECEIVE_COUNT,
  });
});

afterEach(async () => {
  events.length = 0;
  await Promise.all(workers.splice(0).map((w) => w.stop({ graceful: false })));
  await Promise.all([queueUrl(), dlqUrl()].map((QueueUrl) => sqs.send(new PurgeQueueCommand({ QueueUrl }))));
});

afterAll(async () => {
  sfn?.destroy();
  await sfnService?.close();
  await emulators?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

// ---- helpers ----------------------------------------------------------------------------------

/** Records a one-task execution, its task queued for dispatch 1. */
async function createTask(command: string, overrides: Partial<TaskRecord> = {}): Promise<string> {
  const definition = { id: 't0', agentType: 'tester', command, timeoutSeconds: 60, failureStrategy: 'continue', priority: 'normal' } as Task;
  return recordExecution(executions, [definition], overrides);
}

async function dispatch(executionId: string): Promise<string> {
  const res = await sfn.send(
    new StartExecutionCommand({
      stateMachineArn: DISPATCH_ARN,
      name: `${executionId}-0`,
      input: JSON.stringify({ queueUrl: queueUrl(), executionId, taskIndex: 0, dispatchSeq: 1 }),
    }),
  );
  return res.executionArn!;
}

async function workflowStatus(executionArn: string): Promise<string> {
  await waitFor(async () => (await sfn.send(new DescribeExecutionCommand({ executionArn }))).status !== 'RUNNING', 10_000);
  return (await sfn.send(new DescribeExecutionCommand({ executionArn }))).status!;
}

async function depth(url: string): Promise<number> {
  const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  return Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) + Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
}

/**
 * What agents that die on a message do to it: each receives it and never deletes it, so it comes
 * back, maxReceiveCount times; the next receive finds it gone to the DLQ.
 */
async function receiveUntilDeadLettered(): Promise<void> {
  await waitFor(async () => (await depth(queueUrl())) === 1);
  for (let i = 0; i <= MAX_RECEIVE_COUNT; i++) {
    await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl(), VisibilityTimeout: 0, WaitTimeSeconds: 0 }));
  }
  await waitFor(async () => (await depth(dlqUrl())) === 1);
}

/** An agent's claim whose lease has run out (the agent died holding it). */
async function claimAndDie(executionId: string): Promise<void> {
  const claim = await executions.claimTask({ executionId, index: 0, dispatchSeq: 1, agentId: 'tester-dead', claimId: 'c-dead', leaseMs: 1 });
  expect(claim.claimed).toBe(true);
  await new Promise((r) => setTimeout(r, 5));
}

function startWorker(): Worker {
  const worker = new Worker(
    {
      agentId: `tester-${randomUUID().slice(0, 6)}`,
      agentType: 'tester',
      slots: 1,
      queueUrlPrefix: emulators.queuePrefix,
      heartbeatIntervalMs: 500,
      graceMs: 500,
      runtime: { kind: 'process', pid: process.pid },
    },
    {
      executions,
      payloads: new PayloadStore(emulators.s3, emulators.bucket),
      agents: new AgentStore(emulators.ddb, emulators.tables.agents),
      breaker: new CircuitBreaker(new DynamoBreakerStore(emulators.ddb, emulators.tables.breakers)),
      sqs,
      sfn,
      drivers: { command: new CommandDriver() },
      workspaces: new Workspaces(join(scratch, 'workspaces')),
    },
  );
  workers.push(worker);
  void worker.start();
  return worker;
}

// ---- the tests --------------------------------------------------------------------------------

describe('the dead-letter sweep', () => {
  it('fails a task whose dispatch reached the DLQ as validation, naming the queue, instead of waiting for its timeout', async () => {
    const id = await createTask('true');
    const arn = await dispatch(id);
    await claimAndDie(id);
    await receiveUntilDeadLettered();

    expect(await service.sweep()).toEqual({ failed: [`${id}/0`], read: 1 });

    // The workflow's Recover step caught the failure and recorded it: validation is never retried.
    expect(await workflowStatus(arn)).toBe('SUCCEEDED');
    const task = (await executions.getTask(id, 0))!;
    expect(task).toMatchObject({ status: 'failed', error: { type: 'validation' }, deadLetter: { queue: 'tester-normal', dispatchSeq: 1 } });
    expect(task.error!.message).toContain('reached the dead-letter queue tester-normal-dlq');
    expect(task.error!.message).toContain(`received ${MAX_RECEIVE_COUNT + 1} times without a result`);
    expect(task.error!.message).toContain('kept dying on it or could not handle it');
    expect(events).toEqual([{ kind: 'task.dead-lettered', executionId: id, taskId: 't0', queue: 'tester-normal', message: task.error!.message }]);
    // The message stays, to be listed and redriven.
    expect(await depth(dlqUrl())).toBe(1);
  });

  it('reports a dead letter once: the next round finds its task marked and leaves it', async () => {
    const id = await createTask('true');
    await dispatch(id);
    await receiveUntilDeadLettered();
    expect((await service.sweep()).failed).toEqual([`${id}/0`]);
    expect((await service.sweep()).failed).toEqual([]);
    expect(events).toHaveLength(1);
    const [listed] = await service.list();
    expect(listed!.messages).toEqual([expect.objectContaining({ executionId: id, taskIndex: 0, taskId: 't0', taskFailed: true })]);
  });

  it('leaves a dead letter whose task no longer waits for it: finished, dispatched again, or held by a live lease', async () => {
    const finished = await createTask('true', { status: 'completed' });
    const redispatched = await createTask('true', { dispatchSeq: 2 });
    const held = await createTask('true', { status: 'running', claimId: 'c', agentId: 'tester-alive', leaseExpiresAt: Date.now() + 60_000 });
    for (const executionId of [finished, redispatched, held]) {
      const body = JSON.stringify({ executionId, taskIndex: 0, dispatchSeq: 1, dispatchTimeoutSeconds: 120, taskToken: `token-${executionId}` });
      await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl(), MessageBody: body }));
    }
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl(), MessageBody: 'not a dispatch' }));

    expect(await service.sweep()).toEqual({ failed: [], read: 4 });
    expect(events).toEqual([]);
    expect(await executions.getTask(held, 0)).toMatchObject({ status: 'running', claimId: 'c' });
    expect(await depth(dlqUrl())).toBe(4);
  });

  it('takes a closed task token in its stride: the workflow stopped waiting, the task is still marked', async () => {
    const id = await createTask('true');
    const body = JSON.stringify({ executionId: id, taskIndex: 0, dispatchSeq: 1, dispatchTimeoutSeconds: 120, taskToken: 'a-token-no-workflow-waits-for' });
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl(), MessageBody: body }));
    expect((await service.sweep()).failed).toEqual([`${id}/0`]);
    expect(await executions.getTask(id, 0)).toMatchObject({ status: 'queued', deadLetter: { dispatchSeq: 1 } });
  });
});

describe('listing and redriving dead letters', () => {
  it('lists each dead letter with its task, without consuming it', async () => {
    const id = await createTask('true');
    await dispatch(id);
    await receiveUntilDeadLettered();

    const first = await service.list();
    expect(first).toEqual([
      {
        queue: 'tester-normal',
        deadLetterQueue: 'tester-normal-dlq',
        depth: 1,
        messages: [
          {
            messageId: expect.any(String),
            executionId: id,
            taskIndex: 0,
            dispatchSeq: 1,
            taskId: 't0',
            taskStatus: 'queued',
            receiveCount: expect.any(Number),
            sentAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
            taskFailed: false,
          },
        ],
      },
    ]);
    expect(first[0]!.messages[0]!.receiveCount).toBeGreaterThan(MAX_RECEIVE_COUNT);
    // Listed again at once: the listing made it visible again.
    expect((await service.list())[0]!.messages.map((m) => m.messageId)).toEqual([first[0]!.messages[0]!.messageId]);
  });

  it('moves a dead letter back to its task queue, where an agent claims and runs it', async () => {
    const id = await createTask(`echo '{"back":true}'`);
    const arn = await dispatch(id);
    await receiveUntilDeadLettered();

    // fauxqs has no StartMessageMoveTask: the same port moves them by receive, send and delete.
    expect(await service.redrive('tester-normal')).toEqual([{ queue: 'tester-normal', mode: 'copied', messages: 1 }]);
    expect(await depth(dlqUrl())).toBe(0);
    expect(await depth(queueUrl())).toBe(1);

    startWorker();
    expect(await workflowStatus(arn)).toBe('SUCCEEDED');
    expect(await executions.getTask(id, 0)).toMatchObject({ status: 'completed', attempts: 1, output: { inline: { back: true } } });
  });

  it('redrives every DLQ that holds messages when no queue is named, and refuses a queue that does not exist', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl(), MessageBody: 'not a dispatch' }));
    expect(await service.redrive()).toEqual([{ queue: 'tester-normal', mode: 'copied', messages: 1 }]);
    const refused = await service.redrive('tester-urgent').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ValidationError);
    expect(refused).toMatchObject({ status: 400, details: [{ path: '/queue', message: 'not a task queue' }] });
  });
});
