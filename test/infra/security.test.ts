// The security review's assertions on the synthesized template (issue 9, "Security review"): least
// privilege statement by statement, each agent type's role confined to its own queues and items,
// two stacks side by side in one account, the KMS / network / concurrency options, and every state
// machine's ASL through an outside validator.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/cdk-app.ts';
import { AGENT_TYPES, type AgentType, PRIORITIES } from '../../core/agent-types.ts';
import { MODEL_API_BREAKER_KEY, agentBreakerKey, gitBreakerKey } from '../../core/breakers.ts';
import { exampleArnResolver, resolveDefinition, stateMachineDefinitions } from '../../infra/asl.ts';
import { AGENT_INTERFACE_ENDPOINTS } from '../../infra/constructs/agents.ts';
import { DEPENDENCY_BREAKER_KEYS } from '../../infra/constructs/tables.ts';
import { AGENT_WRITE_PREFIXES } from '../../infra/constructs/storage.ts';
import { acknowledgeNagFindings } from '../../infra/nag.ts';
import { ExecutionLayerStack, type ExecutionLayerStackProps } from '../../infra/stack.ts';

const require = createRequire(import.meta.url);
const validateAsl = require('asl-validator') as (definition: unknown) => { isValid: boolean; errorsText: (separator?: string) => string };

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { context } = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8'));

// Template JSON is read loosely; the assertions check its shape.
type Loose = any;

interface Synth {
  template: Loose;
  openFindings: string[];
}

function synth(stackName: string, props: ExecutionLayerStackProps = {}, nag = false): Synth {
  const app = testApp({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  const stack = new ExecutionLayerStack(app, stackName, props);
  acknowledgeNagFindings(stack);
  const template = Template.fromStack(stack).toJSON();
  const openFindings = nag
    ? new AwsSolutionsChecks(app).validateScope(app).violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${(r as { constructPath?: string }).constructPath}`))
    : [];
  return { template, openFindings };
}

const resourcesOf = (t: Loose, type: string): [string, Loose][] => Object.entries(t.Resources).filter(([, r]: [string, Loose]) => r.Type === type) as [string, Loose][];

/** Every identity-policy statement of the template, with the policy's logical id. */
function statements(t: Loose): { policy: string; statement: Loose }[] {
  const out: { policy: string; statement: Loose }[] = [];
  for (const [id, r] of Object.entries<Loose>(t.Resources)) {
    const documents =
      r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy'
        ? [r.Properties.PolicyDocument]
        : r.Type === 'AWS::IAM::Role'
          ? (r.Properties.Policies ?? []).map((p: Loose) => p.PolicyDocument)
          : [];
    for (const d of documents) for (const statement of d.Statement) out.push({ policy: id, statement });
  }
  return out;
}

/** The statements of the policies attached to a role (by logical id). */
function statementsOfRole(t: Loose, roleId: string): Loose[] {
  return resourcesOf(t, 'AWS::IAM::Policy')
    .filter(([, p]) => p.Properties.Roles.some((r: Loose) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}

const actionsOf = (s: Loose): string[] => [s.Action].flat();
const resourcesOfStatement = (s: Loose): Loose[] => [s.Resource].flat();

/** A CloudFormation value as text, tokens as `{Id}` / `{Id.Attr}` / `{AWS::Region}`. */
function flatten(v: Loose): string {
  if (typeof v === 'string') return v;
  if (v?.['Fn::Join']) return v['Fn::Join'][1].map(flatten).join(v['Fn::Join'][0]);
  if (v?.Ref) return `{${v.Ref}}`;
  if (v?.['Fn::GetAtt']) return `{${[v['Fn::GetAtt']].flat().join('.')}}`;
  return JSON.stringify(v);
}

/**
 * Actions AWS authorizes on no narrower resource than `*` (Service Authorization Reference: their
 * "Resource types" column is empty), and what asks for them.
 */
const STAR_ACTIONS: Record<string, string> = {
  // Active tracing on the functions and the state machines.
  'xray:PutTraceSegments': 'X-Ray',
  'xray:PutTelemetryRecords': 'X-Ray',
  'xray:GetSamplingRules': 'X-Ray (state machines)',
  'xray:GetSamplingTargets': 'X-Ray (state machines)',
  // Step Functions' log delivery to CloudWatch Logs (logging level ALL): the vended-logs actions.
  'logs:CreateLogDelivery': 'Step Functions logging',
  'logs:GetLogDelivery': 'Step Functions logging',
  'logs:UpdateLogDelivery': 'Step Functions logging',
  'logs:DeleteLogDelivery': 'Step Functions logging',
  'logs:ListLogDeliveries': 'Step Functions logging',
  'logs:PutResourcePolicy': 'Step Functions logging',
  'logs:DescribeResourcePolicies': 'Step Functions logging',
  'logs:DescribeLogGroups': 'Step Functions logging',
  // The ECS execution role's registry login (image pulls are scoped to the asset repository).
  'ecr:GetAuthorizationToken': 'ECR',
  // ListTasks has no task resource; every grant of it carries the ecs:cluster condition (asserted below).
  'ecs:ListTasks': 'ECS',
};

/** The physical name property of each resource type the stack names (account-wide names). */
const PHYSICAL_NAMES: Record<string, string> = {
  'AWS::SQS::Queue': 'QueueName',
  'AWS::CloudWatch::Alarm': 'AlarmName',
  'AWS::CloudWatch::Dashboard': 'DashboardName',
  'AWS::Logs::LogGroup': 'LogGroupName',
  'AWS::SNS::Topic': 'TopicName',
  'AWS::ECS::TaskDefinition': 'Family',
  'AWS::ECS::Service': 'ServiceName',
  'AWS::ApiGateway::RestApi': 'Name',
  'AWS::DynamoDB::Table': 'TableName',
  'AWS::IAM::Role': 'RoleName',
  'AWS::IAM::ManagedPolicy': 'ManagedPolicyName',
  'AWS::Lambda::Function': 'FunctionName',
  'AWS::StepFunctions::StateMachine': 'StateMachineName',
  'AWS::S3::Bucket': 'BucketName',
  'AWS::SecretsManager::Secret': 'Name',
  'AWS::SSM::Parameter': 'Name',
  'AWS::Events::Rule': 'Name',
  'AWS::ECS::Cluster': 'ClusterName',
  'AWS::KMS::Alias': 'AliasName',
  'AWS::EC2::SecurityGroup': 'GroupName',
  'AWS::Events::EventBus': 'Name',
  'AWS::Events::Connection': 'Name',
  'AWS::Events::ApiDestination': 'Name',
};
/**
 * `*Name` properties that are not a physical name of their own: references to another resource, names
 * scoped to a parent (an API's models and stage, a role's inline policy), metrics, AWS service names.
 */
const NOT_PHYSICAL_NAMES = new Set([
  'AWS::IAM::Policy PolicyName',
  'AWS::Lambda::EventInvokeConfig FunctionName',
  'AWS::Lambda::Permission FunctionName',
  'AWS::EC2::VPCEndpoint ServiceName',
  'AWS::EC2::FlowLog LogGroupName',
  'AWS::ApiGateway::Stage StageName',
  'AWS::ApiGateway::Method OperationName',
  'AWS::ApiGateway::RequestValidator Name',
  'AWS::ApiGateway::Model Name',
  'AWS::CloudWatch::Alarm MetricName',
  'AWS::SNS::Topic DisplayName',
  'AWS::Events::Rule EventBusName',
]);

/** The physical names a template sets, as `<type> <name>` (names are unique per kind of resource). */
function physicalNames(t: Loose): string[] {
  return Object.values<Loose>(t.Resources).flatMap((r) => {
    const prop = PHYSICAL_NAMES[r.Type];
    const value = prop ? r.Properties?.[prop] : undefined;
    return value === undefined ? [] : [`${r.Type} ${flatten(value)}`];
  });
}

const taskRoleOf = (t: Loose, type: AgentType): string =>
  resourcesOf(t, 'AWS::ECS::TaskDefinition').find(([, td]) => td.Metadata?.['xl:agentType'] === type)![1].Properties.TaskRoleArn['Fn::GetAtt'][0];

let xl: Synth;
let staging: Synth;
let prod: Synth;
let options: Synth;
const SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:xl/anthropic-AbCdEf';
beforeAll(() => {
  xl = synth('xl');
  staging = synth('xl-staging');
  prod = synth('xl-prod');
  options = synth(
    'xl',
    { kms: true, natGateways: 2, interfaceEndpoints: true, stepsReservedConcurrency: 20, anthropicApiKeySecretArn: SECRET_ARN },
    true,
  );
});

describe('IAM statements', () => {
  it('grant no whole service (`service:*`) anywhere', () => {
    const whole = statements(xl.template).flatMap(({ policy, statement }) => actionsOf(statement).filter((a) => /^[a-z0-9-]+:\*$/.test(a) || a === '*').map((a) => `${a} in ${policy}`));
    expect(whole).toEqual([]);
  });

  it('name `Resource: *` only for actions AWS scopes to no resource, each in the commented allow-list', () => {
    for (const synthed of [xl, options]) {
      const star = statements(synthed.template).filter(({ statement }) => resourcesOfStatement(statement).includes('*'));
      expect(star.length).toBeGreaterThan(0);
      for (const { policy, statement } of star) {
        for (const action of actionsOf(statement)) expect(STAR_ACTIONS, `${action} on * in ${policy}`).toHaveProperty([action]);
        if (actionsOf(statement).includes('ecs:ListTasks')) expect(statement.Condition?.ArnEquals?.['ecs:cluster'], policy).toBeDefined();
      }
    }
  });

  it('scope the task-token actions to TaskBatch, the machine whose Dispatch issues the tokens', () => {
    const tokenStatements = statements(xl.template).filter(({ statement }) => actionsOf(statement).some((a) => a.startsWith('states:SendTask')));
    // Eleven agent roles and the pool manager's dead-letter sweep.
    expect(tokenStatements).toHaveLength(AGENT_TYPES.length + 1);
    for (const { statement } of tokenStatements) expect(statement.Resource).toEqual({ Ref: 'TaskBatch' });
  });

  it('queue ARN patterns of one stack match none of another stack\'s queues, even one named with its name as prefix', () => {
    const queueNames = (t: Loose) => resourcesOf(t, 'AWS::SQS::Queue').map(([, q]) => q.Properties.QueueName as string);
    const patterns = (t: Loose) =>
      statements(t)
        .flatMap(({ statement }) => resourcesOfStatement(statement).map(flatten))
        .filter((r) => r.includes(':sqs:') && r.includes('*'))
        .map((r) => new RegExp(`^${r.slice(r.lastIndexOf(':') + 1).replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
    expect(patterns(xl.template).length).toBeGreaterThan(0);
    for (const [mine, theirs] of [[xl, staging], [xl, prod], [staging, xl], [prod, staging]] as const) {
      const own = queueNames(mine.template);
      for (const p of patterns(mine.template)) {
        // Agents' direct queues (affinity) are made at run time: the template has none to match.
        if (!String(p).includes('-direct-')) expect(own.some((q) => p.test(q)), `${p} matches its own queues`).toBe(true);
        expect(queueNames(theirs.template).filter((q) => p.test(q)), String(p)).toEqual([]);
      }
    }
  });
});

describe('each agent type\'s task role', () => {
  it.each(AGENT_TYPES)('%s: receives, extends, deletes and relays on its own queues (every priority) and no other queue', (type) => {
    const own = PRIORITIES.map((p) => `${type}-${p}`);
    const sqsStatements = statementsOfRole(xl.template, taskRoleOf(xl.template, type)).filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')) && s.Sid !== 'OwnDirectQueue');
    expect(sqsStatements).toHaveLength(1);
    expect(actionsOf(sqsStatements[0]).sort()).toEqual(['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:ReceiveMessage', 'sqs:SendMessage']);
    const queues = resourcesOfStatement(sqsStatements[0]).map((r) => xl.template.Resources[r['Fn::GetAtt'][0]].Properties.QueueName);
    expect(queues.sort()).toEqual(own.map((k) => `xl_${k}`).sort());
  });

  it.each(AGENT_TYPES)('%s: reads its resource figures from its own task metadata endpoint only: no ECS, CloudWatch or other task API', (type) => {
    // The task metadata endpoint (agent/resources.ts) answers the task's own containers and needs no
    // IAM permission; an agent that could call ECS could describe or stop other tasks.
    const actions = statementsOfRole(xl.template, taskRoleOf(xl.template, type)).flatMap(actionsOf);
    expect(actions.filter((a) => /^(ecs|cloudwatch|logs|ec2):/.test(a))).toEqual([]);
  });

  it.each(AGENT_TYPES)('%s: creates, polls and deletes direct queues of its own type only (affinity)', (type) => {
    const direct = statementsOfRole(xl.template, taskRoleOf(xl.template, type)).filter((s) => s.Sid === 'OwnDirectQueue');
    expect(direct).toHaveLength(1);
    expect(actionsOf(direct[0]).sort()).toEqual(['sqs:ChangeMessageVisibility', 'sqs:CreateQueue', 'sqs:DeleteMessage', 'sqs:DeleteQueue', 'sqs:ReceiveMessage']);
    expect(resourcesOfStatement(direct[0]).map(flatten)).toEqual([`arn:{AWS::Partition}:sqs:{AWS::Region}:{AWS::AccountId}:xl_${type}-direct-*`]);
  });

  it.each(AGENT_TYPES)('%s: touches table items only under the partition keys an agent writes, with no scan, batch or index call', (type) => {
    const ddb = statementsOfRole(xl.template, taskRoleOf(xl.template, type)).filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    const tableOf = (st: any) => flatten(st.Resource).replace(/^\{(\w+)Table\w*\.Arn\}$/, '$1');
    expect([...new Set(ddb.map(tableOf))].sort()).toEqual(['Agents', 'Breakers', 'Executions']);
    // Per table: leading keys → actions.
    const grants = (table: string) =>
      Object.fromEntries(ddb.filter((st) => tableOf(st) === table).map((st) => [st.Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys'].join(','), actionsOf(st).sort()]));
    // Executions and tasks are updated, never put; result-cache entries are read and put, never updated.
    expect(grants('Executions')).toEqual({ 'X#*': ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:UpdateItem'], 'C#*': ['dynamodb:GetItem', 'dynamodb:PutItem'] });
    expect(Object.keys(grants('Agents'))).toEqual(['A#*']);
    expect(Object.keys(grants('Breakers'))).toEqual([[agentBreakerKey(type), DEPENDENCY_BREAKER_KEYS].join(',')]);
    for (const s of ddb) {
      for (const a of actionsOf(s)) expect(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query']).toContain(a);
      expect(flatten(s.Resource)).not.toContain('/index/');
    }
  });

  it('the dependency breaker pattern covers the git and model-API breakers an agent reports to', () => {
    const pattern = new RegExp(`^${DEPENDENCY_BREAKER_KEYS.replace('*', '.*')}$`);
    expect(pattern.test(gitBreakerKey('github.com'))).toBe(true);
    expect(pattern.test(MODEL_API_BREAKER_KEY)).toBe(true);
    expect(pattern.test(agentBreakerKey('coder'))).toBe(false);
  });

  it('puts objects only under the prefixes agents write, and deletes none', () => {
    for (const type of AGENT_TYPES) {
      const s3 = statementsOfRole(xl.template, taskRoleOf(xl.template, type)).filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
      const puts = s3.filter((s) => actionsOf(s).includes('s3:PutObject'));
      expect(puts).toHaveLength(1);
      expect(resourcesOfStatement(puts[0]).map(flatten).sort()).toEqual(AGENT_WRITE_PREFIXES.map((p) => `{PayloadBucket.Arn}/${p}*`).sort());
      expect(s3.flatMap(actionsOf).filter((a) => a.includes('Delete'))).toEqual([]);
    }
  });

  it('reads only secrets under the credentials prefix, and has no queue, table or bucket wildcard of the stack', () => {
    for (const type of AGENT_TYPES) {
      const all = statementsOfRole(xl.template, taskRoleOf(xl.template, type));
      expect(all.flatMap(actionsOf).filter((a) => a.startsWith('secretsmanager:'))).toEqual(['secretsmanager:GetSecretValue']);
      const text = JSON.stringify(all);
      expect(text).not.toMatch(/:sqs:[^"]*\*/);
    }
  });
});

describe('two stacks in one account', () => {
  it('synthesize with no physical name in common, every name generated or prefixed by the stack name', () => {
    const names = { 'xl-staging': physicalNames(staging.template), 'xl-prod': physicalNames(prod.template), xl: physicalNames(xl.template) };
    // Queues, DLQ and other alarms, the dashboard, state machine log groups, the topic, task families, services, the API.
    expect(names['xl-staging'].length).toBeGreaterThan(100);
    for (const [stackName, list] of Object.entries(names)) {
      expect(new Set(list).size, `${stackName}: names repeat within the stack`).toBe(list.length);
      for (const n of list) expect(n.replace(/^\S+ /, '').replace('/aws/vendedlogs/states/', ''), n).toMatch(new RegExp(`^${stackName}[-_]`));
    }
    const common = (a: string[], b: string[]) => a.filter((n) => b.includes(n));
    expect(common(names['xl-staging'], names['xl-prod'])).toEqual([]);
    expect(common(names.xl, names['xl-staging'])).toEqual([]);
    expect(common(names.xl, names['xl-prod'])).toEqual([]);
  });

  it('no two stack names whatever give a name in common: no name\'s suffix after `<stack>-` ends in `-` and another\'s', () => {
    // Stack A's `A-s1` equals stack B's `B-s2` only when B = `A-w` and s1 = `w-s2`; queue names use
    // `_`, which no stack name holds, so they cannot meet at all.
    const suffixes = new Map<string, string[]>();
    for (const entry of physicalNames(xl.template)) {
      const [, type, name] = /^(\S+) (.*)$/.exec(entry)!;
      const suffix = name!.replace('/aws/vendedlogs/states/', '').replace(/^xl[-_]/, '');
      suffixes.set(type!, [...(suffixes.get(type!) ?? []), suffix]);
    }
    const clashes = [...suffixes].flatMap(([type, list]) => list.flatMap((s1) => list.filter((s2) => s1 !== s2 && s1.endsWith(`-${s2}`)).map((s2) => `${type}: ${s1} / ${s2}`)));
    expect(clashes).toEqual([]);
  });

  it('every `*Name` property of the template is either a physical name checked above or known not to be one', () => {
    const unknown = new Set<string>();
    for (const synthed of [staging, options]) {
      for (const r of Object.values<Loose>(synthed.template.Resources)) {
        for (const prop of Object.keys(r.Properties ?? {})) {
          if (!/Name$|^Family$/.test(prop)) continue;
          if (PHYSICAL_NAMES[r.Type] === prop || NOT_PHYSICAL_NAMES.has(`${r.Type} ${prop}`)) continue;
          unknown.add(`${r.Type} ${prop}`);
        }
      }
    }
    expect([...unknown]).toEqual([]);
  });

  it('a stack name too long for the queue names fails the synth, naming the limit', () => {
    expect(() => new ExecutionLayerStack(testApp({ context: { 'aws:cdk:bundling-stacks': [] } }), 'x'.repeat(60))).toThrow(/too long for the queue names .* SQS allows 80.*use at most 56 characters/);
  });
});

describe('options', () => {
  const kmsKeyOf = (t: Loose) => {
    const keys = resourcesOf(t, 'AWS::KMS::Key').filter(([id]) => id.startsWith('EncryptionKey'));
    expect(keys).toHaveLength(1);
    return keys[0]!;
  };

  it('`-c kms=true`: one rotated customer managed key encrypts every queue, table, the payload bucket and every log group', () => {
    const t = options.template;
    const [keyId, key] = kmsKeyOf(t);
    expect(key.Properties.EnableKeyRotation).toBe(true);
    const ref = { 'Fn::GetAtt': [keyId, 'Arn'] };
    for (const [id, q] of resourcesOf(t, 'AWS::SQS::Queue')) {
      expect(q.Properties.KmsMasterKeyId, id).toEqual(ref);
      expect(q.Properties.SqsManagedSseEnabled, id).toBeUndefined();
    }
    for (const [id, table] of resourcesOf(t, 'AWS::DynamoDB::Table')) {
      expect(table.Properties.SSESpecification, id).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: ref });
    }
    const rule = t.Resources.PayloadBucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0];
    expect(rule).toEqual({ ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: ref }, BucketKeyEnabled: true });
    const groups = resourcesOf(t, 'AWS::Logs::LogGroup');
    expect(groups.length).toBeGreaterThanOrEqual(9);
    for (const [id, g] of groups) expect(g.Properties.KmsKeyId, id).toEqual(ref);
  });

  it('`-c kms=true`: the key policy lets CloudWatch Logs of this region use it only for this account\'s log groups', () => {
    const [, key] = kmsKeyOf(options.template);
    const logsStatement = key.Properties.KeyPolicy.Statement.find((s: Loose) => JSON.stringify(s.Principal).includes('logs.'));
    expect(flatten(logsStatement.Principal.Service)).toBe('logs.{AWS::Region}.amazonaws.com');
    expect(flatten(logsStatement.Condition.ArnLike['kms:EncryptionContext:aws:logs:arn'])).toBe(
      'arn:{AWS::Partition}:logs:{AWS::Region}:{AWS::AccountId}:log-group:*',
    );
  });

  it('`-c kms=true`: the roles that read and write that data may use the key, by its ARN, without action wildcards', () => {
    const [keyId] = kmsKeyOf(options.template);
    const users = statements(options.template).filter(({ statement }) => JSON.stringify(statement.Resource).includes(keyId));
    // Eight functions (four of them the API's), TaskBatch and the eleven agent roles.
    expect(new Set(users.map((u) => u.policy)).size).toBe(8 + 1 + AGENT_TYPES.length);
    for (const { statement } of users) expect(actionsOf(statement).sort()).toEqual(['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey']);
  });

  it('without kms the data keeps AWS owned or managed keys and there is no data key', () => {
    expect(resourcesOf(xl.template, 'AWS::KMS::Key').filter(([id]) => id.startsWith('EncryptionKey'))).toEqual([]);
    for (const [, q] of resourcesOf(xl.template, 'AWS::SQS::Queue')) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
  });

  it('`-c natGateways=2` gives each AZ its own NAT gateway; the default is one', () => {
    expect(resourcesOf(options.template, 'AWS::EC2::NatGateway')).toHaveLength(2);
    expect(resourcesOf(xl.template, 'AWS::EC2::NatGateway')).toHaveLength(1);
  });

  it('`-c interfaceEndpoints=true` adds an endpoint per AWS API the agents call, reachable from the agents only', () => {
    const endpoints = resourcesOf(options.template, 'AWS::EC2::VPCEndpoint').filter(([, e]) => e.Properties.VpcEndpointType === 'Interface');
    expect(endpoints).toHaveLength(Object.keys(AGENT_INTERFACE_ENDPOINTS).length);
    for (const [id, e] of endpoints) {
      expect(e.Properties.PrivateDnsEnabled, id).toBe(true);
      const [groupId] = e.Properties.SecurityGroupIds.map((g: Loose) => g['Fn::GetAtt'][0]);
      const group = options.template.Resources[groupId];
      expect(group.Properties.SecurityGroupIngress ?? [], id).toEqual([]);
    }
    const ingress = resourcesOf(options.template, 'AWS::EC2::SecurityGroupIngress').map(([, i]) => i.Properties);
    expect(ingress).toEqual([expect.objectContaining({ FromPort: 443, ToPort: 443, IpProtocol: 'tcp', SourceSecurityGroupId: expect.objectContaining({ 'Fn::GetAtt': [expect.stringContaining('AgentSecurityGroup'), 'GroupId'] }) })]);
    expect(resourcesOf(xl.template, 'AWS::EC2::VPCEndpoint').filter(([, e]) => e.Properties.VpcEndpointType === 'Interface')).toEqual([]);
  });

  it('`-c stepsReservedConcurrency=N` reserves N for the steps function only; by default nothing is reserved (a new account may have a quota of 10)', () => {
    const reserved = (t: Loose) =>
      Object.fromEntries(resourcesOf(t, 'AWS::Lambda::Function').filter(([, f]) => f.Properties.ReservedConcurrentExecutions !== undefined).map(([id, f]) => [id, f.Properties.ReservedConcurrentExecutions]));
    expect(reserved(options.template)).toEqual({ StepsFunction: 20 });
    expect(reserved(xl.template)).toEqual({});
  });

  it('`-c anthropicApiKeySecretArn=` injects the secret by its complete ARN', () => {
    const [, td] = resourcesOf(options.template, 'AWS::ECS::TaskDefinition')[0]!;
    expect(td.Properties.ContainerDefinitions[0].Secrets).toEqual([{ Name: 'ANTHROPIC_API_KEY', ValueFrom: SECRET_ARN }]);
  });

  it('leave no open cdk-nag finding', () => {
    expect(options.openFindings).toEqual([]);
  });

  it.each([
    [{ anthropicApiKeySecretName: 'xl/anthropic-AbC123' }, /ends in a hyphen and six characters.*anthropicApiKeySecretArn/],
    [{ anthropicApiKeySecretArn: 'xl/anthropic' }, /anthropicApiKeySecretArn must be a secret's complete ARN/],
    [{ anthropicApiKeySecretArn: SECRET_ARN, anthropicApiKeySecretName: 'xl/anthropic' }, /by ARN .* or by name .*, not both/],
    [{ natGateways: 3 }, /natGateways must be 1 or 2, got 3/],
    [{ stepsReservedConcurrency: 0 }, /stepsReservedConcurrency must be a whole number of at least 1, got 0/],
  ] as [ExecutionLayerStackProps, RegExp][])('refuses %j, naming what is wrong', (props, message) => {
    expect(() => new ExecutionLayerStack(testApp({ context: { 'aws:cdk:bundling-stacks': [] } }), 'xl', props)).toThrow(message);
  });
});

describe('state machine definitions', () => {
  it('every state machine\'s ASL passes asl-validator (ARNs checked, with example values for the tokens)', () => {
    const ids = Object.keys(stateMachineDefinitions(xl.template));
    expect(ids.sort()).toEqual(['ParallelExecution', 'PipelineExecution', 'SequentialExecution', 'TaskBatch']);
    for (const id of ids) {
      const definition = resolveDefinition(xl.template, id, exampleArnResolver(xl.template));
      const result = validateAsl(definition);
      expect(result.errorsText('; '), id).toBe('');
      expect(result.isValid, id).toBe(true);
    }
  });

  it('the validator is not a rubber stamp: a Task state without a resource fails it', () => {
    const definition = resolveDefinition(xl.template, 'TaskBatch', exampleArnResolver(xl.template));
    const broken = JSON.parse(JSON.stringify(definition).replace('"Type":"Task","Resource":', '"Type":"Task","NoResource":'));
    expect(validateAsl(broken).isValid).toBe(false);
  });
});
