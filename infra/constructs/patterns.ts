// The state machines of docs/design.md ("State machines"): TaskBatch, which runs up to 250 tasks,
// each through one reusable task fragment, and the three pattern machines, which run batches as
// child executions of TaskBatch. JSONPath only (the local runner ignores JSONata); state names are
// stable because the local layer overrides Task states by name.
import { ArnFormat, Aws, CfnResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as sqs from 'aws-cdk-lib/aws-sqs';
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
  'Lambda.ClientExecutionTimeoutException',
];
/**
 * What a step's Retry retries: the Lambda service's own errors (Step Functions best practice
 * "Handle Lambda service exceptions"), Lambda.Unknown (unhandled: out of memory, a function timeout;
 * Sandbox.Timedout is the timeout's name in newer runtimes), States.Timeout (the state's own
 * TimeoutSeconds), and `transient`, which the steps handler throws for throttling, 5xx and network
 * errors of its AWS calls (core/step-errors.ts). `permanent` and anything else go to the Catch at once.
 */
export const STEP_TRANSIENT_ERRORS = ['transient', ...LAMBDA_SERVICE_ERRORS, 'Lambda.Unknown', 'Sandbox.Timedout', 'States.Timeout'];
/**
 * Full-jitter exponential backoff, 1 s doubling to 30 s: ten attempts span up to about three
 * minutes, longer than DynamoDB on-demand takes to adapt to a burst (and the SDK already retries
 * each call three times inside the function). Each retry adds 3 history events.
 */
export const STEP_RETRY: sfn.RetryProps = {
  errors: STEP_TRANSIENT_ERRORS,
  interval: Duration.seconds(1),
  backoffRate: 2,
  maxAttempts: 10,
  maxDelay: Duration.seconds(30),
  jitterStrategy: sfn.JitterType.FULL,
};
/** Recover failed past its retries: wait this long, then Recover again, at most this many times per task. */
export const RECOVER_AGAIN_SECONDS = 30;
export const RECOVER_FAILURES_MAX = 5;
export const STATE_MACHINE_LOG_RETENTION = logs.RetentionDays.ONE_MONTH;
/** Where the state machines' log groups are named (`<prefix><stack>-<logical id>`). */
export const STATE_MACHINE_LOG_PREFIX = '/aws/vendedlogs/states/';
/** How often the execution-events function reconciles (drains its dead letters, sweeps RUNNING executions). */
export const EXECUTION_RECONCILE_RATE = Duration.minutes(5);

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
  task.addRetry(STEP_RETRY);
  return task;
}

/**
 * Prepare's and Finalize's Catch: the execution ends FAILED with `Layer.<Step>Failed` as its error and
 * the step's own error as its cause; the execution-events path records it like any workflow failure.
 */
export function failedStep(scope: Construct, task: tasks.LambdaInvoke, step: 'Prepare' | 'Finalize'): tasks.LambdaInvoke {
  const fail = new sfn.Fail(scope, `${step}Failed`, { error: `Layer.${step}Failed`, causePath: '$.stepFailure.Cause' });
  task.addCatch(fail, { errors: [sfn.Errors.ALL], resultPath: '$.stepFailure' });
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
 * One task, from gate to its end (docs/design.md, "The task fragment"); input
 * `{ executionId, taskIndex, stepFailures: { count: 0 } }`. The data shapes are core/steps.ts's
 * (GateResult, RecoverResult):
 *
 * Gate (steps: gate)       → ResultPath $.gate: `{ action: dispatch, dispatch: { QueueUrl, MessageBody } }`
 *                            (MessageBody: executionId, taskIndex, dispatchSeq, dispatchTimeoutSeconds, probe, breakers),
 *                            `{ action: skip }`, or `{ action: blocked, failure, breaker?, retryAt? }` (a breaker open)
 * Skip?                    → skip: Skipped; blocked: Recover; otherwise Dispatch
 * Dispatch                 → sqs:sendMessage.waitForTaskToken, InputPath $.gate.dispatch, ResultPath $.outcome
 *                            → Reported; Catch per error type (ResultPath $.failure) → Recover
 * Recover (steps: recover) → gets the whole iteration state (ids, gate, failure) as `state`;
 *                            ResultPath $.recovery: `{ action: retry | done, delaySeconds }`
 * Retry?                   → retry: Backoff; otherwise Settled
 * Backoff                  → Wait SecondsPath $.recovery.delaySeconds → Gate
 *
 * The steps' own failures (docs/design.md, "When a step fails"): Gate and Recover retry
 * STEP_TRANSIENT_ERRORS with backoff (STEP_RETRY), then:
 * Gate's Catch (any error, ResultPath $.stepFailure)
 *                          → GateFailed: Pass that keeps only the ids and sets
 *                            `failure: { Error: transient, Cause: "the Gate step failed (<error>): <cause>", source: layer }`
 *                            → Recover: the task's own recovery decides (a transient retry, or the task fails)
 * Recover's Catch (any error, ResultPath $.stepFailure)
 *                          → RecoverAgain?: fewer than RECOVER_FAILURES_MAX caught so far (count in
 *                            $.stepFailures.count) → CountRecoverFailure → RecoverLater (Wait
 *                            RECOVER_AGAIN_SECONDS) → Recover; else RecoverFailed (Fail
 *                            `Layer.RecoverFailed`: the batch, then the plan, end FAILED, recorded by
 *                            the execution-events path)
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
          // Ids, the token, whether this is a breaker's half-open probe and which breakers to report a
          // success to (Gate always sets both, so the paths resolve); the task itself is in
          // the table (a forged message finds nothing).
          MessageBody: {
            'executionId.$': '$.MessageBody.executionId',
            'taskIndex.$': '$.MessageBody.taskIndex',
            'dispatchSeq.$': '$.MessageBody.dispatchSeq',
            'dispatchTimeoutSeconds.$': '$.MessageBody.dispatchTimeoutSeconds',
            'probe.$': '$.MessageBody.probe',
            'breakers.$': '$.MessageBody.breakers',
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

    // Gate failed past its retries: a transient failure of the layer, handed to the task's recovery.
    // Only the ids go on: a $.gate or $.failure of an earlier round must not be read as this one's.
    const gateFailed = new sfn.Pass(this, 'GateFailed', {
      parameters: {
        ...ids,
        stepFailures: JsonPath.objectAt('$.stepFailures'),
        failure: {
          Error: 'transient',
          Cause: JsonPath.format('the Gate step failed ({}): {}', JsonPath.stringAt('$.stepFailure.Error'), JsonPath.stringAt('$.stepFailure.Cause')),
          source: 'layer',
        },
      },
    });
    this.gate.addCatch(gateFailed, { errors: [sfn.Errors.ALL], resultPath: '$.stepFailure' });
    gateFailed.next(this.recover);

    // Recover failed past its retries: the task's state is unknown, so Recover runs again later, a
    // bounded number of times per task; then the batch fails rather than leave the task unsettled.
    const recoverLater = new sfn.Wait(this, 'RecoverLater', { time: sfn.WaitTime.duration(Duration.seconds(RECOVER_AGAIN_SECONDS)) });
    recoverLater.next(this.recover);
    const countFailure = new sfn.Pass(this, 'CountRecoverFailure', {
      parameters: { count: JsonPath.mathAdd(JsonPath.numberAt('$.stepFailures.count'), 1) },
      resultPath: '$.stepFailures',
    }).next(recoverLater);
    const recoverFailed = new sfn.Fail(this, 'RecoverFailed', { error: 'Layer.RecoverFailed', causePath: '$.stepFailure.Cause' });
    this.recover.addCatch(
      new sfn.Choice(this, 'RecoverAgain?')
        .when(sfn.Condition.numberLessThan('$.stepFailures.count', RECOVER_FAILURES_MAX), countFailure)
        .otherwise(recoverFailed),
      { errors: [sfn.Errors.ALL], resultPath: '$.stepFailure' },
    );

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

/**
 * TaskBatch: Indexes → Map Tasks (each item → the task fragment). A function of its own so that the
 * history measurements (test/integration/batch-history.test.ts) run the very same definition.
 */
export function taskBatchDefinition(scope: Construct, steps: lambda.IFunction): sfn.IChainable {
  return new sfn.Pass(scope, 'Indexes', {
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
    new sfn.Map(scope, 'Tasks', {
      itemsPath: '$.indexes',
      maxConcurrencyPath: '$.concurrency',
      itemSelector: {
        executionId: JsonPath.stringAt('$.executionId'),
        taskIndex: JsonPath.numberAt('$$.Map.Item.Value'),
        // Recover's failures caught so far (RecoverAgain? bounds them).
        stepFailures: { count: 0 },
      },
      resultPath: JsonPath.DISCARD,
    }).itemProcessor(new TaskFragment(scope, 'Task', { steps })),
  );
}

export interface PatternsProps {
  readonly tables: Tables;
  readonly queues: TaskQueues;
  /** Environment shared by every function (tables, bucket, queue prefix, contract defaults). */
  readonly environment: Record<string, string>;
  /** Reserved concurrency of the steps function (default none; see ExecutionLayerStackProps). */
  readonly stepsReservedConcurrency?: number;
}

export class Patterns extends Construct {
  /** functions/steps.ts: prepare, gate, recover, finalize. Needs no state machine ARN (no cycle). */
  readonly steps: XlFunction;
  /** functions/execution-events.ts: records ends no step sees (workflow errors, stops, timeouts), and reconciles them. */
  readonly executionEvents: XlFunction;
  readonly executionStatusRule: events.Rule;
  /** Where status change events the events function could not handle go (EventBridge's DLQ and Lambda's on-failure destination). */
  readonly executionEventsDeadLetters: sqs.Queue;
  /** Runs the reconcile: the dead letters, and RUNNING executions whose workflow run has ended. */
  readonly executionReconcileSchedule: events.Rule;
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
      reservedConcurrentExecutions: props.stepsReservedConcurrency,
    });
    // The steps read and write records only: definitions and outputs in the bucket are the
    // agents' and the API's business (recovery overrides are kept on the task record).
    tables.grantReadWriteAll(this.steps.role);

    this.taskBatch = this.machine(
      STATE_MACHINE_IDS.taskBatch,
      'Runs tasks [from, to) of an execution, at most `concurrency` at once',
      taskBatchDefinition(this, this.steps.function),
    );
    // Dispatch names its queue at run time; the role may send to every task queue (not the DLQs).
    for (const q of queues.taskQueues) q.grant(this.taskBatch, 'sqs:SendMessage');
    // Gate may name an agent's direct queue instead (affinity, core/affinity.ts).
    iam.Grant.addToPrincipal({ grantee: this.taskBatch, actions: ['sqs:SendMessage'], resourceArns: [queues.directQueueArnPattern()] });

    const ids = { executionId: JsonPath.stringAt('$.executionId') };
    const prepare = (s: Construct) => failedStep(s, stepTask(s, 'Prepare', this.steps.function, 'prepare', ids), 'Prepare');
    // Finalize names its workflow run (this execution's name): its end is written for that run only.
    const finalize = (s: Construct) =>
      failedStep(s, stepTask(s, 'Finalize', this.steps.function, 'finalize', { ...ids, runName: JsonPath.executionName }), 'Finalize');
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

    // Status change events this function could not handle, from either side of its invocation:
    // EventBridge puts an event it could not deliver (after its retry policy) here with the event
    // as the body; Lambda puts an invocation record (the event as `requestPayload`) here when the
    // function failed on every asynchronous attempt. SSE-SQS: EventBridge cannot use a CMK-less
    // KMS queue. The reconcile drains it.
    this.executionEventsDeadLetters = new sqs.Queue(this, 'ExecutionEventsDlq', {
      queueName: `${Stack.of(this).stackName}-execution-events-dlq`,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    (this.executionEventsDeadLetters.node.defaultChild as CfnResource).overrideLogicalId('ExecutionEventsDlq');

    this.executionEvents = new XlFunction(this, 'ExecutionEvents', {
      entry: 'functions/execution-events.ts',
      logicalId: 'ExecutionEventsFunction',
      serviceName: 'xl-execution-events',
      description: 'Records execution ends that no step sees (Step Functions status change events), and reconciles them',
      // The pattern machines' ARNs for the reconcile's DescribeExecution (no cycle: the machines
      // do not invoke this function, the rule does).
      environment: { ...props.environment, ...this.environment, XL_EXECUTION_EVENTS_DLQ_URL: this.executionEventsDeadLetters.queueUrl },
      timeout: Duration.seconds(30),
      memorySize: 256,
    });
    tables.executions.grantReadWriteData(this.executionEvents.role);
    this.executionEventsDeadLetters.grantConsumeMessages(this.executionEvents.role);
    iam.Grant.addToPrincipal({
      grantee: this.executionEvents.role,
      actions: ['states:DescribeExecution'],
      resourceArns: [this.sequential, this.parallel, this.pipeline].map((m) => Patterns.executionArnPattern(m)),
    });
    // Lambda's asynchronous retries (2) and then the on-failure destination.
    this.executionEvents.function.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(this.executionEventsDeadLetters),
    });
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
        // EventBridge's own retry policy (it retries throttled or failed invocations, not function
        // errors), then the same dead-letter queue; CDK adds the queue policy that lets this rule
        // (aws:SourceArn) send to it.
        new targets.LambdaFunction(this.executionEvents.function, {
          retryAttempts: 185,
          maxEventAge: Duration.hours(24),
          deadLetterQueue: this.executionEventsDeadLetters,
        }),
      ],
    });
    this.executionReconcileSchedule = new events.Rule(this, 'ExecutionReconcileSchedule', {
      description: 'Runs functions/execution-events.ts { reconcile: true }',
      schedule: events.Schedule.rate(EXECUTION_RECONCILE_RATE),
      // No retries: the next round is minutes away.
      targets: [new targets.LambdaFunction(this.executionEvents.function, { event: events.RuleTargetInput.fromObject({ reconcile: true }), retryAttempts: 0 })],
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
    // Under /aws/vendedlogs/: Step Functions adds each log group it logs to to the account's CloudWatch
    // Logs resource policy, which is capped at 5120 characters; for groups under this prefix CloudWatch
    // Logs grants delivery without growing it (Step Functions developer guide, "Avoiding Amazon
    // CloudWatch Logs resource policy size restrictions", docs.aws.amazon.com/step-functions/latest/dg/bp-cwl.html).
    const logGroup = new logs.LogGroup(this, `${logicalId}Logs`, {
      logGroupName: `${STATE_MACHINE_LOG_PREFIX}${Stack.of(this).stackName}-${logicalId}`,
      retention: STATE_MACHINE_LOG_RETENTION,
      // A named group that outlived its stack would make the next deploy of that stack name fail.
      removalPolicy: RemovalPolicy.DESTROY,
    });
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
