// History events of TaskBatch, measured: the synthesized TaskBatch ASL (infra/constructs/patterns.ts)
// runs on the local Step Functions service, whose GetExecutionHistory writes the events AWS writes
// for each state (local/stepfunctions/history.ts). The steps function and the agents are stand-ins:
// Gate always dispatches, a stand-in agent answers each dispatch's token at once (SendTaskSuccess,
// or SendTaskFailure for a failing task), and Recover retries with no delay until the task's retries
// are used. So the runs are fast while every state the real flow passes through is passed through.
import { App, type CfnResource, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { ERROR_TYPES } from '../../core/errors.ts';
import { HISTORY_EVENTS, prepareBatches, retryBudget, stageLayout } from '../../core/patterns.ts';
import { placeholderResolver, resolveDefinition } from '../../infra/asl.ts';
import { taskBatchDefinition } from '../../infra/constructs/patterns.ts';
import { LocalStepFunctions, type ExecutionStatusChangeEvent } from '../../local/stepfunctions/index.ts';

const STEPS_ARN = 'arn:aws:lambda:us-east-1:000000000000:function:steps';
const MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:TaskBatch';

/** The TaskBatch ASL exactly as the stack builds it, with a literal steps function ARN. */
function taskBatchAsl(): object {
  const stack = new Stack(new App(), 'history');
  const steps = lambda.Function.fromFunctionArn(stack, 'Steps', STEPS_ARN);
  const machine = new sfn.StateMachine(stack, 'TaskBatch', { definitionBody: sfn.DefinitionBody.fromChainable(taskBatchDefinition(stack, steps)) });
  (machine.node.defaultChild as CfnResource).overrideLogicalId('TaskBatch');
  return resolveDefinition(Template.fromStack(stack).toJSON(), 'TaskBatch', placeholderResolver);
}
const ASL = taskBatchAsl();

interface BatchRun {
  /** Tasks in the batch. */
  count: number;
  /** Retries Recover grants the task (it answers `done` after them). */
  retries?: (taskIndex: number) => number;
  /** Whether the stand-in agent fails the task's every dispatch (else it succeeds at once). */
  fails?: (taskIndex: number) => boolean;
  /** Gate throws this many `transient` errors before it answers (per task). */
  gateThrows?: number;
}

/** Runs one TaskBatch execution to its end; answers its status and its history's event types. */
async function runBatch(run: BatchRun): Promise<{ status: string; types: string[] }> {
  const used = new Map<number, number>();
  const gateThrown = new Map<number, number>();
  const steps = async (event: unknown) => {
    const e = event as { step: string; executionId: string; taskIndex: number };
    if (e.step === 'gate') {
      const thrown = gateThrown.get(e.taskIndex) ?? 0;
      if (thrown < (run.gateThrows ?? 0)) {
        gateThrown.set(e.taskIndex, thrown + 1);
        throw Object.assign(new Error('gate: ThrottlingException: stand-in throttle'), { name: 'transient' });
      }
      return {
        action: 'dispatch',
        dispatch: {
          QueueUrl: 'https://sqs.local/q',
          MessageBody: { executionId: e.executionId, taskIndex: e.taskIndex, dispatchSeq: 1, dispatchTimeoutSeconds: 60, probe: false, breakers: [] },
        },
      };
    }
    if (e.step === 'recover') {
      const n = used.get(e.taskIndex) ?? 0;
      if (n >= (run.retries?.(e.taskIndex) ?? 0)) return { executionId: e.executionId, taskIndex: e.taskIndex, action: 'done', delaySeconds: 0 };
      used.set(e.taskIndex, n + 1);
      return { executionId: e.executionId, taskIndex: e.taskIndex, action: 'retry', delaySeconds: 0 };
    }
    throw new Error(`unexpected step ${e.step}`);
  };
  // The stand-in agent: it answers the token as soon as the message is "sent".
  const sqs = {
    send: async (command: { input: { MessageBody: string } }) => {
      const body = JSON.parse(command.input.MessageBody) as { taskIndex: number; taskToken: string };
      setImmediate(() => {
        const answer = run.fails?.(body.taskIndex)
          ? sfnService.sendTaskFailure({ taskToken: body.taskToken, error: 'transient', cause: 'stand-in agent failure' })
          : sfnService.sendTaskSuccess({ taskToken: body.taskToken, output: '{"status":"completed"}' });
        answer.catch(() => undefined);
      });
      return { MessageId: 'm', MD5OfMessageBody: 'x' };
    },
  } as unknown as SQSClient;
  const ended = Promise.withResolvers<ExecutionStatusChangeEvent>();
  const sfnService: LocalStepFunctions = new LocalStepFunctions({
    stateMachines: [{ arn: MACHINE_ARN, name: 'TaskBatch', definition: ASL }],
    lambdas: { [STEPS_ARN]: steps },
    sqs,
    onStatusChange: (e) => {
      if (e.detail.status !== 'RUNNING') ended.resolve(e);
    },
  });
  try {
    const { executionArn } = await sfnService.startExecution({
      stateMachineArn: MACHINE_ARN,
      name: 'e1-0',
      input: JSON.stringify({ executionId: 'e1', from: 0, to: run.count, concurrency: Math.min(40, run.count) }),
    });
    const end = await ended.promise;
    const types: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await sfnService.getExecutionHistory({ executionArn, maxResults: 1000, nextToken, includeExecutionData: false });
      types.push(...page.events!.map((e) => e.type!));
      nextToken = page.nextToken;
    } while (nextToken);
    return { status: end.detail.status, types };
  } finally {
    await sfnService.close();
  }
}

const events = async (run: BatchRun) => {
  const r = await runBatch(run);
  expect(r.status).toBe('SUCCEEDED');
  return r.types.length;
};

describe('TaskBatch history, measured on the local Step Functions service', () => {
  it('writes AWS\'s events for each state of a task that succeeds at once', async () => {
    const { status, types } = await runBatch({ count: 1 });
    expect(status).toBe('SUCCEEDED');
    // Per state, the events of AWS's GetExecutionHistory examples: a Lambda Task (function ARN)
    // Entered/LambdaFunctionScheduled/Started/Succeeded/Exited; a waitForTaskToken Task adds
    // TaskSubmitted; a Map writes MapStateStarted/Succeeded around MapIteration events.
    expect(types).toEqual([
      'ExecutionStarted',
      'PassStateEntered', 'PassStateExited',
      'MapStateEntered', 'MapStateStarted',
      'MapIterationStarted',
      'TaskStateEntered', 'LambdaFunctionScheduled', 'LambdaFunctionStarted', 'LambdaFunctionSucceeded', 'TaskStateExited',
      'ChoiceStateEntered', 'ChoiceStateExited',
      'TaskStateEntered', 'TaskScheduled', 'TaskStarted', 'TaskSubmitted', 'TaskSucceeded', 'TaskStateExited',
      'SucceedStateEntered', 'SucceedStateExited',
      'MapIterationSucceeded',
      'MapStateSucceeded', 'MapStateExited',
      'ExecutionSucceeded',
    ]);
  });

  it('measures no more events per batch, per task and per retry than core/patterns.ts HISTORY_EVENTS says', async () => {
    const one = await events({ count: 1 });
    const two = await events({ count: 2 });
    const perSucceededTask = two - one;
    const batch = one - perSucceededTask;
    const failedOnce = await events({ count: 1, fails: () => true });
    const failedAfterThree = await events({ count: 1, fails: () => true, retries: () => 3 });
    const perFailedTask = failedOnce - batch;
    const perRetry = (failedAfterThree - failedOnce) / 3;
    const measured = { batch, perSucceededTask, perFailedTask, perRetry };
    // Printed so that a change is seen, not only a failure.
    console.log('TaskBatch history events, measured:', JSON.stringify(measured));
    expect(Math.min(batch, perSucceededTask, perFailedTask, perRetry)).toBeGreaterThan(0);
    expect(HISTORY_EVENTS.batch).toBeGreaterThanOrEqual(batch);
    expect(HISTORY_EVENTS.task).toBeGreaterThanOrEqual(Math.max(perSucceededTask, perFailedTask));
    expect(HISTORY_EVENTS.retry).toBeGreaterThanOrEqual(perRetry);
  });

  it('counts 3 events for each retry of a step\'s Lambda (what HISTORY_EVENTS.margin is kept for)', async () => {
    const plain = await events({ count: 1 });
    const retried = await events({ count: 1, gateThrows: 1 });
    expect(retried - plain).toBe(3);
  });

  const allRetries = (maxRetries: number) => Object.fromEntries(ERROR_TYPES.map((t) => [t, { maxRetries }]));
  const largestBatch = (recovery?: ReturnType<typeof allRetries>) => {
    const tasks = Array.from({ length: 1000 }, (_, index) => ({ index, recovery }));
    const p = prepareBatches({ executionId: 'e1', pattern: 'parallel', maxConcurrency: 40, taskCount: 1000, stages: stageLayout('parallel', [{ name: '', count: 1000 }]) }, tasks);
    if (!('batches' in p)) throw new Error('expected batches');
    return Math.max(...p.batches.map((b) => b.to - b.from));
  };

  it('stays under 25,000 events for the largest batch Prepare makes of default tasks, every task using all its retries', async () => {
    const size = largestBatch();
    const retries = retryBudget({}); // the defaults: 3 transient + 1 timeout + 2 resource + 2 dependency
    expect(retries).toBe(8);
    expect(size).toBeGreaterThan(100);
    const total = await events({ count: size, fails: () => true, retries: () => retries });
    console.log(`default tasks: ${size} a batch, ${total} events with every retry used`);
    expect(total).toBeLessThan(HISTORY_EVENTS.limit - HISTORY_EVENTS.margin);
  }, 120_000);

  it('stays under 25,000 events for the largest batch Prepare makes of tasks allowed 20 retries of every type, all used', async () => {
    const size = largestBatch(allRetries(20));
    const total = await events({ count: size, fails: () => true, retries: () => 20 * ERROR_TYPES.length });
    console.log(`tasks with 120 retries: ${size} a batch, ${total} events with every retry used`);
    expect(total).toBeLessThan(HISTORY_EVENTS.limit - HISTORY_EVENTS.margin);
  }, 120_000);

  it('runs 250 tasks in one batch when each may retry twice, all retries used, under 25,000 events', async () => {
    expect(largestBatch(allRetries(0))).toBe(250);
    const twoRetries = { transient: { maxRetries: 2 }, timeout: { maxRetries: 0 }, resource: { maxRetries: 0 }, dependency: { maxRetries: 0 } };
    const tasks = Array.from({ length: 250 }, (_, index) => ({ index, recovery: twoRetries }));
    const p = prepareBatches({ executionId: 'e1', pattern: 'parallel', maxConcurrency: 40, taskCount: 250, stages: stageLayout('parallel', [{ name: '', count: 250 }]) }, tasks);
    expect('batches' in p && p.batches.map((b) => b.to - b.from)).toEqual([250]);
    const total = await events({ count: 250, fails: () => true, retries: () => 2 });
    expect(total).toBeLessThan(HISTORY_EVENTS.limit);
  }, 120_000);
});
