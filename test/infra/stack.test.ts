// The synthesized template, read as a specification of what AWS (and the local layer) get.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { StateMachine } from 'aws-local-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/cdk-app.ts';
import { AGENT_TYPES, PRIORITIES, queueKey } from '../../core/agent-types.ts';
import { ERROR_TYPES } from '../../core/errors.ts';
import { METRIC } from '../../core/metrics.ts';
import {
  type AslMachine,
  type AslState,
  forEachState,
  placeholderResolver,
  resolveDefinition,
  stateMachineDefinitions,
} from '../../infra/asl.ts';
import { ErrorBody } from '../../core/api-schemas.ts';
import { apiGroupOf } from '../../core/api-groups.ts';
import { gatewayRoutes } from '../../core/openapi.ts';
import { routes } from '../support/api.ts';
import { BAD_REQUEST_TEMPLATE } from '../../infra/constructs/api.ts';
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
  app = testApp({ context });
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
  it('are one per agent type and priority, each with a DLQ, named <stack>_<type>-<priority>', () => {
    const names = ofType('AWS::SQS::Queue').map(([, q]) => q.Properties.QueueName).sort();
    const expected = AGENT_TYPES.flatMap((t) => PRIORITIES.flatMap((p) => [`xl_${queueKey(t, p)}`, `xl_${queueKey(t, p)}-dlq`]));
    expect(names).toEqual([...expected, 'xl-execution-events-dlq', 'xl-layer-events-dlq'].sort());
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

describe('dead letters', () => {
  /** A role's policy statements, by the logical id of the function it serves. */
  const statementsOfFunction = (fnId: string): Loose[] => {
    const role = resources[fnId]!.Properties.Role['Fn::GetAtt'][0];
    // CDK moves what overflows a role's inline policy into managed policies: both count.
    return [...ofType('AWS::IAM::Policy'), ...ofType('AWS::IAM::ManagedPolicy')]
      .filter(([, p]) => (p.Properties.Roles ?? []).some((r: { Ref: string }) => r.Ref === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
  };
  const granting = (statements: Loose[], action: string) => statements.filter((s) => [s.Action].flat().includes(action));
  const resourceText = (s: Loose) => JSON.stringify(s.Resource);
  const DLQ_PATTERN = /xl_\*-dlq/;

  it('each DLQ has an alarm that fires while it holds a visible message, and no task queue has one', () => {
    // The task queues' DLQs (the execution-events DLQ's alarm is under "observability", the events DLQ's in test/infra/events.test.ts).
    const alarms = ofType('AWS::CloudWatch::Alarm')
      .filter(([id, a]) => a.Properties.Namespace === 'AWS/SQS' && id !== 'ExecutionEventsDlqAlarm' && id !== 'EventsDlqAlarm')
      .map(([, a]) => a.Properties);
    const watched = alarms.map((a) => resources[a.Dimensions[0].Value['Fn::GetAtt'][0]]!.Properties.QueueName).sort();
    expect(watched).toEqual(AGENT_TYPES.flatMap((t) => PRIORITIES.map((p) => `xl_${queueKey(t, p)}-dlq`)).sort());
    for (const a of alarms) {
      expect(a).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Statistic: 'Maximum',
        Period: 60,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
      });
      expect(a.Dimensions[0].Name).toBe('QueueName');
    }
  });

  /** A SendMessage on the stack's queues (`<stack>_*`: the task queues a direct queue's messages go back to). */
  const isTaskQueueSend = (s: Loose): boolean => [s.Action].flat().includes('sqs:SendMessage') && /:xl_\*"\]\]\}$/.test(resourceText(s));

  it('the pool manager may read the DLQs without deleting, mark tasks and fail task tokens', () => {
    // Its sweep of dead agents' direct queues (affinity) is the one other SQS grant: below.
    const statements = statementsOfFunction('PoolManagerFunction').filter((s: Loose) => !resourceText(s).includes('-direct-') && !isTaskQueueSend(s));
    const receive = granting(statements, 'sqs:ReceiveMessage');
    expect(receive).toHaveLength(1);
    expect(resourceText(receive[0])).toMatch(DLQ_PATTERN);
    expect([receive[0].Action].flat().sort()).toEqual(['sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage']);
    expect(granting(statements, 'sqs:DeleteMessage')).toEqual([]);
    expect(granting(statements, 'sqs:SendMessage')).toEqual([]);
    // On TaskBatch, whose Dispatch issues the tokens (see test/infra/security.test.ts).
    expect(granting(statements, 'states:SendTaskFailure')).toEqual([expect.objectContaining({ Resource: { Ref: 'TaskBatch' }, Effect: 'Allow' })]);
    expect(granting(statements, 'dynamodb:UpdateItem').map(resourceText).join()).toContain('ExecutionsTable');
  });

  it('the pool manager may drain and delete agents\' direct queues, and send only to the stack\'s queues (affinity)', () => {
    const statements = statementsOfFunction('PoolManagerFunction');
    const direct = statements.filter((s: Loose) => resourceText(s).includes('-direct-'));
    expect(direct).toHaveLength(1);
    expect([direct[0].Action].flat().sort()).toEqual(['sqs:DeleteMessage', 'sqs:DeleteQueue', 'sqs:ReceiveMessage']);
    expect(resourceText(direct[0])).toMatch(/:xl_\*-direct-\*"\]\]\}$/);
    const send = granting(statements, 'sqs:SendMessage');
    expect(send).toHaveLength(1);
    expect(isTaskQueueSend(send[0])).toBe(true);
  });

  it("the API's executions function may read the bucket's artifacts/ (its presigned artifact GETs carry that right) and delete nothing there", () => {
    const statements = statementsOfFunction('ApiExecutionsFunction');
    const reads = granting(statements, 's3:GetObject');
    expect(reads.length).toBeGreaterThan(0);
    // bucket/* (the API also reads plans and outputs): artifacts/ included.
    expect(reads.some((s) => /PayloadBucket.*"\/\*"/.test(resourceText(s)))).toBe(true);
    expect(statements.flatMap((s) => [s.Action].flat()).filter((a: string) => /^s3:Delete/.test(a))).toEqual([]);
  });

  it('the API\'s operations function may start a message move task and delete on the DLQs only, and send only to the stack\'s queues', () => {
    const statements = statementsOfFunction('ApiOperationsFunction');
    const move = granting(statements, 'sqs:StartMessageMoveTask');
    expect(move).toHaveLength(1);
    expect(resourceText(move[0])).toMatch(DLQ_PATTERN);
    expect([move[0].Action].flat()).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']));
    for (const s of granting(statements, 'sqs:DeleteMessage')) expect(resourceText(s)).toMatch(DLQ_PATTERN);
    const send = granting(statements, 'sqs:SendMessage');
    expect(send).toHaveLength(1);
    // The stack's queues only (<stack>_*): the task queues the messages go back to, and their DLQs.
    expect(resourceText(send[0])).toMatch(/:xl_\*"\]\]\}$/);
  });

  it('each of the API\'s functions holds only what its routes need', () => {
    const actions = (fnId: string) => new Set(statementsOfFunction(fnId).flatMap((st: Loose) => [st.Action].flat() as string[]));
    // Every function writes its own log group (logs:*), puts events and traces (events:, xray:).
    const services = (fnId: string) => [...new Set([...actions(fnId)].map((a) => a.split(':')[0]))].filter((s) => !['logs', 'events', 'xray'].includes(s!)).sort();
    // Step Functions and the bucket: the execution routes only.
    expect(services('ApiExecutionsFunction')).toEqual(['dynamodb', 's3', 'states']);
    // Reads of the executions table, and FilterLogEvents over the layer's groups: the log route only.
    expect(services('ApiLogsFunction')).toEqual(['dynamodb']);
    expect([...actions('ApiLogsFunction')].filter((a) => a.startsWith('dynamodb:')).every((a) => !/Put|Update|Delete|Write/.test(a))).toBe(true);
    // Starting and stopping agents (ECS, passing the task roles): the pool routes only.
    expect(services('ApiPoolFunction')).toEqual(['dynamodb', 'ecs', 'iam', 'sqs']);
    // Dead letters: the operations routes only.
    expect(services('ApiOperationsFunction')).toEqual(['dynamodb', 'sqs']);
    const filterLogs = Object.keys(resources).filter((id) => id.startsWith('Api') && resources[id]!.Type === 'AWS::Lambda::Function' && actions(id).has('logs:FilterLogEvents'));
    expect(filterLogs).toEqual(['ApiLogsFunction']);
    for (const id of ['ApiExecutionsFunction', 'ApiLogsFunction', 'ApiPoolFunction']) expect(actions(id).has('sqs:StartMessageMoveTask'), id).toBe(false);
  });
});

describe('functions', () => {
  const ENTRIES: Record<string, string> = {
    ApiExecutionsFunction: 'functions/api-executions.ts',
    ApiLogsFunction: 'functions/api-logs.ts',
    ApiPoolFunction: 'functions/api-pool.ts',
    ApiOperationsFunction: 'functions/api-operations.ts',
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

  it('trace with X-Ray (active), as API Gateway and Step Functions do', () => {
    for (const id of Object.keys(ENTRIES)) expect(resources[id]!.Properties.TracingConfig, id).toEqual({ Mode: 'Active' });
    // Every function of the layer; the only other one is CDK's deploy-time handler of the VPC's
    // restrictDefaultSecurityGroup custom resource.
    const others = ofType('AWS::Lambda::Function').filter(([id]) => !(id in ENTRIES));
    expect(others.map(([id]) => id)).toEqual([expect.stringMatching(/^CustomVpcRestrictDefaultSG/)]);
  });

  it('carry the stack\'s metric namespace', () => {
    for (const id of Object.keys(ENTRIES)) {
      expect(resources[id]!.Properties.Environment.Variables.POWERTOOLS_METRICS_NAMESPACE, id).toBe('XL/xl');
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
        ['https://sqs.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/', { Ref: 'AWS::AccountId' }, '/xl_'],
      ],
    });
  });

  it('only the API\'s execution routes and the execution-events reconcile know the state machine ARNs (the steps function must not: no cycle)', () => {
    for (const id of ['ApiExecutionsFunction', 'ExecutionEventsFunction']) {
      const env = resources[id]!.Properties.Environment.Variables;
      expect(env.XL_SFN_SEQUENTIAL).toEqual({ Ref: 'SequentialExecution' });
      expect(env.XL_SFN_PARALLEL).toEqual({ Ref: 'ParallelExecution' });
      expect(env.XL_SFN_PIPELINE).toEqual({ Ref: 'PipelineExecution' });
    }
    for (const id of ['StepsFunction', 'PoolManagerFunction', 'HealthMonitorFunction', 'ApiLogsFunction', 'ApiPoolFunction', 'ApiOperationsFunction']) {
      expect(Object.keys(resources[id]!.Properties.Environment.Variables).filter((k) => k.startsWith('XL_SFN_'))).toEqual([]);
    }
  });

  it('the ECS runtime port finds the cluster, task definitions, subnets and security group', () => {
    for (const id of ['ApiPoolFunction', 'PoolManagerFunction', 'HealthMonitorFunction']) {
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

  it('the API\'s log function reads the functions\' and the agents\' log groups for xl logs (FilterLogEvents on those groups only)', () => {
    const groups = ofType('AWS::Logs::LogGroup')
      .map(([id]) => id)
      .filter((id) => /Function|Logs/.test(id) && !/FlowLogs|StateMachine|Vended/.test(id));
    const env = resources.ApiLogsFunction!.Properties.Environment.Variables.XL_LOG_GROUPS;
    const named = env['Fn::Join'][1].filter((x: unknown) => typeof x === 'object').map((x: { Ref: string }) => x.Ref);
    expect(named).toHaveLength(Object.keys(ENTRIES).length + 1); // every function and the agents
    for (const id of named) expect(resources[id]!.Type).toBe('AWS::Logs::LogGroup');
    const role = resources.ApiLogsFunction!.Properties.Role['Fn::GetAtt'][0];
    const statements = [...ofType('AWS::IAM::Policy'), ...ofType('AWS::IAM::ManagedPolicy')]
      .filter(([, p]) => (p.Properties.Roles ?? []).some((r: { Ref: string }) => r.Ref === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement)
      .filter((st: { Action: string | string[] }) => [st.Action].flat().includes('logs:FilterLogEvents'));
    expect(statements).toHaveLength(1);
    const granted = [statements[0].Resource].flat().map((r: { 'Fn::GetAtt': [string, string] }) => r['Fn::GetAtt'][0]);
    expect(granted.sort()).toEqual([...named].sort());
    expect(groups.length).toBeGreaterThanOrEqual(Object.keys(ENTRIES).length + 1);
  });

  it('the steps function may not send to queues (the state machine does)', () => {
    const policies = ofType('AWS::IAM::Policy').filter(([, p]) =>
      p.Properties.Roles.some((r: { Ref: string }) => r.Ref === resources.StepsFunction!.Properties.Role['Fn::GetAtt'][0]),
    );
    const actions = policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement.flatMap((s: { Action: string | string[] }) => s.Action));
    expect(actions.filter((a: string) => a.startsWith('sqs:') || a.startsWith('states:'))).toEqual([]);
  });

  it('the API\'s execution function may start the pattern machines and stop their runs (redrive is a new run: no RedriveExecution), nothing of TaskBatch', () => {
    const role = resources.ApiExecutionsFunction!.Properties.Role['Fn::GetAtt'][0];
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

  it('log to groups under /aws/vendedlogs/states/ (the account\'s log resource policy has a size cap otherwise)', () => {
    for (const id of MACHINES) {
      const destination = resources[id]!.Properties.LoggingConfiguration.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn;
      const group = resources[destination['Fn::GetAtt'][0]]!;
      expect(group.Properties.LogGroupName).toBe(`/aws/vendedlogs/states/xl-${id}`);
      expect(group.Properties.RetentionInDays).toBeGreaterThan(0);
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
    expect(names('SequentialExecution')).toEqual(['Prepare', 'Batches', 'RunBatch', 'Finalize', 'FinalizeFailed', 'PrepareFailed']);
    expect(names('ParallelExecution')).toEqual(['Prepare', 'Batches', 'RunBatch', 'Finalize', 'FinalizeFailed', 'PrepareFailed']);
    expect(names('PipelineExecution')).toEqual(['Prepare', 'Stages', 'Batches', 'RunBatch', 'Finalize', 'FinalizeFailed', 'PrepareFailed']);
    expect(names('TaskBatch').sort()).toEqual(
      [
        'Indexes', 'Tasks', 'Gate', 'Skip?', 'Skipped', 'Dispatch', 'Reported', 'Recover', 'Retry?', 'Backoff', 'Settled',
        'GateFailed', 'RecoverAgain?', 'CountRecoverFailure', 'RecoverLater', 'RecoverFailed',
      ].sort(),
    );
  });

  it('Lambda steps invoke the steps function directly, with their step name', () => {
    const expected: Record<string, string> = { Prepare: 'prepare', Finalize: 'finalize', Gate: 'gate', Recover: 'recover' };
    for (const id of MACHINES) {
      for (const [name, state] of states(asl[id]!).filter(([n]) => n in expected)) {
        expect(state.Resource).toBe('${StepsFunction.Arn}');
        expect((state.Parameters as Record<string, unknown>).step).toBe(expected[name]);
        expect(state.TimeoutSeconds).toBe(60);
      }
    }
  });

  it('every step retries the Lambda service\'s errors, Lambda.Unknown, its own timeout and `transient`, with jittered backoff, and never `permanent`', () => {
    const steps = MACHINES.flatMap((id) => states(asl[id]!).filter(([n]) => ['Prepare', 'Finalize', 'Gate', 'Recover'].includes(n)));
    expect(steps).toHaveLength(3 * 2 + 2);
    for (const [name, state] of steps) {
      const retry = state.Retry as { ErrorEquals: string[]; IntervalSeconds: number; BackoffRate: number; MaxAttempts: number; MaxDelaySeconds: number; JitterStrategy: string }[];
      expect(retry, name).toHaveLength(1);
      expect(retry[0]!.ErrorEquals).toEqual(
        expect.arrayContaining([
          'transient',
          'Lambda.ServiceException',
          'Lambda.AWSLambdaException',
          'Lambda.SdkClientException',
          'Lambda.TooManyRequestsException',
          'Lambda.ClientExecutionTimeoutException',
          'Lambda.Unknown',
          'States.Timeout',
        ]),
      );
      expect(retry[0]!.ErrorEquals).not.toContain('permanent');
      expect(retry[0]!.ErrorEquals).not.toContain('States.ALL');
      expect(retry[0]!.ErrorEquals).not.toContain('States.TaskFailed');
      expect(retry[0]).toMatchObject({ IntervalSeconds: 1, BackoffRate: 2, JitterStrategy: 'FULL' });
      expect(retry[0]!.MaxAttempts).toBeGreaterThanOrEqual(8);
      expect(retry[0]!.MaxDelaySeconds).toBeLessThanOrEqual(60);
    }
  });

  it('every step catches what its retries leave: Prepare and Finalize end the execution FAILED naming the step', () => {
    for (const id of ['SequentialExecution', 'ParallelExecution', 'PipelineExecution']) {
      const machine = asl[id]!;
      for (const step of ['Prepare', 'Finalize']) {
        const [, state] = states(machine).find(([n]) => n === step)!;
        expect(state.Catch, `${id}.${step}`).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.stepFailure', Next: `${step}Failed` }]);
        const [, fail] = states(machine).find(([n]) => n === `${step}Failed`)!;
        expect(fail).toEqual({ Type: 'Fail', Error: `Layer.${step}Failed`, CausePath: '$.stepFailure.Cause' });
      }
    }
  });

  it('Gate\'s failures go to Recover as a transient failure of the layer, with only the ids kept', () => {
    const tb = asl.TaskBatch!;
    const [, gate] = states(tb).find(([n]) => n === 'Gate')!;
    expect(gate.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.stepFailure', Next: 'GateFailed' }]);
    const [, gateFailed] = states(tb).find(([n]) => n === 'GateFailed')!;
    expect(gateFailed).toMatchObject({
      Type: 'Pass',
      Next: 'Recover',
      Parameters: {
        'executionId.$': '$.executionId',
        'taskIndex.$': '$.taskIndex',
        'stepFailures.$': '$.stepFailures',
        failure: { Error: 'transient', source: 'layer', 'Cause.$': expect.stringContaining('$.stepFailure.Cause') },
      },
    });
  });

  it('Recover\'s failures wait and Recover again, a bounded number of times, then fail the batch', () => {
    const tb = asl.TaskBatch!;
    const get = (name: string) => states(tb).find(([n]) => n === name)![1];
    expect(get('Recover').Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.stepFailure', Next: 'RecoverAgain?' }]);
    expect(get('RecoverAgain?')).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.stepFailures.count', NumericLessThan: 5, Next: 'CountRecoverFailure' }],
      Default: 'RecoverFailed',
    });
    expect(get('CountRecoverFailure')).toMatchObject({ Type: 'Pass', ResultPath: '$.stepFailures', Next: 'RecoverLater' });
    expect(get('RecoverLater')).toMatchObject({ Type: 'Wait', Seconds: 30, Next: 'Recover' });
    expect(get('RecoverFailed')).toEqual({ Type: 'Fail', Error: 'Layer.RecoverFailed', CausePath: '$.stepFailure.Cause' });
    expect((tb.States.Tasks as Loose).ItemSelector.stepFailures).toEqual({ count: 0 });
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

  it('Dispatch sends ids, the probe flag, the breakers to report to and the task token and waits, with a catcher per error type', () => {
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
        'breakers.$': '$.MessageBody.breakers',
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
    const resourcesSent = send.flatMap((s: { Resource: unknown }) => [s.Resource].flat()) as Loose[];
    const targets = resourcesSent.filter((r) => r['Fn::GetAtt']).map((r: Loose) => resources[r['Fn::GetAtt'][0]]!.Properties.QueueName);
    expect(targets.sort()).toEqual(AGENT_TYPES.flatMap((t) => PRIORITIES.map((p) => `xl_${queueKey(t, p)}`)).sort());
    // And to agents' direct queues (affinity: Gate may name one), by pattern.
    expect(resourcesSent.filter((r) => !r['Fn::GetAtt']).map((r) => JSON.stringify(r))).toEqual([expect.stringMatching(/:xl_\*-direct-\*"\]\]\}$/)]);
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
                      QueueUrl: 'https://sqs.local/xl_coder-normal',
                      MessageBody: { executionId: 'x1', taskIndex: input.taskIndex, dispatchSeq: 1, dispatchTimeoutSeconds: 30, probe: false, breakers: ['agent:coder'] },
                    },
                  },
            Dispatch: async (input: Loose) => {
              active++;
              peak = Math.max(peak, active);
              await new Promise((r) => setTimeout(r, 5));
              active--;
              expect(input.MessageBody).toMatchObject({ taskToken: 'token', probe: false, breakers: ['agent:coder'], dispatchSeq: 1 });
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

  it('the rule\'s target retries for 24 hours, then puts the event on the execution-events DLQ, which only that rule may send to', () => {
    const [, rule] = ofType('AWS::Events::Rule').find(([, r]) => r.Properties.EventPattern?.source?.[0] === 'aws.states')!;
    const [target] = rule.Properties.Targets;
    expect(target.DeadLetterConfig).toEqual({ Arn: { 'Fn::GetAtt': ['ExecutionEventsDlq', 'Arn'] } });
    expect(target.RetryPolicy).toEqual({ MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86_400 });
    const ruleId = ofType('AWS::Events::Rule').find(([, r]) => r === rule)![0];
    const policy = ofType('AWS::SQS::QueuePolicy').map(([, p]) => p.Properties).find((p) => p.Queues.some((q: Loose) => q.Ref === 'ExecutionEventsDlq'))!;
    expect(policy.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: { 'Fn::GetAtt': ['ExecutionEventsDlq', 'Arn'] },
        Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [ruleId, 'Arn'] } } },
      }),
    );
    expect(resources.ExecutionEventsDlq!.Properties).toMatchObject({ QueueName: 'xl-execution-events-dlq', SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86400 });
  });

  it('the events function\'s failed asynchronous invocations go to the same DLQ after Lambda\'s 2 retries', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: 'ExecutionEventsFunction' },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['ExecutionEventsDlq', 'Arn'] } } },
    });
  });

  it('a schedule runs the reconcile, which reads the DLQ and describes pattern executions, and nothing more', () => {
    const schedule = ofType('AWS::Events::Rule').find(([, r]) => r.Properties.ScheduleExpression && r.Properties.Targets[0].Arn['Fn::GetAtt']?.[0] === 'ExecutionEventsFunction')!;
    expect(schedule, 'a reconcile schedule').toBeDefined();
    expect(schedule[1].Properties.ScheduleExpression).toBe('rate(5 minutes)');
    expect(JSON.parse(schedule[1].Properties.Targets[0].Input)).toEqual({ reconcile: true });
    const env = resources.ExecutionEventsFunction!.Properties.Environment.Variables;
    expect(env.XL_EXECUTION_EVENTS_DLQ_URL).toEqual({ Ref: 'ExecutionEventsDlq' });

    const role = resources.ExecutionEventsFunction!.Properties.Role['Fn::GetAtt'][0];
    const statements = ofType('AWS::IAM::Policy')
      .filter(([, p]) => p.Properties.Roles.some((r: { Ref: string }) => r.Ref === role))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: Loose }[]);
    const on = (action: string) => statements.filter((st) => [st.Action].flat().includes(action)).flatMap((st) => [st.Resource].flat());
    expect(on('sqs:ReceiveMessage')).toEqual([{ 'Fn::GetAtt': ['ExecutionEventsDlq', 'Arn'] }]);
    expect(on('sqs:DeleteMessage')).toEqual([{ 'Fn::GetAtt': ['ExecutionEventsDlq', 'Arn'] }]);
    expect(on('sqs:SendMessage')).toEqual([{ 'Fn::GetAtt': ['ExecutionEventsDlq', 'Arn'] }]);
    const described = on('states:DescribeExecution').map((r) => JSON.stringify(r));
    expect(described).toHaveLength(3);
    for (const machine of ['SequentialExecution', 'ParallelExecution', 'PipelineExecution']) {
      expect(described.some((r) => r.includes(`"${machine}","Name"`) && r.includes(':*')), machine).toBe(true);
    }
    expect(statements.flatMap((st) => [st.Action].flat()).filter((a) => a.startsWith('states:'))).toEqual(['states:DescribeExecution']);
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
    const sized = Template.fromStack(new ExecutionLayerStack(testApp({ context }), 'xls', { maxConcurrentTasks: 'tester=2', poolIdleSeconds: 300 }));
    sized.hasResourceProperties('AWS::Lambda::Function', {
      Handler: Match.anyValue(),
      Environment: { Variables: Match.objectLike({ XL_MAX_CONCURRENT_TASKS: 'tester=2', XL_POOL_IDLE_SECONDS: '300' }) },
      Description: Match.stringLikeRegexp('Sizes the agent pool'),
    });
    sized.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ Environment: Match.arrayWith([{ Name: 'XL_MAX_CONCURRENT_TASKS', Value: 'tester=2' }]) })],
    });
  });

  it('the breaker policy reaches every function and every agent type\'s container as XL_BREAKER_POLICY', () => {
    const { context } = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8'));
    const breakerPolicy = { '*': { failureThreshold: 3 }, 'dependency:git:*': { cooldownSeconds: 60, maxCooldownSeconds: 600 } };
    const json = Template.fromStack(new ExecutionLayerStack(testApp({ context }), 'xlb', { breakerPolicy })).toJSON();
    const ours = Object.values(json.Resources as Record<string, Resource>).filter((r) => r.Type === 'AWS::Lambda::Function' && r.Metadata?.['xl:entry']);
    expect(ours.length).toBeGreaterThanOrEqual(5);
    for (const fn of ours) expect(JSON.parse(fn.Properties.Environment.Variables.XL_BREAKER_POLICY), String(fn.Metadata?.['xl:entry'])).toEqual(breakerPolicy);
    const containers = Object.values(json.Resources as Record<string, Resource>).filter((r) => r.Type === 'AWS::ECS::TaskDefinition').map((r) => r.Properties.ContainerDefinitions[0]);
    expect(containers).toHaveLength(AGENT_TYPES.length);
    for (const c of containers) {
      const env = Object.fromEntries(c.Environment.map((e: { Name: string; Value: unknown }) => [e.Name, e.Value]));
      expect(JSON.parse(env.XL_BREAKER_POLICY as string), c.Name).toEqual(breakerPolicy);
    }
    // Unset, it is not set either: the local layer's own XL_BREAKER_POLICY then applies.
    for (const [, fn] of ofType('AWS::Lambda::Function')) expect(fn.Properties.Environment?.Variables?.XL_BREAKER_POLICY).toBeUndefined();
  });

  it('a malformed breaker policy fails the synth, naming the field', () => {
    expect(() => new ExecutionLayerStack(testApp(), 'xlbadb', { breakerPolicy: { 'agent:coder': { failureThreshold: 0 } } })).toThrow('XL_BREAKER_POLICY["agent:coder"].failureThreshold: must be at least 1');
  });

  it('a malformed slots spec fails the synth, naming the entry', () => {
    expect(() => new ExecutionLayerStack(testApp(), 'xlbad', { maxConcurrentTasks: 'tester=zero' })).toThrow('XL_MAX_CONCURRENT_TASKS: "tester=zero" is not <agentType>=<n> (1..64)');
  });
});

describe('API', () => {
  /** Each method's full path, from its resource's parents' PathParts. */
  const pathOf = (resourceRef: Loose): string => {
    if (resourceRef['Fn::GetAtt']) return '';
    const resource = resources[resourceRef.Ref]!;
    return `${pathOf(resource.Properties.ParentId)}/${resource.Properties.PathPart}`;
  };
  const methods = () =>
    ofType('AWS::ApiGateway::Method').map(([, m]) => ({ key: `${m.Properties.HttpMethod} ${pathOf(m.Properties.ResourceId)}`, props: m.Properties }));
  const method = (key: string) => methods().find((m) => m.key === key)!.props;
  const validator = (props: Loose) => resources[props.RequestValidatorId.Ref]!.Properties;

  it('declares every route the handler serves as its own method on its own resource, and nothing else', () => {
    expect(methods().map((m) => m.key).sort()).toEqual(routes.map((r) => `${r.method} ${r.template}`).sort());
    expect(ofType('AWS::ApiGateway::Resource').map(([, r]) => r.Properties.PathPart)).not.toContain('{proxy+}');
    expect(methods().map((m) => m.props.HttpMethod)).not.toContain('ANY');
  });

  it('authorizes every method with IAM and proxies it to the function of its route group', () => {
    const functionOf = (path: string) => ({ executions: 'ApiExecutionsFunction', logs: 'ApiLogsFunction', pool: 'ApiPoolFunction', operations: 'ApiOperationsFunction' })[apiGroupOf(path)];
    for (const { key, props } of methods()) {
      expect(props.AuthorizationType, key).toBe('AWS_IAM');
      expect(props.Integration.Type, key).toBe('AWS_PROXY');
      const target = functionOf(key.split(' ')[1]!);
      expect(JSON.stringify(props.Integration.Uri), key).toContain(`"${target}"`);
    }
    expect(functionOf('/executions/{executionId}/logs')).toBe('ApiLogsFunction');
    expect(functionOf('/executions/{executionId}/redrive')).toBe('ApiExecutionsFunction');
    expect(functionOf('/pool/{agentType}')).toBe('ApiPoolFunction');
    expect(functionOf('/dead-letters/redrive')).toBe('ApiOperationsFunction');
    expect(ofType('AWS::Lambda::Function').filter(([id]) => id.startsWith('Api')).map(([id]) => id).sort()).toEqual(['ApiExecutionsFunction', 'ApiLogsFunction', 'ApiOperationsFunction', 'ApiPoolFunction']);
  });

  it('checks the body of each method that takes one against a model made from its zod schema', () => {
    const bodies = gatewayRoutes().filter((r) => r.body);
    expect(bodies.map((r) => `${r.method} ${r.path}`).sort()).toEqual(['POST /agents', 'POST /dead-letters/redrive', 'POST /executions', 'PUT /pool/{agentType}']);
    for (const route of bodies) {
      const props = method(`${route.method} ${route.path}`);
      const model = resources[props.RequestModels['application/json'].Ref]!.Properties;
      expect(model.Name).toBe(route.body!.model);
      expect(model.ContentType).toBe('application/json');
      expect(model.Schema).toEqual(route.body!.schema);
      expect(model.Schema.$schema).toBe('http://json-schema.org/draft-04/schema#');
      expect(validator(props)).toMatchObject({ ValidateRequestBody: true, ValidateRequestParameters: true });
    }
    expect(JSON.stringify(resources[method('POST /executions').RequestModels['application/json'].Ref]!.Properties.Schema)).toContain('"agentType"');
  });

  it('requires each path parameter and validates the parameters of every method', () => {
    for (const { key, props } of methods()) {
      const required = [...key.matchAll(/\{(\w+)\}/g)].map(([, name]) => `method.request.path.${name}`);
      for (const p of required) expect(props.RequestParameters?.[p], `${key} ${p}`).toBe(true);
      expect(validator(props).ValidateRequestParameters, key).toBe(true);
    }
    expect(method('GET /executions').RequestParameters).toEqual({
      'method.request.querystring.limit': false,
      'method.request.querystring.nextToken': false,
      'method.request.querystring.status': false,
      'method.request.querystring.name': false,
    });
    expect(method('GET /executions/{executionId}/tasks/{taskId}/artifacts/{name}').RequestParameters).toEqual({
      'method.request.path.executionId': true,
      'method.request.path.taskId': true,
      'method.request.path.name': true,
    });
    expect(method('DELETE /agents/{agentId}').RequestParameters).toEqual({ 'method.request.path.agentId': true, 'method.request.querystring.graceful': false });
  });

  it("answers a refused body or parameter with the contract's error body", () => {
    for (const type of ['BAD_REQUEST_BODY', 'BAD_REQUEST_PARAMETERS']) {
      template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
        ResponseType: type,
        StatusCode: '400',
        ResponseTemplates: { 'application/json': '{"error":{"type":"validation","source":"api","message":$context.error.messageString}}' },
      });
    }
    // With a message filled in, the template is the contract's error body.
    // messageString is substituted as a JSON string literal, quotes escaped (as API Gateway does).
    const filled = JSON.parse(BAD_REQUEST_TEMPLATE.replace('$context.error.messageString', JSON.stringify('Invalid request body: missing required properties (["pattern"])')));
    expect(ErrorBody.safeParse(filled).success).toBe(true);
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
    const named = receive.flatMap((s: { Resource: unknown }) => [s.Resource].flat()) as Loose[];
    const queues = named.filter((r) => r['Fn::GetAtt']).map((r: Loose) => resources[r['Fn::GetAtt'][0]]!.Properties.QueueName);
    expect(queues.sort()).toEqual(['xl_coder-high', 'xl_coder-low', 'xl_coder-normal']);
    // And the coders' direct queues (affinity), each agent's made at its start.
    expect(named.filter((r) => !r['Fn::GetAtt']).map((r) => JSON.stringify(r))).toEqual([expect.stringMatching(/:xl_coder-direct-\*"\]\]\}$/)]);
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

describe('observability', () => {
  const alarmsByName = () =>
    Object.fromEntries(ofType('AWS::CloudWatch::Alarm').map(([, a]) => [a.Properties.AlarmName as string, a.Properties as Loose]));
  // The alarm topic (the notification topic is test/infra/events.test.ts's).
  const topicId = () => ofType('AWS::SNS::Topic').find(([, t]) => t.Properties.TopicName === 'xl-alarms')![0];
  /** The dashboard's body with its tokens (the region) blanked out. */
  const dashboardBody = () => {
    const [[, dashboard]] = ofType('AWS::CloudWatch::Dashboard') as [[string, Resource]];
    const parts: unknown[] = dashboard.Properties.DashboardBody['Fn::Join'][1];
    return JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'TOKEN')).join('')) as {
      widgets: { properties: { title: string; metrics?: unknown[] } }[];
    };
  };

  it('a dashboard named <stack>-execution-layer graphs each of the layer\'s metrics', () => {
    const [[, dashboard]] = ofType('AWS::CloudWatch::Dashboard') as [[string, Resource]];
    expect(dashboard.Properties.DashboardName).toBe('xl-execution-layer');
    const widgets = dashboardBody().widgets;
    const titles = widgets.map((w) => w.properties.title);
    expect(titles).toEqual(
      expect.arrayContaining([
        'Tasks',
        'Failed tasks by error type',
        'Queue wait and task duration (ms)',
        'Task cost (USD)',
        'Agents by status',
        'Breakers open',
        'Executions',
        'Execution duration (ms, max)',
        'Lambda errors and throttles',
        'API',
        'Alarms',
      ]),
    );
    const text = JSON.stringify(widgets);
    for (const name of Object.values(METRIC)) expect(text, name).toContain(name);
    // In the stack's own namespace.
    expect(text).toContain('{XL/xl,');
    expect(text).toContain('"XL/xl"');
  });

  it('alarms on DLQ depth, failed and long executions, Lambda errors and throttles, API 5xx, open breakers and unhealthy agents', () => {
    const alarms = alarmsByName();
    for (const t of AGENT_TYPES) for (const p of PRIORITIES) expect(alarms[`xl-${queueKey(t, p)}-dlq-depth`], `${t} ${p}`).toBeDefined();
    expect(alarms['xl-execution-events-dlq-depth']).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 0, EvaluationPeriods: 3 });
    for (const [name, id] of [['sequential', 'SequentialExecution'], ['parallel', 'ParallelExecution'], ['pipeline', 'PipelineExecution']]) {
      expect(alarms[`xl-${name}-executions-failed`]).toMatchObject({
        Namespace: 'AWS/States',
        MetricName: 'ExecutionsFailed',
        Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: id } }],
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
      expect(alarms[`xl-${name}-execution-duration`]).toMatchObject({
        MetricName: 'ExecutionTime',
        Statistic: 'Maximum',
        Threshold: 24 * 3600 * 1000,
        ComparisonOperator: 'GreaterThanThreshold',
      });
    }
    for (const fn of ['api-executions', 'api-logs', 'api-pool', 'api-operations', 'steps', 'execution-events', 'pool-manager', 'health-monitor']) {
      expect(alarms[`xl-${fn}-errors`], fn).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Errors', Statistic: 'Sum', Period: 300, Threshold: 5 });
      expect(alarms[`xl-${fn}-throttles`], fn).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Throttles', Statistic: 'Sum', Threshold: 1 });
    }
    expect(alarms['xl-api-5xx']).toMatchObject({ Namespace: 'AWS/ApiGateway', MetricName: '5XXError', Statistic: 'Sum', Threshold: 5 });
    expect(alarms['xl-breakers-open']).toMatchObject({
      Namespace: 'XL/xl',
      MetricName: METRIC.breakersOpen,
      Dimensions: [{ Name: 'service', Value: 'xl-health-monitor' }],
      Threshold: 1,
      EvaluationPeriods: 5,
      Period: 60,
      TreatMissingData: 'notBreaching',
    });
    expect(alarms['xl-unhealthy-agents']).toMatchObject({
      Namespace: 'XL/xl',
      MetricName: METRIC.agents,
      Dimensions: expect.arrayContaining([{ Name: 'status', Value: 'unhealthy' }, { Name: 'service', Value: 'xl-health-monitor' }]),
      Threshold: 1,
      EvaluationPeriods: 5,
    });
  });

  it('every alarm notifies the alarm topic', () => {
    const topic = topicId();
    for (const [name, a] of Object.entries(alarmsByName())) expect(a.AlarmActions, name).toEqual([{ Ref: topic }]);
  });

  it('the alarm topic is encrypted with a rotated key CloudWatch may use, refuses non-TLS publishing and lets only the stack\'s alarms publish', () => {
    const topic = resources[topicId()]!;
    expect(topic.Properties.TopicName).toBe('xl-alarms');
    const key = resources[topic.Properties.KmsMasterKeyId['Fn::GetAtt'][0]]!;
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.Properties.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] }),
    );
    const [, policy] = ofType('AWS::SNS::TopicPolicy').find(([, p]) => p.Properties.Topics[0].Ref === topicId())!;
    const statements: Loose[] = policy.Properties.PolicyDocument.Statement;
    expect(statements).toContainEqual(expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }));
    const publish = statements.find((st) => st.Principal?.Service === 'cloudwatch.amazonaws.com')!;
    // Each of the stack's alarms by ARN: a name pattern would let another stack's alarms in too.
    const sources: Loose[] = publish.Condition.ArnEquals['aws:SourceArn'];
    expect(sources.map((arn) => arn['Fn::GetAtt'][0]).sort()).toEqual(ofType('AWS::CloudWatch::Alarm').map(([id]) => id).sort());
    expect(publish.Condition.ArnLike).toBeUndefined();
  });

  it('without alarmEmail the topic has no subscription; with `-c alarmEmail=` an email subscription', () => {
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    const { context } = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8'));
    const withEmail = testApp({ context: { ...context, 'aws:cdk:bundling-stacks': [], alarmEmail: 'oncall@example.com' } });
    const emailed = Template.fromStack(new ExecutionLayerStack(withEmail, 'xl'));
    emailed.resourceCountIs('AWS::SNS::Subscription', 1);
    emailed.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
      TopicArn: { Ref: Object.keys(emailed.findResources('AWS::SNS::Topic', { Properties: { TopicName: 'xl-alarms' } }))[0] },
    });
  });

  it('a malformed alarmEmail fails the synth, naming it', () => {
    expect(() => new ExecutionLayerStack(testApp({ context: { 'aws:cdk:bundling-stacks': [] } }), 'xl', { alarmEmail: 'oncall' })).toThrow(
      /alarmEmail must be an email address, got "oncall"/,
    );
  });

  it('the agents\' containers carry the stack\'s metric namespace', () => {
    for (const [, td] of ofType('AWS::ECS::TaskDefinition')) {
      const env = Object.fromEntries(td.Properties.ContainerDefinitions[0].Environment.map((e: { Name: string; Value: string }) => [e.Name, e.Value]));
      expect(env.POWERTOOLS_METRICS_NAMESPACE).toBe('XL/xl');
    }
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

  it('stay below CloudFormation\'s 500-resource limit, with room for the options', () => {
    // 400 by default (December 2026), up to about 420 with every option. The largest share is one
    // queue policy per queue (68, from enforceSSL): one policy over all queues is the next lever.
    expect(Object.keys(resources).length).toBeLessThan(440);
  });
});
