// The state machines of docs/design.md ("State machines"): TaskBatch, which runs up to 250 tasks,
// each through one reusable task fragment, and the three pattern machines, which run batches as
// child executions of TaskBatch. JSONPath only (the local runner ignores JSONata); state names are
// stable because the local layer overrides Task states by name.
import { ArnFormat, Aws, CfnResource, Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ERROR_TYPES } from '../../core/errors.ts';
import { XlFunction } from './functions.ts';
import type { Tables } from './tables.ts';
import type { TaskQueues } from './queues.ts';

const { JsonPath } = sfn;

/** TimeoutSeconds of every Lambda step (the steps function itself times out at 30 s). */
export const LAMBDA_STEP_TIMEOUT = Duration.seconds(60);
/** TimeoutSeconds of RunBatch: a Standard execution's own maximum. */
export const RUN_BATCH_TIMEOUT = Duration.days(365);
/** Errors of the Lambda service itself (not of the handler), worth a retry with backoff. */
export const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
];
export const STATE_MACHINE_LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

/** Logical ids of the state machines in the template (docs/design.md, "Names"). */
export const STATE_MACHINE_IDS = {
  sequential: 'SequentialExecution',
  parallel: 'ParallelExecution',
  pipeline: 'PipelineExecution',
  taskBatch: 'TaskBatch',
} as const;

export type Step = 'prepare' | 'gate' | 'recover' | 'finalize';

/**
 * A Task state that invokes the steps function with `{ step, ...ids }`. payloadResponseOnly makes the
 * Resource the function ARN, so the state's result is the handler's return value.
 */
export function stepTask(
  scope: Construct,
  id: string,
  steps: lambda.IFunction,
  step: Step,
  payload: Record<string, unknown>,
  resultPath?: string,
): tasks.LambdaInvoke {
  const task = new tasks.LambdaInvoke(scope, id, {
    lambdaFunction: steps,
    payload: sfn.TaskInput.fromObject({ step, ...payload }),
    payloadResponseOnly: true,
    retryOnServiceExceptions: false,
    taskTimeout: sfn.Timeout.duration(LAMBDA_STEP_TIMEOUT),
    resultPath,
  });
  task.addRetry({
    errors: LAMBDA_SERVICE_ERRORS,
    interval: Duration.seconds(1),
    backoffRate: 2,
    maxAttempts: 6,
    maxDelay: Duration.seconds(30),
    jitterStrategy: sfn.JitterType.FULL,
  });
  return task;
}

/** The Catch entries of Dispatch, in order: one per error type, the service's timeouts, then the rest. */
export const DISPATCH_CATCH_ERRORS: string[][] = [
  ...ERROR_TYPES.map((t) => [t]),
  ['States.Timeout', 'States.HeartbeatTimeout'],
  [sfn.Errors.ALL],
];

export interface TaskFragmentProps {
  readonly steps: lambda.IFunction;
}

/**
 * One task, from gate to its end (docs/design.md, "The task fragment"); input `{ executionId, taskIndex }`.
 * The data shapes are core/steps.ts's (GateResult, RecoverResult):
 *
 * Gate (steps: gate)       → ResultPath $.gate: `{ action: dispatch, dispatch: { QueueUrl, MessageBody } }`
 *                            (MessageBody: executionId, taskIndex, dispatchSeq, dispatchTimeoutSeconds, probe),
 *                            `{ action: skip }`, or `{ action: blocked, failure }` (agent type's breaker open)
 * Skip?                    → skip: Skipped; blocked: Recover; otherwise Dispatch
 * Dispatch                 → sqs:sendMessage.waitForTaskToken, InputPath $.gate.dispatch, ResultPath $.outcome
 *                            → Reported; Catch per error type (ResultPath $.failure) → Recover
 * Recover (steps: recover) → gets the whole iteration state (ids, gate, failure) as `state`;
 *                            ResultPath $.recovery: `{ action: retry | done, delaySeconds }`
 * Retry?                   → retry: Backoff; otherwise Settled
 * Backoff                  → Wait SecondsPath $.recovery.delaySeconds → Gate
 *
 * Every end state outputs only the task index, so a 250-task Map result stays a few KiB.
 */
export class TaskFragment extends sfn.StateMachineFragment {
  readonly startState: sfn.State;
  readonly endStates: sfn.INextable[] = [];
  readonly gate: tasks.LambdaInvoke;
  readonly dispatch: sfn.CustomState;
  readonly recover: tasks.LambdaInvoke;

  constructor(scope: Construct, id: string, props: TaskFragmentProps) {
    super(scope, id);
    const ids = { executionId: JsonPath.stringAt('$.executionId'), taskIndex: JsonPath.numberAt('$.taskIndex') };
    const end = (name: string) => new sfn.Succeed(this, name, { outputPath: '$.taskIndex' });

    this.gate = stepTask(this, 'Gate', props.steps, 'gate', ids, '$.gate');
    this.recover = stepTask(
      this,
      'Recover',
      props.steps,
      'recover',
      { ...ids, state: JsonPath.objectAt('$') },
      '$.recovery',
    );

    this.dispatch = new sfn.CustomState(this, 'Dispatch', {
      stateJson: {
        Type: 'Task',
        Resource: `arn:${Aws.PARTITION}:states:::sqs:sendMessage.waitForTaskToken`,
        InputPath: '$.gate.dispatch',
        Parameters: {
          'QueueUrl.$': '$.QueueUrl',
          // Ids, the token and whether this is the breaker's half-open probe; the task itself is in
          // the table (a forged message finds nothing).
          MessageBody: {
            'executionId.$': '$.MessageBody.executionId',
            'taskIndex.$': '$.MessageBody.taskIndex',
            'dispatchSeq.$': '$.MessageBody.dispatchSeq',
            'dispatchTimeoutSeconds.$': '$.MessageBody.dispatchTimeoutSeconds',
            'probe.$': '$.MessageBody.probe',
            'taskToken.$': '$$.Task.Token',
          },
        },
        // Allowance + the task's own timeout. Resolved against the input after InputPath on AWS and
        // after Parameters locally: MessageBody carries the number in both. No HeartbeatSeconds:
        // waiting in a queue must not fail a task.
        TimeoutSecondsPath: '$.MessageBody.dispatchTimeoutSeconds',
        ResultPath: '$.outcome',
      },
    });
    for (const errors of DISPATCH_CATCH_ERRORS) {
      this.dispatch.addCatch(this.recover, { errors, resultPath: '$.failure' });
    }

    const backoff = new sfn.Wait(this, 'Backoff', { time: sfn.WaitTime.secondsPath('$.recovery.delaySeconds') });
    backoff.next(this.gate);

    this.gate.next(
      new sfn.Choice(this, 'Skip?')
        .when(sfn.Condition.stringEquals('$.gate.action', 'skip'), end('Skipped'))
        .when(sfn.Condition.stringEquals('$.gate.action', 'blocked'), this.recover)
        .otherwise(this.dispatch),
    );
    this.dispatch.next(end('Reported'));
    this.recover.next(
      new sfn.Choice(this, 'Retry?')
        .when(sfn.Condition.stringEquals('$.recovery.action', 'retry'), backoff)
        .otherwise(end('Settled')),
    );
    this.startState = this.gate;
  }
}

export interface PatternsProps {
  readonly tables: Tables;
  readonly queues: TaskQueues;
  /** Environment shared by every function (tables, bucket, queue prefix, contract defaults). */
  readonly environment: Record<string, string>;
}

export class Patterns extends Construct {
  /** functions/steps.ts: prepare, gate, recover, finalize. Needs no state machine ARN (no cycle). */
  readonly steps: XlFunction;
  /** functions/execution-events.ts: records ends no step sees (workflow errors, stops, timeouts). */
  readonly executionEvents: XlFunction;
  readonly executionStatusRule: events.Rule;
  readonly taskBatch: sfn.StateMachine;
  readonly sequential: sfn.StateMachine;
  readonly parallel: sfn.StateMachine;
  readonly pipeline: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: PatternsProps) {
    super(scope, id);
    const { tables, queues } = props;

    this.steps = new XlFunction(this, 'Steps', {
      entry: 'functions/steps.ts',
      logicalId: 'StepsFunction',
      serviceName: 'xl-steps',
      description: 'State machine steps: prepare, gate, recover, finalize',
      environment: props.environment,
      timeout: Duration.seconds(30),
    });
    // The steps read and write records only: definitions and outputs in the bucket are the
    // agents' and the API's business (recovery overrides are kept on the task record).
    tables.grantReadWriteAll(this.steps.role);

    // TaskBatch: Indexes → Map Tasks (each item → the task fragment).
    this.taskBatch = this.machine(
      STATE_MACHINE_IDS.taskBatch,
      'Runs tasks [from, to) of an execution, at most `concurrency` at once',
      new sfn.Pass(this, 'Indexes', {
        parameters: {
          executionId: JsonPath.stringAt('$.executionId'),
          from: JsonPath.numberAt('$.from'),
          to: JsonPath.numberAt('$.to'),
          concurrency: JsonPath.numberAt('$.concurrency'),
          indexes: JsonPath.arrayRange(
            JsonPath.numberAt('$.from'),
            JsonPath.mathAdd(JsonPath.numberAt('$.to'), -1) as unknown as number,
            1,
          ),
        },
      }).next(
        new sfn.Map(this, 'Tasks', {
          itemsPath: '$.indexes',
          maxConcurrencyPath: '$.concurrency',
          itemSelector: {
            executionId: JsonPath.stringAt('$.executionId'),
            taskIndex: JsonPath.numberAt('$$.Map.Item.Value'),
          },
          resultPath: JsonPath.DISCARD,
        }).itemProcessor(new TaskFragment(this, 'Task', { steps: this.steps.function })),
      ),
    );
    // Dispatch names its queue at run time; the role may send to every task queue (not the DLQs).
    for (const q of queues.taskQueues) q.grant(this.taskBatch, 'sqs:SendMessage');

    const ids = { executionId: JsonPath.stringAt('$.executionId') };
    const prepare = (s: Construct) => stepTask(s, 'Prepare', this.steps.function, 'prepare', ids);
    const finalize = (s: Construct) => stepTask(s, 'Finalize', this.steps.function, 'finalize', ids);
    const runBatch = (s: Construct) =>
      new tasks.StepFunctionsStartExecution(s, 'RunBatch', {
        stateMachine: this.taskBatch,
        integrationPattern: sfn.IntegrationPattern.RUN_JOB,
        // Named <workflow run>-<from> (the run is <executionId>, or <executionId>-r<n> after a resume
        // or a redrive): a retried start of the same batch is idempotent, a new run's batch is new.
        name: JsonPath.format('{}-{}', JsonPath.executionName, JsonPath.stringAt('$.from')),
        input: sfn.TaskInput.fromObject({
          executionId: JsonPath.stringAt('$.executionId'),
          from: JsonPath.numberAt('$.from'),
          to: JsonPath.numberAt('$.to'),
          concurrency: JsonPath.numberAt('$.concurrency'),
        }),
        associateWithParent: true,
        taskTimeout: sfn.Timeout.duration(RUN_BATCH_TIMEOUT),
        resultPath: JsonPath.DISCARD,
      });

    {
      const s = new Construct(this, 'Sequential');
      this.sequential = this.machine(
        STATE_MACHINE_IDS.sequential,
        'Sequential plan: batches one after another',
        prepare(s)
          .next(
            new sfn.Map(s, 'Batches', { itemsPath: '$.batches', maxConcurrency: 1, resultPath: JsonPath.DISCARD })
              .itemProcessor(runBatch(s)),
          )
          .next(finalize(s)),
      );
    }
    {
      const s = new Construct(this, 'Parallel');
      this.parallel = this.machine(
        STATE_MACHINE_IDS.parallel,
        'Parallel plan: batches at once, at most $.batchConcurrency',
        prepare(s)
          .next(
            new sfn.Map(s, 'Batches', {
              itemsPath: '$.batches',
              maxConcurrencyPath: '$.batchConcurrency',
              resultPath: JsonPath.DISCARD,
            }).itemProcessor(runBatch(s)),
          )
          .next(finalize(s)),
      );
    }
    {
      const s = new Construct(this, 'Pipeline');
      this.pipeline = this.machine(
        STATE_MACHINE_IDS.pipeline,
        'Pipeline plan: stages in order, a stage\'s batches all at once',
        prepare(s)
          .next(
            new sfn.Map(s, 'Stages', { itemsPath: '$.stages', maxConcurrency: 1, resultPath: JsonPath.DISCARD })
              .itemProcessor(
                new sfn.Map(s, 'Batches', { itemsPath: '$.batches', resultPath: JsonPath.DISCARD })
                  .itemProcessor(runBatch(s)),
              ),
          )
          .next(finalize(s)),
      );
    }

    this.executionEvents = new XlFunction(this, 'ExecutionEvents', {
      entry: 'functions/execution-events.ts',
      logicalId: 'ExecutionEventsFunction',
      serviceName: 'xl-execution-events',
      description: 'Records execution ends that no step sees (Step Functions status change events)',
      environment: props.environment,
      timeout: Duration.seconds(30),
      memorySize: 256,
    });
    tables.executions.grantReadWriteData(this.executionEvents.role);
    this.executionStatusRule = new events.Rule(this, 'ExecutionStatusChange', {
      description: 'Ends of pattern and TaskBatch executions',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: {
          stateMachineArn: this.stateMachines.map((m) => m.stateMachineArn),
          status: ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'],
        },
      },
      targets: [
        new targets.LambdaFunction(this.executionEvents.function, {
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
        }),
      ],
    });
  }

  /** The three pattern machines and TaskBatch. */
  get stateMachines(): sfn.StateMachine[] {
    return [this.sequential, this.parallel, this.pipeline, this.taskBatch];
  }

  /** XL_SFN_*: for the API only (the steps function must not depend on the machines that invoke it). */
  get environment(): Record<string, string> {
    return {
      XL_SFN_SEQUENTIAL: this.sequential.stateMachineArn,
      XL_SFN_PARALLEL: this.parallel.stateMachineArn,
      XL_SFN_PIPELINE: this.pipeline.stateMachineArn,
    };
  }

  /** ARN pattern of a state machine's executions. */
  static executionArnPattern(machine: sfn.StateMachine): string {
    return Stack.of(machine).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${machine.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }

  /** states:StartExecution on the pattern machines and states:StopExecution on their executions. */
  grantStartAndStop(grantee: iam.IGrantable): void {
    const patterns = [this.sequential, this.parallel, this.pipeline];
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['states:StartExecution'],
      resourceArns: patterns.map((m) => m.stateMachineArn),
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['states:StopExecution'],
      resourceArns: patterns.map((m) => Patterns.executionArnPattern(m)),
    });
  }

  private machine(logicalId: string, comment: string, definition: sfn.IChainable): sfn.StateMachine {
    const logGroup = new logs.LogGroup(this, `${logicalId}Logs`, { retention: STATE_MACHINE_LOG_RETENTION });
    const machine = new sfn.StateMachine(this, logicalId, {
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment,
      tracingEnabled: true,
      // Execution data stays out of the logs: it holds task tokens and user input.
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
    });
    (machine.node.defaultChild as CfnResource).overrideLogicalId(logicalId);
    return machine;
  }
}
