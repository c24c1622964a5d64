// The local Step Functions service, through the real @aws-sdk/client-sfn and client-sqs.
// The state machines here are small ASL written for these tests; the project's own come from CDK.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  GetExecutionHistoryCommand,
  InvalidExecutionInput,
  InvalidOutput,
  InvalidToken,
  ListExecutionsCommand,
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
  StartExecutionCommand,
  StateMachineDoesNotExist,
  StopExecutionCommand,
  TaskTimedOut,
  ValidationException,
  type DescribeExecutionOutput,
  type HistoryEvent,
} from '@aws-sdk/client-sfn';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFauxqs127, type RunningFauxqs } from '../../local/services/fauxqs.ts';
import {
  LocalStepFunctions,
  type ExecutionStatusChangeEvent,
  type LocalStateMachine,
} from '../../local/stepfunctions/index.ts';
import { LOCAL_CLIENT } from '../support/emulators.ts';
import { waitFor } from '../support/processes.ts';

const ACCOUNT = '000000000000';
const smArn = (name: string) => `arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:${name}`;
const fnArn = (name: string) => `arn:aws:lambda:us-east-1:${ACCOUNT}:function:${name}`;

// ---- state machines ----

/** Dispatch a job to a queue and wait for the worker's answer, as the project's task fragment does. */
const dispatch: LocalStateMachine = {
  arn: smArn('Dispatch'),
  name: 'Dispatch',
  definition: {
    StartAt: 'Dispatch',
    States: {
      Dispatch: {
        Type: 'Task',
        Resource: 'arn:aws:states:::sqs:sendMessage.waitForTaskToken',
        Parameters: {
          'QueueUrl.$': '$.queueUrl',
          MessageBody: { 'taskToken.$': '$$.Task.Token', 'job.$': '$.job', 'timeoutSeconds.$': '$.timeoutSeconds' },
        },
        // Resolved against the effective input (after Parameters), where the library looks.
        TimeoutSecondsPath: '$.MessageBody.timeoutSeconds',
        ResultPath: '$.result',
        Catch: [{ ErrorEquals: ['WorkerError'], ResultPath: '$.failure', Next: 'Recovered' }],
        End: true,
      },
      Recovered: { Type: 'Pass', End: true },
    },
  },
};

const heartbeat: LocalStateMachine = {
  arn: smArn('Heartbeat'),
  name: 'Heartbeat',
  definition: {
    StartAt: 'Wait for worker',
    States: {
      'Wait for worker': {
        Type: 'Task',
        Resource: 'arn:aws:states:::sqs:sendMessage.waitForTaskToken',
        Parameters: { 'QueueUrl.$': '$.queueUrl', MessageBody: { 'taskToken.$': '$$.Task.Token' } },
        // 2 s, heartbeats every 0.5 s below: a busy machine's late timers keep 1.5 s of room.
        HeartbeatSeconds: 2,
        TimeoutSeconds: 30,
        End: true,
      },
    },
  },
};

const add: LocalStateMachine = {
  arn: smArn('Add'),
  name: 'Add',
  definition: {
    StartAt: 'Add',
    States: { Add: { Type: 'Task', Resource: fnArn('add'), End: true } },
  },
};

const parent: LocalStateMachine = {
  arn: smArn('Parent'),
  name: 'Parent',
  definition: {
    StartAt: 'Run child',
    States: {
      'Run child': {
        Type: 'Task',
        Resource: 'arn:aws:states:::states:startExecution.sync:2',
        Parameters: {
          'StateMachineArn.$': '$.child',
          'Input.$': '$.childInput',
          'Name.$': '$.childName',
        },
        ResultSelector: { 'sum.$': '$.Output.sum', 'status.$': '$.Status' },
        End: true,
      },
    },
  },
};

/** .sync (version 1): the child's Output comes back as a JSON string. */
const parentV1: LocalStateMachine = {
  arn: smArn('ParentV1'),
  name: 'ParentV1',
  definition: {
    StartAt: 'Run child',
    States: {
      'Run child': {
        Type: 'Task',
        Resource: 'arn:aws:states:::states:startExecution.sync',
        Parameters: { StateMachineArn: smArn('Add'), 'Input.$': '$' },
        ResultSelector: { 'output.$': '$.Output' },
        End: true,
      },
    },
  },
};

/** Loops for ever; AWS ends it at 25,000 history events. */
const forever: LocalStateMachine = {
  arn: smArn('Forever'),
  name: 'Forever',
  definition: {
    StartAt: 'Spin',
    States: {
      Spin: { Type: 'Pass', Next: 'Again?' },
      'Again?': { Type: 'Choice', Choices: [{ Variable: '$.spin', BooleanEquals: true, Next: 'Spin' }], Default: 'Stop' },
      Stop: { Type: 'Succeed' },
    },
  },
};

const big: LocalStateMachine = {
  arn: smArn('Big'),
  name: 'Big',
  definition: {
    StartAt: 'Produce',
    States: { Produce: { Type: 'Task', Resource: fnArn('produce'), End: true } },
  },
};

/** Three results of 100 KiB each are fine alone; the Map's output of 300 KiB is not. */
const bigMap: LocalStateMachine = {
  arn: smArn('BigMap'),
  name: 'BigMap',
  definition: {
    StartAt: 'Items',
    States: {
      Items: { Type: 'Pass', Result: [100, 100, 100], Next: 'Each' },
      Each: {
        Type: 'Map',
        ItemProcessor: {
          ProcessorConfig: { Mode: 'INLINE' },
          StartAt: 'Piece',
          States: { Piece: { Type: 'Task', Resource: fnArn('piece'), End: true } },
        },
        End: true,
      },
    },
  },
};

const mapOfTasks: LocalStateMachine = {
  arn: smArn('MapOfTasks'),
  name: 'MapOfTasks',
  definition: {
    StartAt: 'Numbers',
    States: {
      Numbers: { Type: 'Pass', Parameters: { 'items.$': 'States.ArrayRange(1, 4, 1)' }, Next: 'Each' },
      Each: {
        Type: 'Map',
        ItemsPath: '$.items',
        MaxConcurrency: 2,
        ItemProcessor: {
          ProcessorConfig: { Mode: 'INLINE' },
          StartAt: 'Double',
          States: {
            Double: {
              Type: 'Task',
              Resource: 'arn:aws:states:::lambda:invoke',
              Parameters: { FunctionName: fnArn('double'), 'Payload.$': '$' },
              OutputPath: '$.Payload',
              End: true,
            },
          },
        },
        ResultPath: '$.doubled',
        Next: 'Done',
      },
      Done: { Type: 'Succeed' },
    },
  },
};

// ---- fixtures ----

let fauxqs: RunningFauxqs;
let sqs: SQSClient;
let queueUrl: string;
let svc: LocalStepFunctions;
let sfn: SFNClient;
const statusEvents: ExecutionStatusChangeEvent[] = [];
const dirs: string[] = [];

const lambdas = {
  [fnArn('add')]: async (e: unknown) => {
    const { a, b, fail } = e as { a: number; b: number; fail?: boolean };
    if (fail) throw Object.assign(new Error('cannot add'), { name: 'AddError' });
    return { sum: a + b };
  },
  [fnArn('produce')]: async () => ({ text: 'x'.repeat(300 * 1024) }),
  [fnArn('piece')]: async (kib: unknown) => 'y'.repeat((kib as number) * 1024 - 16),
  [fnArn('double')]: async (n: unknown) => (n as number) * 2,
};

beforeAll(async () => {
  fauxqs = await startFauxqs127();
  sqs = new SQSClient({ ...LOCAL_CLIENT, endpoint: fauxqs.endpoint });
  queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: 'sfn-tasks' }))).QueueUrl!;
  svc = new LocalStepFunctions({
    stateMachines: [dispatch, heartbeat, add, parent, parentV1, forever, big, bigMap, mapOfTasks],
    lambdas,
    sqs,
    onStatusChange: (e) => {
      statusEvents.push(e);
    },
  });
  const { endpoint } = await svc.start();
  sfn = new SFNClient({ ...LOCAL_CLIENT, endpoint });
});

afterAll(async () => {
  sfn?.destroy();
  await svc?.close();
  sqs?.destroy();
  await fauxqs?.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

// ---- helpers ----

let names = 0;
const uniqueName = (prefix: string) => `${prefix}-${Date.now()}-${++names}`;

async function start(machine: LocalStateMachine, input: unknown, name = uniqueName(machine.name), client = sfn): Promise<string> {
  const out = await client.send(new StartExecutionCommand({ stateMachineArn: machine.arn, name, input: JSON.stringify(input) }));
  return out.executionArn!;
}

async function describe_(executionArn: string, client = sfn): Promise<DescribeExecutionOutput> {
  return client.send(new DescribeExecutionCommand({ executionArn }));
}

async function finished(executionArn: string, timeoutMs = 5000, client = sfn): Promise<DescribeExecutionOutput> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const d = await describe_(executionArn, client);
    if (d.status !== 'RUNNING') return d;
    if (Date.now() > deadline) throw new Error(`${executionArn} still RUNNING after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The worker's side: the next dispatch message, with the token Step Functions put in it. */
async function receiveTask(url = queueUrl, sqsClient = sqs): Promise<{ taskToken: string; job?: unknown }> {
  const out = await sqsClient.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5, MaxNumberOfMessages: 1 }));
  const message = out.Messages?.[0];
  if (!message) throw new Error('no dispatch message arrived');
  return JSON.parse(message.Body!) as { taskToken: string; job?: unknown };
}

async function history(executionArn: string, client = sfn): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(new GetExecutionHistoryCommand({ executionArn, nextToken, maxResults: 1000 }));
    events.push(...page.events!);
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

// ---- tests ----

describe('StartExecution', () => {
  it('returns the same execution for the same name and input while it is open', async () => {
    const name = uniqueName('idem');
    const input = { queueUrl, job: 'idempotent', timeoutSeconds: 30 };
    const first = await start(dispatch, input, name);
    const again = await start(dispatch, input, name);
    expect(again).toBe(first);
    const task = await receiveTask();
    await sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{"ok":true}' }));
    expect((await finished(first)).status).toBe('SUCCEEDED');
  });

  it('rejects the same name with another input, or once the execution has closed', async () => {
    const name = uniqueName('dup');
    const first = await start(dispatch, { queueUrl, job: 1, timeoutSeconds: 30 }, name);
    await expect(start(dispatch, { queueUrl, job: 2, timeoutSeconds: 30 }, name)).rejects.toBeInstanceOf(ExecutionAlreadyExists);
    const task = await receiveTask();
    await sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{}' }));
    await finished(first);
    await expect(start(dispatch, { queueUrl, job: 1, timeoutSeconds: 30 }, name)).rejects.toBeInstanceOf(ExecutionAlreadyExists);
  });

  it('rejects input that is not JSON, input over 256 KiB, and unknown state machines', async () => {
    await expect(sfn.send(new StartExecutionCommand({ stateMachineArn: add.arn, input: '{nope' }))).rejects.toBeInstanceOf(InvalidExecutionInput);
    const tooBig = JSON.stringify({ blob: 'é'.repeat(140 * 1024) }); // under 262144 characters, over 262144 bytes
    expect(tooBig.length).toBeLessThan(262_144);
    await expect(sfn.send(new StartExecutionCommand({ stateMachineArn: add.arn, input: tooBig }))).rejects.toBeInstanceOf(ValidationException);
    await expect(sfn.send(new StartExecutionCommand({ stateMachineArn: smArn('Nope'), input: '{}' }))).rejects.toBeInstanceOf(StateMachineDoesNotExist);
  });

  it('reports RUNNING, then the end status with the output, to onStatusChange', async () => {
    const arn = await start(add, { a: 2, b: 3 });
    expect((await finished(arn)).output).toBe('{"sum":5}');
    // The end's notice follows the status change, asynchronously.
    await waitFor(() => statusEvents.filter((e) => e.detail.executionArn === arn).length >= 2);
    const mine = statusEvents.filter((e) => e.detail.executionArn === arn);
    expect(mine.map((e) => e.detail.status)).toEqual(['RUNNING', 'SUCCEEDED']);
    expect(mine[1]).toMatchObject({
      source: 'aws.states',
      'detail-type': 'Step Functions Execution Status Change',
      resources: [arn],
      detail: { stateMachineArn: add.arn, output: '{"sum":5}', input: '{"a":2,"b":3}' },
    });
    expect(typeof mine[1]!.detail.stopDate).toBe('number');
  });
});

describe('Lambda tasks', () => {
  it('reports a thrown error as Lambda does: the error name, and errorType/errorMessage as cause', async () => {
    const d = await finished(await start(add, { a: 1, b: 1, fail: true }));
    expect(d.status).toBe('FAILED');
    expect(d.error).toBe('AddError');
    expect(JSON.parse(d.cause!)).toEqual({ errorType: 'AddError', errorMessage: 'cannot add' });
  });

  it('runs lambda:invoke inside a Map and returns { Payload, StatusCode }', async () => {
    const d = await finished(await start(mapOfTasks, {}));
    expect(d.status).toBe('SUCCEEDED');
    expect(JSON.parse(d.output!).doubled).toEqual([2, 4, 6, 8]);
  });
});

describe('waitForTaskToken', () => {
  it('puts a token in the message and continues with the SendTaskSuccess output', async () => {
    const arn = await start(dispatch, { queueUrl, job: 'build', timeoutSeconds: 30 });
    const task = await receiveTask();
    expect(task.job).toBe('build');
    expect(task.taskToken).toMatch(/^[\w-]+\.[\w-]{32}$/);
    await sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: JSON.stringify({ status: 'done', files: 3 }) }));
    const d = await finished(arn);
    expect(d.status).toBe('SUCCEEDED');
    expect(JSON.parse(d.output!).result).toEqual({ status: 'done', files: 3 });
    // A second answer for the same token is late.
    await expect(sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{}' }))).rejects.toBeInstanceOf(TaskTimedOut);
  });

  it('hands SendTaskFailure error and cause to a Catch', async () => {
    const arn = await start(dispatch, { queueUrl, job: 'flaky', timeoutSeconds: 30 });
    const task = await receiveTask();
    await sfn.send(new SendTaskFailureCommand({ taskToken: task.taskToken, error: 'WorkerError', cause: 'the agent crashed' }));
    const d = await finished(arn);
    expect(d.status).toBe('SUCCEEDED');
    expect(JSON.parse(d.output!).failure).toEqual({ Error: 'WorkerError', Cause: 'the agent crashed' });
  });

  it('rejects malformed and unknown tokens with InvalidToken', async () => {
    await expect(sfn.send(new SendTaskSuccessCommand({ taskToken: 'not-a-token', output: '{}' }))).rejects.toBeInstanceOf(InvalidToken);
    const forged = `${Buffer.from('arn:aws:states:us-east-1:0:execution:X:none').toString('base64url')}.${'A'.repeat(32)}`;
    await expect(sfn.send(new SendTaskFailureCommand({ taskToken: forged }))).rejects.toBeInstanceOf(InvalidToken);
  });

  it('expires the token when TimeoutSecondsPath runs out: the Task fails States.Timeout and a late answer gets TaskTimedOut', async () => {
    const arn = await start(dispatch, { queueUrl, job: 'slow', timeoutSeconds: 1 });
    const task = await receiveTask();
    const d = await finished(arn, 3000);
    expect(d.status).toBe('FAILED');
    expect(d.error).toBe('States.Timeout');
    await expect(sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{}' }))).rejects.toBeInstanceOf(TaskTimedOut);
    const types = (await history(arn)).map((e) => e.type);
    expect(types).toContain('TaskTimedOut');
    expect(types.at(-1)).toBe('ExecutionFailed');
  });

  it('fails with States.HeartbeatTimeout when heartbeats stop, and heartbeats keep it alive until then', async () => {
    const started = Date.now();
    const arn = await start(heartbeat, { queueUrl });
    const task = await receiveTask();
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 500));
      await sfn.send(new SendTaskHeartbeatCommand({ taskToken: task.taskToken }));
    }
    expect((await describe_(arn)).status).toBe('RUNNING'); // 2.5 s in, with a 2 s heartbeat span
    const d = await finished(arn, 4000);
    expect(d.status).toBe('FAILED');
    expect(d.error).toBe('States.HeartbeatTimeout');
    // Not before the last heartbeat's span ran out.
    expect(Date.now() - started).toBeGreaterThanOrEqual(4500);
    await expect(sfn.send(new SendTaskHeartbeatCommand({ taskToken: task.taskToken }))).rejects.toBeInstanceOf(TaskTimedOut);
  });

  it('rejects an output over 256 KiB with InvalidOutput and keeps the token valid', async () => {
    const arn = await start(dispatch, { queueUrl, job: 'huge', timeoutSeconds: 30 });
    const task = await receiveTask();
    const huge = JSON.stringify({ text: 'z'.repeat(300 * 1024) });
    await expect(sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: huge }))).rejects.toBeInstanceOf(InvalidOutput);
    await expect(sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{nope' }))).rejects.toBeInstanceOf(InvalidOutput);
    await sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{"small":true}' }));
    expect(JSON.parse((await finished(arn)).output!).result).toEqual({ small: true });
  });
});

describe('StopExecution', () => {
  it('aborts the execution, invalidates its token and closes its history with ExecutionAborted', async () => {
    const arn = await start(dispatch, { queueUrl, job: 'stop me', timeoutSeconds: 30 });
    const task = await receiveTask();
    await sfn.send(new StopExecutionCommand({ executionArn: arn, error: 'UserStop', cause: 'stopped by test' }));
    const d = await describe_(arn);
    expect(d).toMatchObject({ status: 'ABORTED', error: 'UserStop', cause: 'stopped by test' });
    expect(d.stopDate).toBeInstanceOf(Date);
    await expect(sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{}' }))).rejects.toBeInstanceOf(TaskTimedOut);
    await waitFor(async () => (await history(arn)).at(-1)?.type === 'ExecutionAborted' && statusEvents.filter((e) => e.detail.executionArn === arn).length >= 2);
    const types = (await history(arn)).map((e) => e.type);
    expect(types.slice(-2)).toEqual(['TaskStateAborted', 'ExecutionAborted']);
    expect(statusEvents.filter((e) => e.detail.executionArn === arn).map((e) => e.detail.status)).toEqual(['RUNNING', 'ABORTED']);
  });
});

describe('states:startExecution.sync:2', () => {
  it('runs a child execution and returns its output as JSON', async () => {
    const childName = uniqueName('child');
    const arn = await start(parent, { child: add.arn, childInput: { a: 20, b: 22 }, childName });
    const d = await finished(arn);
    expect(d.status).toBe('SUCCEEDED');
    expect(JSON.parse(d.output!)).toEqual({ sum: 42, status: 'SUCCEEDED' });
    const child = await describe_(`arn:aws:states:us-east-1:${ACCOUNT}:execution:Add:${childName}`);
    expect(child).toMatchObject({ status: 'SUCCEEDED', output: '{"sum":42}' });
    const types = (await history(arn)).map((e) => e.type);
    expect(types).toEqual([
      'ExecutionStarted',
      'TaskStateEntered',
      'TaskScheduled',
      'TaskStarted',
      'TaskSubmitted',
      'TaskSucceeded',
      'TaskStateExited',
      'ExecutionSucceeded',
    ]);
  });

  it('returns the child output as a JSON string with .sync', async () => {
    const d = await finished(await start(parentV1, { a: 1, b: 2 }));
    expect(JSON.parse(d.output!)).toEqual({ output: '{"sum":3}' });
  });

  it('fails the parent Task with States.TaskFailed and the child description when the child fails', async () => {
    const arn = await start(parent, { child: add.arn, childInput: { a: 1, b: 2, fail: true }, childName: uniqueName('child') });
    const d = await finished(arn);
    expect(d.status).toBe('FAILED');
    expect(d.error).toBe('States.TaskFailed');
    expect(JSON.parse(d.cause!)).toMatchObject({ Status: 'FAILED', Error: 'AddError', StateMachineArn: add.arn });
  });

  it('aborts a running child when the parent is stopped', async () => {
    const childName = uniqueName('waiting-child');
    const arn = await start(parent, { child: dispatch.arn, childInput: { queueUrl, job: 'child', timeoutSeconds: 30 }, childName });
    const task = await receiveTask();
    await sfn.send(new StopExecutionCommand({ executionArn: arn }));
    const child = await describe_(`arn:aws:states:us-east-1:${ACCOUNT}:execution:Dispatch:${childName}`);
    expect(child.status).toBe('ABORTED');
    await expect(sfn.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{}' }))).rejects.toBeInstanceOf(TaskTimedOut);
  });
});

describe('the 256 KiB data limit', () => {
  it('fails the execution with States.DataLimitExceeded when a task returns 300 KiB', async () => {
    const d = await finished(await start(big, {}));
    expect(d.status).toBe('FAILED');
    expect(d.error).toBe('States.DataLimitExceeded');
  });

  it('fails the execution when a state output (a Map of three 100 KiB results) exceeds it', async () => {
    const d = await finished(await start(bigMap, {}));
    expect(d.status).toBe('FAILED');
    expect(d.error).toBe('States.DataLimitExceeded');
    expect(d.cause).toContain("'Each'");
  });
});

describe('GetExecutionHistory and ListExecutions', () => {
  it('gives AWS event types, in pages, in either order', async () => {
    const arn = await start(mapOfTasks, {});
    await finished(arn);
    const all = await history(arn);
    const types = all.map((e) => e.type);
    expect(types[0]).toBe('ExecutionStarted');
    expect(types.at(-1)).toBe('ExecutionSucceeded');
    expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i + 1));
    expect(all.every((e) => e.timestamp instanceof Date)).toBe(true);
    const count = (t: string) => types.filter((x) => x === t).length;
    expect(count('PassStateEntered')).toBe(1);
    expect(count('MapStateEntered')).toBe(1);
    expect(count('MapStateStarted')).toBe(1);
    expect(count('MapIterationStarted')).toBe(4);
    expect(count('MapIterationSucceeded')).toBe(4);
    expect(count('TaskStateEntered')).toBe(4);
    expect(count('TaskScheduled')).toBe(4);
    expect(count('TaskSucceeded')).toBe(4);
    expect(count('TaskStateExited')).toBe(4);
    expect(count('MapStateExited')).toBe(1);
    expect(count('SucceedStateEntered')).toBe(1);
    expect(all.find((e) => e.type === 'MapStateStarted')?.mapStateStartedEventDetails).toEqual({ length: 4 });
    expect(all.find((e) => e.type === 'PassStateExited')?.stateExitedEventDetails?.output).toBe('{"items":[1,2,3,4]}');

    const first = await sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 5 }));
    expect(first.events!.map((e) => e.id)).toEqual([1, 2, 3, 4, 5]);
    const second = await sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 5, nextToken: first.nextToken }));
    expect(second.events!.map((e) => e.id)).toEqual([6, 7, 8, 9, 10]);
    const newest = await sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 2, reverseOrder: true }));
    expect(newest.events!.map((e) => e.id)).toEqual([all.length, all.length - 1]);
    await expect(
      sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, maxResults: 5, nextToken: newest.nextToken })),
    ).rejects.toBeInstanceOf(InvalidToken);
    const lean = await sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, includeExecutionData: false, maxResults: 3 }));
    expect(lean.events![1]!.stateEnteredEventDetails).toEqual({ name: 'Numbers' });
  });

  it('fails an execution at 25,000 history events, as AWS does, with ExecutionFailed as event 25,000', async () => {
    const arn = await start(forever, { spin: true });
    const d = await finished(arn, 10_000);
    expect(d).toMatchObject({ status: 'FAILED', error: 'States.Runtime' });
    expect(d.cause).toBe('The execution reached the maximum number of history events (25000).');
    const last = await sfn.send(new GetExecutionHistoryCommand({ executionArn: arn, reverseOrder: true, maxResults: 2 }));
    expect(last.events!.map((e) => [e.id, e.type])).toEqual([
      [25000, 'ExecutionFailed'],
      [24999, expect.stringMatching(/State(Entered|Exited)$/)],
    ]);
  });

  it('lists executions of a state machine newest first, filtered by status, in pages', async () => {
    const ok1 = await start(add, { a: 1, b: 1 });
    const bad = await start(add, { a: 1, b: 1, fail: true });
    const ok2 = await start(add, { a: 2, b: 2 });
    await Promise.all([finished(ok1), finished(bad), finished(ok2)]);
    const succeeded = await sfn.send(new ListExecutionsCommand({ stateMachineArn: add.arn, statusFilter: 'SUCCEEDED', maxResults: 1 }));
    expect(succeeded.executions!.map((e) => e.executionArn)).toEqual([ok2]);
    const next = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn: add.arn, statusFilter: 'SUCCEEDED', maxResults: 1, nextToken: succeeded.nextToken }),
    );
    expect(next.executions!.map((e) => e.executionArn)).toEqual([ok1]);
    const failed = await sfn.send(new ListExecutionsCommand({ stateMachineArn: add.arn, statusFilter: 'FAILED' }));
    expect(failed.executions!.map((e) => e.executionArn)).toContain(bad);
  });
});

describe('definitions', () => {
  it('rejects a definition with an unsupported resource when the service is constructed', () => {
    const definition = {
      StartAt: 'Put',
      States: { Put: { Type: 'Task', Resource: 'arn:aws:states:::dynamodb:putItem', Parameters: { TableName: 't' }, End: true } },
    };
    expect(() => new LocalStepFunctions({ stateMachines: [{ arn: smArn('Bad'), name: 'Bad', definition }], lambdas: {}, sqs })).toThrow(
      /dynamodb:putItem is not supported/,
    );
  });

  it('rejects a Lambda function ARN that has no local handler', () => {
    expect(() => new LocalStepFunctions({ stateMachines: [add], lambdas: {}, sqs })).toThrow(/no local handler/);
  });
});

describe('restart on the same stateDir', () => {
  it('ends executions left RUNNING with Local.LayerStopped, reports them, and keeps finished ones describable', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'xl-sfn-'));
    dirs.push(stateDir);
    const { QueueUrl: restartQueue } = await sqs.send(new CreateQueueCommand({ QueueName: 'sfn-restart' }));

    const before = new LocalStepFunctions({ stateMachines: [dispatch, add], lambdas, sqs, stateDir });
    const sfn1 = new SFNClient({ ...LOCAL_CLIENT, endpoint: (await before.start()).endpoint });
    const done = await start(add, { a: 4, b: 5 }, uniqueName('done'), sfn1);
    await finished(done, 5000, sfn1);
    const running = await start(dispatch, { queueUrl: restartQueue, job: 'interrupted', timeoutSeconds: 60 }, uniqueName('running'), sfn1);
    const task = await receiveTask(restartQueue);
    sfn1.destroy();
    await before.close();

    const seen: ExecutionStatusChangeEvent[] = [];
    const after = new LocalStepFunctions({ stateMachines: [dispatch, add], lambdas, sqs, stateDir, onStatusChange: (e) => void seen.push(e) });
    const sfn2 = new SFNClient({ ...LOCAL_CLIENT, endpoint: (await after.start()).endpoint });
    try {
      expect(seen.map((e) => [e.detail.executionArn, e.detail.status, e.detail.error])).toEqual([[running, 'FAILED', 'Local.LayerStopped']]);
      expect(await describe_(running, sfn2)).toMatchObject({
        status: 'FAILED',
        error: 'Local.LayerStopped',
        cause: 'the local layer stopped while this execution was running',
      });
      expect(await describe_(done, sfn2)).toMatchObject({ status: 'SUCCEEDED', output: '{"sum":9}' });
      expect((await history(done, sfn2)).map((e) => e.type)).toEqual([
        'ExecutionStarted',
        'TaskStateEntered',
        'LambdaFunctionScheduled',
        'LambdaFunctionStarted',
        'LambdaFunctionSucceeded',
        'TaskStateExited',
        'ExecutionSucceeded',
      ]);
      expect((await history(running, sfn2)).map((e) => e.type)).toEqual(['ExecutionStarted', 'ExecutionFailed']);
      await expect(sfn2.send(new SendTaskSuccessCommand({ taskToken: task.taskToken, output: '{}' }))).rejects.toBeInstanceOf(TaskTimedOut);
      await expect(start(add, { a: 4, b: 5 }, done.split(':').at(-1), sfn2)).rejects.toBeInstanceOf(ExecutionAlreadyExists);
    } finally {
      sfn2.destroy();
      await after.close();
    }
  });
});
