// TaskBatch's history, measured: the synthesized TaskBatch ASL (infra/constructs/patterns.ts) run on
// the local Step Functions service, whose GetExecutionHistory writes the events AWS writes for each
// state (local/stepfunctions/history.ts). The steps function and the agents are stand-ins: Gate always
// dispatches, a stand-in agent answers each dispatch's token at once (SendTaskSuccess, or
// SendTaskFailure for a failing task), and Recover retries with no delay until the task's retries are
// used. So the runs are fast while every state the real flow passes through is passed through. Used by
// test/integration/batch-history.test.ts and the reliability suite's batch-history case.
import { type CfnResource, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { testApp } from './cdk-app.ts';
import { placeholderResolver, resolveDefinition } from '../../infra/asl.ts';
import { taskBatchDefinition } from '../../infra/constructs/patterns.ts';
import { LocalStepFunctions, type ExecutionStatusChangeEvent } from '../../local/stepfunctions/index.ts';

const STEPS_ARN = 'arn:aws:lambda:us-east-1:000000000000:function:steps';
const MACHINE_ARN = 'arn:aws:states:us-east-1:000000000000:stateMachine:TaskBatch';

/** The TaskBatch ASL exactly as the stack builds it, with a literal steps function ARN. */
export function taskBatchAsl(): object {
  const stack = new Stack(testApp(), 'history');
  const steps = lambda.Function.fromFunctionArn(stack, 'Steps', STEPS_ARN);
  const machine = new sfn.StateMachine(stack, 'TaskBatch', { definitionBody: sfn.DefinitionBody.fromChainable(taskBatchDefinition(stack, steps)) });
  (machine.node.defaultChild as CfnResource).overrideLogicalId('TaskBatch');
  return resolveDefinition(Template.fromStack(stack).toJSON(), 'TaskBatch', placeholderResolver);
}
let asl: object | undefined;

export interface BatchRun {
  /** Tasks in the batch. */
  count: number;
  /** Retries Recover grants the task (it answers `done` after them). */
  retries?: (taskIndex: number) => number;
  /** Whether the stand-in agent fails the task's every dispatch (else it succeeds at once). */
  fails?: (taskIndex: number) => boolean;
  /** Gate throws this many `transient` errors before it answers (per task). */
  gateThrows?: number;
}

/**
 * Runs one TaskBatch execution to its end; answers its status, its history's event types, and how
 * many times each task was dispatched (the stand-in agent's count).
 */
export async function runBatch(run: BatchRun): Promise<{ status: string; types: string[]; dispatches: Map<number, number> }> {
  asl ??= taskBatchAsl();
  const dispatches = new Map<number, number>();
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
      dispatches.set(body.taskIndex, (dispatches.get(body.taskIndex) ?? 0) + 1);
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
    stateMachines: [{ arn: MACHINE_ARN, name: 'TaskBatch', definition: asl }],
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
    return { status: end.detail.status, types, dispatches };
  } finally {
    await sfnService.close();
  }
}
