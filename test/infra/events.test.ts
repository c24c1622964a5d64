// The layer's events on AWS, read from the synthesized template: the stack's bus that every function
// may put on, the notify rule to the notification topic, and the webhook's API destination when
// `webhookUrl` is set (infra/constructs/events.ts).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/cdk-app.ts';
import { NOTIFY_KINDS } from '../../core/events.ts';
import { WEBHOOK_KEY_HEADER } from '../../infra/constructs/events.ts';
import { type ExecutionLayerStackProps, ExecutionLayerStack } from '../../infra/stack.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FUNCTIONS = ['ApiExecutionsFunction', 'ApiLogsFunction', 'ApiPoolFunction', 'ApiOperationsFunction', 'StepsFunction', 'PoolManagerFunction', 'HealthMonitorFunction', 'ExecutionEventsFunction'];
const WEBHOOK = 'https://hooks.example.com/xl';
const KEY_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:xl-webhook-AbCdEf';

// Template JSON is read loosely here; the assertions are what check its shape.
type Loose = any;

function synth(props: ExecutionLayerStackProps = {}, context: Record<string, string> = {}): Template {
  const { context: cdkContext } = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8'));
  // No bundling: the functions' code is not what these tests read.
  const app = testApp({ context: { ...cdkContext, ...context, 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(new ExecutionLayerStack(app, 'xl', props));
}

let plain: Template;
let hooked: Template;
let withKey: Template;
beforeAll(() => {
  plain = synth();
  // As `cdk deploy -c webhookUrl=...` gives it.
  hooked = synth({}, { webhookUrl: WEBHOOK });
  withKey = synth({ webhookUrl: WEBHOOK, webhookKeySecretArn: KEY_ARN });
});

const one = (template: Template, type: string, props: Loose = {}): [string, Loose] => {
  const found = Object.entries(template.findResources(type, props));
  expect(found, type).toHaveLength(1);
  return found[0]!;
};
const statementsOfRole = (template: Template, roleId: string): Loose[] =>
  Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p: Loose) => p.Properties.Roles.some((r: Loose) => r.Ref === roleId))
    .flatMap((p: Loose) => p.Properties.PolicyDocument.Statement);

describe('the event bus', () => {
  it('is the stack\'s own, named after it, and every function knows its name', () => {
    const [busId] = one(plain, 'AWS::Events::EventBus', { Properties: { Name: 'xl-events' } });
    expect(busId).toMatch(/^EventsBus/);
    for (const fn of FUNCTIONS) {
      expect(plain.toJSON().Resources[fn].Properties.Environment.Variables.XL_EVENT_BUS, fn).toBe('xl-events');
    }
    plain.hasOutput('EventBusName', { Value: { Ref: busId } });
  });

  it('every function may put events on it, and on no other bus', () => {
    const [busId] = one(plain, 'AWS::Events::EventBus');
    const resources = plain.toJSON().Resources;
    for (const fn of FUNCTIONS) {
      const role = resources[fn].Properties.Role['Fn::GetAtt'][0];
      const puts = statementsOfRole(plain, role).filter((s) => [s.Action].flat().includes('events:PutEvents'));
      expect(puts, fn).toEqual([{ Action: 'events:PutEvents', Effect: 'Allow', Resource: { 'Fn::GetAtt': [busId, 'Arn'] } }]);
    }
  });
});

describe('the notify rule and topic', () => {
  it('sends the kinds a person should hear of from the layer\'s bus to the notification topic', () => {
    const [busId] = one(plain, 'AWS::Events::EventBus');
    const [topicId] = one(plain, 'AWS::SNS::Topic', { Properties: { TopicName: 'xl-notifications' } });
    const [, rule] = one(plain, 'AWS::Events::Rule', { Properties: { Name: 'xl-notify' } });
    expect(rule.Properties.EventBusName).toEqual({ Ref: busId });
    expect(rule.Properties.EventPattern).toEqual({ source: ['xl'], 'detail-type': [...NOTIFY_KINDS] });
    expect(NOTIFY_KINDS).toEqual(expect.arrayContaining(['execution.failed', 'task.failed', 'breaker.opened', 'budget.spent', 'agent.replaced']));
    expect(rule.Properties.Targets).toEqual([
      expect.objectContaining({ Arn: { Ref: topicId }, RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 185 }, DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching(/^EventsDeadLetters/), 'Arn'] } } }),
    ]);
    plain.hasOutput('NotificationTopicArn', { Value: { Ref: topicId } });
  });

  it('is a topic of its own (not the alarm topic), encrypted with its own rotating key and TLS only', () => {
    const [, topic] = one(plain, 'AWS::SNS::Topic', { Properties: { TopicName: 'xl-notifications' } });
    const keyId = topic.Properties.KmsMasterKeyId['Fn::GetAtt'][0];
    expect(plain.toJSON().Resources[keyId].Properties.EnableKeyRotation).toBe(true);
    const [, alarmTopic] = one(plain, 'AWS::SNS::Topic', { Properties: { TopicName: 'xl-alarms' } });
    expect(alarmTopic.Properties.KmsMasterKeyId).not.toEqual(topic.Properties.KmsMasterKeyId);
    plain.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: Match.stringLikeRegexp('^EventsNotificationTopic') }],
      PolicyDocument: { Statement: [Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })] },
    });
  });

  it('is published to by a role of the rule that may publish to that topic and use its key, nothing more', () => {
    const [topicId, topic] = one(plain, 'AWS::SNS::Topic', { Properties: { TopicName: 'xl-notifications' } });
    const [, rule] = one(plain, 'AWS::Events::Rule', { Properties: { Name: 'xl-notify' } });
    const roleId = rule.Properties.Targets[0].RoleArn['Fn::GetAtt'][0];
    expect(plain.toJSON().Resources[roleId].Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'events.amazonaws.com' } },
    ]);
    expect(statementsOfRole(plain, roleId)).toEqual([
      { Action: 'sns:Publish', Effect: 'Allow', Resource: { Ref: topicId } },
      { Action: ['kms:Decrypt', 'kms:GenerateDataKey*'], Effect: 'Allow', Resource: topic.Properties.KmsMasterKeyId },
    ]);
  });

  it('undelivered events wait in a DLQ named after the stack, which only the rules may send to and which alarms to the alarm topic', () => {
    const [dlqId] = one(plain, 'AWS::SQS::Queue', { Properties: { QueueName: 'xl-layer-events-dlq' } });
    const [, policy] = one(plain, 'AWS::SQS::QueuePolicy', { Properties: { Queues: [{ Ref: dlqId }] } });
    const sends = policy.Properties.PolicyDocument.Statement.filter((s: Loose) => s.Action === 'sqs:SendMessage');
    expect(sends).toEqual([expect.objectContaining({ Principal: { Service: 'events.amazonaws.com' }, Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [expect.stringMatching(/^EventsNotify/), 'Arn'] } } } })]);
    const alarm = plain.toJSON().Resources.EventsDlqAlarm.Properties;
    expect(alarm).toMatchObject({ AlarmName: 'xl-layer-events-dlq-depth', MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 0, Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId, 'QueueName'] } }] });
    expect(alarm.AlarmActions).toEqual([{ Ref: expect.stringMatching(/^ObservabilityAlarmTopic/) }]);
  });
});

describe('the webhook', () => {
  it('is not there without webhookUrl', () => {
    plain.resourceCountIs('AWS::Events::ApiDestination', 0);
    plain.resourceCountIs('AWS::Events::Connection', 0);
    plain.resourceCountIs('AWS::SecretsManager::Secret', 0);
    expect(Object.keys(plain.findResources('AWS::Events::Rule', { Properties: { Name: 'xl-webhook' } }))).toEqual([]);
  });

  it('with -c webhookUrl=, is an API destination that every event of the bus goes to, by POST, with retries and the DLQ', () => {
    const [busId] = one(hooked, 'AWS::Events::EventBus');
    const [destId, dest] = one(hooked, 'AWS::Events::ApiDestination');
    expect(dest.Properties).toMatchObject({ Name: 'xl-webhook', InvocationEndpoint: WEBHOOK, HttpMethod: 'POST', InvocationRateLimitPerSecond: 20 });
    const [, rule] = one(hooked, 'AWS::Events::Rule', { Properties: { Name: 'xl-webhook' } });
    expect(rule.Properties.EventBusName).toEqual({ Ref: busId });
    expect(rule.Properties.EventPattern).toEqual({ source: ['xl'] });
    const target = rule.Properties.Targets[0];
    expect(target).toMatchObject({ Arn: { 'Fn::GetAtt': [destId, 'Arn'] }, RetryPolicy: { MaximumEventAgeInSeconds: 86400, MaximumRetryAttempts: 185 } });
    expect(target.DeadLetterConfig.Arn['Fn::GetAtt'][0]).toMatch(/^EventsDeadLetters/);
    // The rule's role may invoke this destination only.
    expect(statementsOfRole(hooked, target.RoleArn['Fn::GetAtt'][0])).toEqual([{ Action: 'events:InvokeApiDestination', Effect: 'Allow', Resource: { 'Fn::GetAtt': [destId, 'Arn'] } }]);
  });

  it('authorizes with an API key header whose value comes from a secret the stack generates (a Connection must authorize)', () => {
    const [secretId, secret] = one(hooked, 'AWS::SecretsManager::Secret');
    expect(secret.Properties.Name).toBe('xl/webhook-key');
    const [connectionId, connection] = one(hooked, 'AWS::Events::Connection');
    expect(connection.Properties).toMatchObject({ Name: 'xl-webhook', AuthorizationType: 'API_KEY' });
    expect(connection.Properties.AuthParameters.ApiKeyAuthParameters).toEqual({
      ApiKeyName: WEBHOOK_KEY_HEADER,
      ApiKeyValue: { 'Fn::Join': ['', ['{{resolve:secretsmanager:', { Ref: secretId }, ':SecretString:::}}']] },
    });
    const [, dest] = one(hooked, 'AWS::Events::ApiDestination');
    expect(dest.Properties.ConnectionArn).toEqual({ 'Fn::GetAtt': [connectionId, 'Arn'] });
    hooked.hasOutput('WebhookKeySecretArn', { Value: { Ref: secretId } });
  });

  it('takes the key from a given secret instead (webhookKeySecretArn), generating none', () => {
    withKey.resourceCountIs('AWS::SecretsManager::Secret', 0);
    const [, connection] = one(withKey, 'AWS::Events::Connection');
    expect(connection.Properties.AuthParameters.ApiKeyAuthParameters.ApiKeyValue).toBe(`{{resolve:secretsmanager:${KEY_ARN}:SecretString:::}}`);
    expect(Object.keys(withKey.findOutputs('WebhookKeySecretArn'))).toEqual([]);
  });

  it('refuses, at synth, a URL that is not https: an API destination\'s endpoint must be', () => {
    expect(() => synth({ webhookUrl: 'http://hooks.example.com/xl' })).toThrow('webhookUrl must be https (an EventBridge API destination\'s endpoint is), got http:');
    expect(() => synth({ webhookUrl: 'hooks' })).toThrow('webhookUrl is not a URL: "hooks"');
  });
});
