// The synthesized template, read as a specification of what AWS (and the local layer) get.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { StateMachine } from 'aws-local-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_TYPES, PRIORITIES, queueKey } from '../../core/agent-types.ts';
import { ERROR_TYPES } from '../../core/errors.ts';
import {
  type AslMachine,
  type AslState,
  forEachState,
  placeholderResolver,
  resolveDefinition,
  stateMachineDefinitions,
} from '../../infra/asl.ts';
import { acknowledgeNagFindings } from '../../infra/nag.ts';
import { ExecutionLayerStack } from '../../infra/stack.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MACHINES = ['SequentialExecution', 'ParallelExecution', 'PipelineExecution', 'TaskBatch'];

// Template JSON is read loosely here; the assertions are what check its shape.
 
type Loose = any;

interface Resource {
  Type: string;
  Properties: Record<string, Loose>;
  Metadata?: Record<string, unknown>;
}

let app: App;
let stack: ExecutionLayerStack;
let template: Template;
let resources: Record<string, Resource>;
let asl: Record<string, AslMachine>;

const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const states = (machine: AslMachine) => {
  const out: [string, AslState][] = [];
  forEachState(machine, (name, state) => out.push([name, state]));
  return out;
};

beforeAll(() => {
  const { context } = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8'));
  app = new App({ context });
  stack = new ExecutionLayerStack(app, 'xl');
  acknowledgeNagFindings(stack);
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources;
  asl = Object.fromEntries(MACHINES.map((id) => [id, resolveDefinition(template.toJSON(), id, placeholderResolver)]));
});

describe('tables', () => {
  it('are the three of the design, on demand, with point-in-time recovery, encrypted and retained', () => {
    for (const id of ['ExecutionsTable', 'AgentsTable', 'BreakersTable']) {
      const table = resources[id]!;
      expect(table.Type).toBe('AWS::DynamoDB::Table');
      expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
      expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true });
      expect((table as unknown as { DeletionPolicy: string }).DeletionPolicy).toBe('Retain');
    }
  });

  it('have the keys and indexes the stores query', () => {
    const keys = (id: string) => resources[id]!.Properties.KeySchema.map((k: { AttributeName: string }) => k.AttributeName);
    const gsi = (id: string) => resources[id]!.Properties.GlobalSecondaryIndexes?.map((g: { IndexName: string }) => g.IndexName);
    expect(keys('ExecutionsTable')).toEqual(['pk', 'sk']);
    expect(gsi('ExecutionsTable')).toEqual(['byStart']);
    expect(keys('AgentsTable')).toEqual(['pk', 'sk']);
    expect(gsi('AgentsTable')).toEqual(['byType']);
    expect(keys('BreakersTable')).toEqual(['pk']);
    expect(gsi('BreakersTable')).toBeUndefined();
  });
});

describe('payload bucket', () => {
  it('blocks public access, requires TLS, logs access and expires tmp/', () => {
    const bucket = resources.PayloadBucket!.Properties;
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.VersioningConfiguration).toBeUndefined();
    expect(bucket.LoggingConfiguration).toBeDefined();
    expect(bucket.LifecycleConfiguration.Rules).toContainEqual(
      expect.objectContaining({ Prefix: 'tmp/', ExpirationInDays: 30, Status: 'Enabled' }),
    );
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: 'PayloadBucket' },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('queues', () => {
  it('are one per agent type and priority, each with a DLQ, named <stack>-<type>-<priority>', () => {
    const names = ofType('AWS::SQS::Queue').map(([, q]) => q.Properties.QueueName).sort();
    const expected = AGENT_TYPES.flatMap((t) => PRIORITIES.flatMap((p) => [`xl-${queueKey(t, p)}`, `xl-${queueKey(t, p)}-dlq`]));
    expect(names).toEqual(expected.sort());
  });

  it('every queue that is not a DLQ redrives to its DLQ after 5 receives', () => {
    const queues = ofType('AWS::SQS::Queue');
    const dlqIds = new Set(queues.filter(([, q]) => q.Properties.QueueName.endsWith('-dlq')).map(([id]) => id));
    for (const [, q] of queues.filter(([id]) => !dlqIds.has(id))) {
      expect(q.Properties.RedrivePolicy, q.Properties.QueueName).toBeDefined();
      expect(q.Properties.RedrivePolicy.maxReceiveCount).toBe(5);
      const target = q.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
      expect(resources[target]!.Properties.QueueName).toBe(`${q.Properties.QueueName}-dlq`);
      expect(q.Properties.VisibilityTimeout).toBe(120);
    }
    for (const id of dlqIds) expect(resources[id]!.Properties.RedrivePolicy).toBeUndefined();
  });

  it('every queue is encrypted, keeps messages 14 days and has a policy denying non-TLS access', () => {
    const policies = ofType('AWS::SQS::QueuePolicy').map(([, p]) => p.Properties);
    for (const [id, q] of ofType('AWS::SQS::Queue')) {
      expect(q.Properties.SqsManagedSseEnabled).toBe(true);
      expect(q.Properties.MessageRetentionPeriod).toBe(14 * 86400);
      const policy = policies.find((p) => p.Queues.some((r: { Ref?: string }) => r.Ref === id));
      expect(policy, `${id} has no queue policy`).toBeDefined();
      expect(policy!.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 'sqs:*',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
    }
  });
});

describe('functions', () => {
  const ENTRIES: Record<string, string> = {
    ApiFunction: 'functions/api.ts',
    StepsFunction: 'functions/steps.ts',
    PoolManagerFunction: 'functions/pool-manager.ts',
    HealthMonitorFunction: 'functions/health-monitor.ts',
    ExecutionEventsFunction: 'functions/execution-events.ts',
  };

  it('run nodejs22.x on arm64 and name their entry module for the local layer', () => {
    for (const [id, entry] of Object.entries(ENTRIES)) {
      const fn = resources[id]!;
      expect(fn.Properties.Runtime).toBe('nodejs22.x');
      expect(fn.Properties.Architectures).toEqual(['arm64']);
      expect(fn.Properties.Handler).toBe('index.handler');
      expect(fn.Metadata?.['xl:entry']).toBe(entry);
      expect(fn.Metadata?.['xl:handler']).toBe('handler');
      expect(existsSync(`${ROOT}${entry}`)).toBe(true);
      expect(fn.Properties.LoggingConfig.LogGroup).toBeDefined();
    }
  });

  it('write to their own log group with a retention', () => {
    for (const id of Object.keys(ENTRIES)) {
      const group = resources[id]!.Properties.LoggingConfig.LogGroup.Ref as string;
      expect(resources[group]!.Properties.RetentionInDays).toBeGreaterThan(0);
    }
  });

  it('all get the tables, bucket, queue prefix and contract defaults', () => {
    for (const id of Object.keys(ENTRIES)) {
      const env = resources[id]!.Properties.Environment.Variables;
      expect(env).toMatchObject({
        XL_TABLE_EXECUTIONS: { Ref: 'ExecutionsTable' },
        XL_TABLE_AGENTS: { Ref: 'AgentsTable' },
        XL_TABLE_BREAKERS: { Ref: 'BreakersTable' },
        XL_BUCKET: { Ref: 'PayloadBucket' },
        XL_HEARTBEAT_SECONDS: '60',
        XL_DISPATCH_ALLOWANCE_SECONDS: '86400',
      });
      expect(env.POWERTOOLS_SERVICE_NAME).toMatch(/^xl-/);
    }
  });

  it('build the queue URL prefix from pseudo parameters', () => {
    const prefix = resources.StepsFunction!.Properties.Environment.Variables.XL_QUEUE_URL_PREFIX;
    expect(prefix).toEqual({
      'Fn::Join': [
        '',
        ['https://sqs.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/', { Ref: 'AWS::AccountId' }, '/xl-'],
      ],
    });
  });

  it('only the API knows the state machine ARNs (the steps function must not: no cycle)', () => {
    const api = resources.ApiFunction!.Properties.Environment.Variables;
    expect(api.XL_SFN_SEQUENTIAL).toEqual({ Ref: 'SequentialExecution' });
    expect(api.XL_SFN_PARALLEL).toEqual({ Ref: 'ParallelExecution' });
    expect(api.XL_SFN_PIPELINE).toEqual({ Ref: 'PipelineExecution' });
    for (const id of ['StepsFunction', 'PoolManagerFunction', 'HealthMonitorFunction', 'ExecutionEventsFunction']) {
      expect(Object.keys(resources[id]!.Properties.Environment.Variables).filter((k) => k.startsWith('XL_SFN_'))).toEqual([]);
    }
  });

  it('the ECS runtime port finds the cluster, task definitions, subnets and security group', () => {
    for (const id of ['ApiFunction', 'PoolManagerFunction', 'HealthMonitorFunction']) {
      const env = resources[id]!.Properties.Environment.Variables;
      const [cluster] = ofType('AWS::ECS::Cluster').map(([logicalId]) => logicalId);
      const [securityGroup] = ofType('AWS::EC2::SecurityGroup').map(([logicalId]) => logicalId);
      expect(env.XL_CLUSTER, id).toEqual({ Ref: cluster });
      expect(env.XL_SECURITY_GROUPS, id).toEqual({ 'Fn::GetAtt': [securityGroup, 'GroupId'] });
      const taskDefinitions = JSON.stringify(env.XL_TASK_DEFINITIONS);
      for (const [logicalId] of ofType('AWS::ECS::TaskDefinition')) expect(taskDefinitions, `${id} XL_TASK_DEFINITIONS`).toContain(`"Ref":"${logicalId}"`);
      const subnets = JSON.stringify(env.XL_SUBNETS);
      const privateSubnets = ofType('AWS::EC2::Subnet').filter(([, subnet]) => subnet.Properties.MapPublicIpOnLaunch === false);
      expect(privateSubnets.length).toBeGreaterThan(0);
      for (const [logicalId] of privateSubnets) expect(subnets, `${id} XL_SUBNETS`).toContain(`"Ref":"${logicalId}"`);
    }
  });

  it('the steps function may not send to queues (the state machine does)', () => {
    const policies = ofType('AWS::IAM::Policy').filter(([, p]) =>
      p.Properties.Roles.some((r: { Ref: string }) => r.Ref === resources.StepsFunction!.Properties.Role['Fn::GetAtt'][0]),
    );
    const actions = policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement.flatMap((s: { Action: string | string[] }) => s.Action));
    expect(actions.filter((a: string) => a.startsWith('sqs:') || a.startsWith('states:'))).toEqual([]);
  });

  it('the API may start the pattern machines and stop their runs (redrive is a new run: no RedriveExecution), nothing of TaskBatch', () => {
    const role = resources.ApiFunction!.Properties.Role['Fn::GetAtt'][0];
    const statements = ofType('AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: Loose }[])
      .filter((st) => [st.Action].flat().some((a) => a.startsWith('states:')));
    const actions = statements.flatMap((st) => [st.Action].flat()).sort();
    expect(actions).toEqual(['states:StartExecution', 'states:StopExecution']);
    const start = statements.find((st) => [st.Action].flat().includes('states:StartExecution'))!;
    expect([start.Resource].flat().map((r: Loose) => r.Ref).sort()).toEqual(['ParallelExecution', 'PipelineExecution', 'SequentialExecution']);
    // Every run of a pattern machine, <executionId> and <executionId>-r<n> alike: `<machine name>:*`.
    const stop = JSON.stringify(statements.find((st) => [st.Action].flat().includes('states:StopExecution'))!.Resource);
    expect(stop).toMatch(/:execution:/);
    expect(stop).not.toMatch(/TaskBatch/);
    expect((stop.match(/:\*"/g) ?? []).length).toBe(3);
  });
});

describe('state machines', () => {
  it('are the three patterns and TaskBatch, Standard, logging ALL with tracing', () => {
    expect(Object.keys(stateMachineDefinitions(template.toJSON())).sort()).toEqual([...MACHINES].sort());
    for (const id of MACHINES) {
      const props = resources[id]!.Properties;
      expect(props.StateMachineType).toBe('STANDARD');
      expect(props.LoggingConfiguration.Level).toBe('ALL');
      expect(props.LoggingConfiguration.Destinations).toHaveLength(1);
      expect(props.TracingConfiguration).toEqual({ Enabled: true });
    }
  });

  it('use JSONPath only (the local runner ignores JSONata)', () => {
    for (const id of MACHINES) {
      expect(asl[id]!.QueryLanguage ?? 'JSONPath').toBe('JSONPath');
      for (const [, state] of states(asl[id]!)) expect(state.QueryLanguage ?? 'JSONPath').toBe('JSONPath');
    }
  });

  it('every Task state, nested ones included, has a timeout', () => {
    for (const id of MACHINES) {
      const tasks = states(asl[id]!).filter(([, s]) => s.Type === 'Task');
      expect(tasks.length).toBeGreaterThan(0);
      for (const [name, state] of tasks) {
        expect(state.TimeoutSeconds !== undefined || state.TimeoutSecondsPath !== undefined, `${id}.${name}`).toBe(true);
      }
    }
  });

  it('state names are unique within each machine and are the design\'s', () => {
    const names = (id: string) => states(asl[id]!).map(([n]) => n);
    for (const id of MACHINES) expect(new Set(names(id)).size).toBe(names(id).length);
    expect(names('SequentialExecution')).toEqual(['Prepare', 'Batches', 'RunBatch', 'Finalize']);
    expect(names('ParallelExecution')).toEqual(['Prepare', 'Batches', 'RunBatch', 'Finalize']);
    expect(names('PipelineExecution')).toEqual(['Prepare', 'Stages', 'Batches', 'RunBatch', 'Finalize']);
    expect(names('TaskBatch').sort()).toEqual(
      ['Indexes', 'Tasks', 'Gate', 'Skip?', 'Skipped', 'Dispatch', 'Reported', 'Recover', 'Retry?', 'Backoff', 'Settled'].sort(),
    );
  });

  it('Lambda steps invoke the steps function directly, with their step name, and retry Lambda service errors', () => {
    const expected: Record<string, string> = { Prepare: 'prepare', Finalize: 'finalize', Gate: 'gate', Recover: 'recover' };
    for (const id of MACHINES) {
      for (const [name, state] of states(asl[id]!).filter(([n]) => n in expected)) {
        expect(state.Resource).toBe('${StepsFunction.Arn}');
        expect((state.Parameters as Record<string, unknown>).step).toBe(expected[name]);
        expect(state.TimeoutSeconds).toBe(60);
        const retry = (state.Retry as { ErrorEquals: string[] }[])[0]!;
        expect(retry.ErrorEquals).toEqual(
          expect.arrayContaining(['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException']),
        );
      }
    }
  });

  it('RunBatch starts TaskBatch synchronously, named <workflow run>-<from>, as a child execution', () => {
    for (const id of ['SequentialExecution', 'ParallelExecution', 'PipelineExecution']) {
      const [, run] = states(asl[id]!).find(([n]) => n === 'RunBatch')!;
      expect(run.Resource).toBe('arn:aws:states:::states:startExecution.sync:2');
      const params = run.Parameters as Record<string, Loose>;
      expect(params.StateMachineArn).toBe('${TaskBatch}');
      // The run's own name (<executionId>, or <executionId>-r<n> after a resume or redrive): a new run's batches are new executions.
      expect(params['Name.$']).toBe("States.Format('{}-{}', $$.Execution.Name, $.from)");
      expect(params.Input).toMatchObject({
        'executionId.$': '$.executionId',
        'from.$': '$.from',
        'to.$': '$.to',
        'concurrency.$': '$.concurrency',
        'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id',
      });
      expect(run.ResultPath).toBeNull();
    }
  });

  it('batches run one at a time (sequential), $.batchConcurrency at once (parallel), per stage (pipeline)', () => {
    const map = (id: string, name: string) => states(asl[id]!).find(([n]) => n === name)![1];
    expect(map('SequentialExecution', 'Batches')).toMatchObject({ ItemsPath: '$.batches', MaxConcurrency: 1 });
    expect(map('ParallelExecution', 'Batches')).toMatchObject({ ItemsPath: '$.batches', MaxConcurrencyPath: '$.batchConcurrency' });
    expect(map('PipelineExecution', 'Stages')).toMatchObject({ ItemsPath: '$.stages', MaxConcurrency: 1 });
    expect(map('PipelineExecution', 'Batches').ItemsPath).toBe('$.batches');
    expect(map('PipelineExecution', 'Batches').MaxConcurrency).toBeUndefined();
  });

  it('TaskBatch maps task indexes [from, to) with ids only', () => {
    const tb = asl.TaskBatch!;
    expect(tb.StartAt).toBe('Indexes');
    expect((tb.States.Indexes!.Parameters as Record<string, string>)['indexes.$']).toBe(
      'States.ArrayRange($.from, States.MathAdd($.to, -1), 1)',
    );
    expect(tb.States.Tasks).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.indexes',
      MaxConcurrencyPath: '$.concurrency',
      ItemSelector: { 'executionId.$': '$.executionId', 'taskIndex.$': '$$.Map.Item.Value' },
      ResultPath: null,
    });
  });

  it('Dispatch sends ids, the probe flag and the task token and waits, with a catcher per error type', () => {
    const [, dispatch] = states(asl.TaskBatch!).find(([n]) => n === 'Dispatch')!;
    expect(dispatch.Resource).toBe('arn:aws:states:::sqs:sendMessage.waitForTaskToken');
    expect(dispatch.InputPath).toBe('$.gate.dispatch');
    expect(dispatch.Parameters).toEqual({
      'QueueUrl.$': '$.QueueUrl',
      MessageBody: {
        'executionId.$': '$.MessageBody.executionId',
        'taskIndex.$': '$.MessageBody.taskIndex',
        'dispatchSeq.$': '$.MessageBody.dispatchSeq',
        'dispatchTimeoutSeconds.$': '$.MessageBody.dispatchTimeoutSeconds',
        'probe.$': '$.MessageBody.probe',
        'taskToken.$': '$$.Task.Token',
      },
    });
    expect(dispatch.TimeoutSecondsPath).toBe('$.MessageBody.dispatchTimeoutSeconds');
    expect(dispatch.HeartbeatSeconds).toBeUndefined();
    expect(dispatch.ResultPath).toBe('$.outcome');
    const catches = dispatch.Catch as { ErrorEquals: string[]; ResultPath: string; Next: string }[];
    for (const type of ERROR_TYPES) expect(catches.some((c) => c.ErrorEquals.length === 1 && c.ErrorEquals[0] === type), type).toBe(true);
    expect(catches.flatMap((c) => c.ErrorEquals)).toEqual(expect.arrayContaining(['States.Timeout', 'States.HeartbeatTimeout']));
    expect(catches.at(-1)!.ErrorEquals).toEqual(['States.ALL']);
    for (const c of catches) expect(c).toMatchObject({ ResultPath: '$.failure', Next: 'Recover' });
  });

  it('Dispatch names its resource with the partition token, not a literal partition', () => {
    const parts = stateMachineDefinitions(template.toJSON()).TaskBatch!;
    const at = parts.findIndex((p) => typeof p === 'string' && p.startsWith(':states:::sqs:sendMessage.waitForTaskToken'));
    expect(at).toBeGreaterThan(1);
    expect(parts[at - 1]).toEqual({ Ref: 'AWS::Partition' });
    expect(parts[at - 2]).toMatch(/"Resource":"arn:$/);
  });

  it('the execution role may send to every task queue, and to no DLQ', () => {
    const role = resources.TaskBatch!.Properties.RoleArn['Fn::GetAtt'][0];
    const statements = ofType('AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
    const send = statements.filter((s: { Action: string | string[] }) => [s.Action].flat().includes('sqs:SendMessage'));
    const targets = send.flatMap((s: { Resource: unknown }) => [s.Resource].flat()).map((r: Loose) => resources[r['Fn::GetAtt'][0]]!.Properties.QueueName);
    expect(targets.sort()).toEqual(AGENT_TYPES.flatMap((t) => PRIORITIES.map((p) => `xl-${queueKey(t, p)}`)).sort());
  });

  it('only tokens differ between the template and the resolved ASL', () => {
    const parts = stateMachineDefinitions(template.toJSON()).TaskBatch!;
    const text = parts.map((p) => (typeof p === 'string' ? p : '@')).join('');
    const resolved = JSON.stringify(resolveDefinition(template.toJSON(), 'TaskBatch', () => '@'));
    expect(JSON.stringify(JSON.parse(text))).toBe(resolved);
  });

  it('TaskBatch runs under aws-local-stepfunctions: skips, retries and at most `concurrency` dispatches at once', async () => {
    const definition = resolveDefinition(template.toJSON(), 'TaskBatch', (token) => {
      const value = placeholderResolver(token);
      return value.startsWith('${') ? 'arn:aws:lambda:us-east-1:123456789012:function:steps' : value;
    });
    const machine = new StateMachine(definition as never, { validationOptions: { checkPaths: true, checkArn: true } });
    const seen: number[] = [];
    const failedOnce = new Set<number>();
    let active = 0;
    let peak = 0;
    const execution = machine.run(
      { executionId: 'x1', from: 10, to: 16, concurrency: 2 },
      {
        context: { Task: { Token: 'token' } } as never,
        overrides: {
          taskResourceLocalHandlers: {
            Gate: (input: Loose): Loose =>
              input.taskIndex === 11
                ? { action: 'skip' }
                : {
                    action: 'dispatch',
                    dispatch: {
                      QueueUrl: 'https://sqs.local/xl-coder-normal',
                      MessageBody: { executionId: 'x1', taskIndex: input.taskIndex, dispatchSeq: 1, dispatchTimeoutSeconds: 30, probe: false },
                    },
                  },
            Dispatch: async (input: Loose) => {
              active++;
              peak = Math.max(peak, active);
              await new Promise((r) => setTimeout(r, 5));
              active--;
              expect(input.MessageBody).toMatchObject({ taskToken: 'token', probe: false, dispatchSeq: 1 });
              const index = input.MessageBody.taskIndex as number;
              if (index === 12 && !failedOnce.has(index)) {
                failedOnce.add(index);
                throw Object.assign(new Error('flaky'), { name: 'transient' });
              }
              seen.push(index);
              return { status: 'completed', attempts: 1 };
            },
            Recover: (input: Loose) => {
              expect(input.state.failure.Error).toBe('transient');
              return { executionId: 'x1', taskIndex: input.taskIndex, action: 'retry', delaySeconds: 0 };
            },
          },
        },
      },
    );
    const output = (await execution.result) as { indexes: number[] };
    expect(output.indexes).toEqual([10, 11, 12, 13, 14, 15]);
    expect(seen.sort()).toEqual([10, 12, 13, 14, 15]);
    expect(peak).toBeLessThanOrEqual(2);
  });
});

describe('execution events', () => {
  it('route terminal status changes of the four machines to the execution-events function', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: {
          stateMachineArn: MACHINES.map((id) => ({ Ref: id })),
          status: ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'],
        },
      },
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': ['ExecutionEventsFunction', 'Arn'] } })],
    });
  });
});

describe('pool schedules', () => {
  it('run the pool manager and the health monitor every minute', () => {
    for (const fn of ['PoolManagerFunction', 'HealthMonitorFunction']) {
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: 'rate(1 minute)',
        Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [fn, 'Arn'] } })],
      });
    }
  });
});

describe('pool sizing settings', () => {
  it('task slots per type reach the pool manager and the agents\' containers; the idle time the pool manager', () => {
    const { context } = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8'));
    const sized = Template.fromStack(new ExecutionLayerStack(new App({ context }), 'xls', { maxConcurrentTasks: 'tester=2', poolIdleSeconds: 300 }));
    sized.hasResourceProperties('AWS::Lambda::Function', {
      Handler: Match.anyValue(),
      Environment: { Variables: Match.objectLike({ XL_MAX_CONCURRENT_TASKS: 'tester=2', XL_POOL_IDLE_SECONDS: '300' }) },
      Description: Match.stringLikeRegexp('Sizes the agent pool'),
    });
    sized.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ Environment: Match.arrayWith([{ Name: 'XL_MAX_CONCURRENT_TASKS', Value: 'tester=2' }]) })],
    });
  });

  it('a malformed slots spec fails the synth, naming the entry', () => {
    expect(() => new ExecutionLayerStack(new App(), 'xlbad', { maxConcurrentTasks: 'tester=zero' })).toThrow('XL_MAX_CONCURRENT_TASKS: "tester=zero" is not <agentType>=<n> (1..64)');
  });
});

describe('API', () => {
  it('every method uses AWS_IAM and proxies to the API function', () => {
    const methods = ofType('AWS::ApiGateway::Method');
    expect(methods).toHaveLength(2);
    for (const [, m] of methods) {
      expect(m.Properties.AuthorizationType).toBe('AWS_IAM');
      expect(m.Properties.HttpMethod).toBe('ANY');
      expect(m.Properties.Integration.Type).toBe('AWS_PROXY');
      expect(m.Properties.RequestValidatorId).toBeDefined();
    }
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{proxy+}' });
  });

  it('stage v1 logs access, traces and throttles', () => {
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      StageName: 'v1',
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }),
      TracingEnabled: true,
      MethodSettings: [
        Match.objectLike({ LoggingLevel: 'ERROR', ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 }),
      ],
    });
  });
});

describe('agents', () => {
  it('each agent type has an ARM64 Fargate task definition with a hardened container', () => {
    const tds = ofType('AWS::ECS::TaskDefinition');
    expect(tds.map(([, td]) => td.Metadata?.['xl:agentType']).sort()).toEqual([...AGENT_TYPES].sort());
    for (const [, td] of tds) {
      const type = td.Metadata!['xl:agentType'] as string;
      expect(td.Properties.RequiresCompatibilities).toEqual(['FARGATE']);
      expect(td.Properties.RuntimePlatform).toEqual({ CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' });
      expect(td.Properties.Family).toBe(`xl-${type}`);
      const [container] = td.Properties.ContainerDefinitions;
      expect(container.ReadonlyRootFilesystem).toBe(true);
      expect(container.User).toBe('0');
      expect(container.LinuxParameters.Capabilities.Drop).toEqual(expect.arrayContaining(['NET_RAW', 'MKNOD', 'SETPCAP']));
      expect(container.LinuxParameters.Capabilities.Drop).not.toEqual(expect.arrayContaining(['SETUID']));
      expect(container.StopTimeout).toBe(120);
      expect(container.LogConfiguration.LogDriver).toBe('awslogs');
      expect(container.MountPoints.map((m: { ContainerPath: string }) => m.ContainerPath).sort()).toEqual(['/tmp', '/workspace']);
      const env = Object.fromEntries(container.Environment.map((e: { Name: string; Value: unknown }) => [e.Name, e.Value]));
      expect(env).toMatchObject({
        XL_AGENT_TYPE: type,
        XL_TABLE_EXECUTIONS: { Ref: 'ExecutionsTable' },
        XL_TABLE_AGENTS: { Ref: 'AgentsTable' },
        XL_TABLE_BREAKERS: { Ref: 'BreakersTable' },
        XL_BUCKET: { Ref: 'PayloadBucket' },
        XL_HEARTBEAT_SECONDS: '60',
      });
      expect(env.XL_QUEUE_URL_PREFIX).toBeDefined();
    }
    expect(resources.CoderTaskDefinition!.Properties).toMatchObject({ Cpu: '2048', Memory: '4096' });
    expect(resources.ReviewerTaskDefinition!.Properties).toMatchObject({ Cpu: '1024', Memory: '2048' });
  });

  it('the image is staged from agent/Dockerfile for linux/arm64 (built only at deploy)', () => {
    const manifest = JSON.parse(readFileSync(`${app.synth().directory}/${stack.artifactId}.assets.json`, 'utf8'));
    const images = Object.values(manifest.dockerImages) as { source: { directory: string; dockerFile: string; platform: string } }[];
    expect(images).toHaveLength(1);
    expect(images[0]!.source).toMatchObject({ dockerFile: 'agent/Dockerfile', platform: 'linux/arm64' });
    const image = JSON.stringify(resources.CoderTaskDefinition!.Properties.ContainerDefinitions[0].Image);
    expect(image).toContain(stack.agents.image.assetHash);
  });

  it('a task role may consume only its own agent type\'s queues', () => {
    const coderRole = resources.CoderTaskDefinition!.Properties.TaskRoleArn['Fn::GetAtt'][0];
    const statements = ofType('AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === coderRole))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
    const receive = statements.filter((s: { Action: string | string[] }) => [s.Action].flat().includes('sqs:ReceiveMessage'));
    const queues = receive.flatMap((s: { Resource: unknown }) => [s.Resource].flat()).map((r: Loose) => resources[r['Fn::GetAtt'][0]]!.Properties.QueueName);
    expect(queues.sort()).toEqual(['xl-coder-high', 'xl-coder-low', 'xl-coder-normal']);
  });

  it('services run in private subnets with HTTPS-only egress and leave sizing to the pool manager', () => {
    for (const [, svc] of ofType('AWS::ECS::Service')) {
      expect(svc.Properties.LaunchType).toBe('FARGATE');
      expect(svc.Properties.DesiredCount).toBe(0);
      expect(svc.Properties.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp).toBe('DISABLED');
    }
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupEgress: [Match.objectLike({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, CidrIp: '0.0.0.0/0' })],
    });
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
    template.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
  });
});

describe('outputs', () => {
  it('name the API URL, tables, bucket and state machines', () => {
    const outputs = Object.keys(template.toJSON().Outputs);
    expect(outputs).toEqual(
      expect.arrayContaining([
        'ApiUrl',
        'ExecutionsTableName',
        'AgentsTableName',
        'BreakersTableName',
        'PayloadBucketName',
        'SequentialExecutionArn',
        'ParallelExecutionArn',
        'PipelineExecutionArn',
        'TaskBatchArn',
      ]),
    );
  });

  it('stay well below CloudFormation\'s 500-resource limit', () => {
    expect(Object.keys(resources).length).toBeLessThan(400);
  });
});
