// What tells the on-call what broke: the layer's metrics on one dashboard, alarms on what needs a
// person, and an SNS topic they notify (an email subscription with `-c alarmEmail=`).
import { Aws, CfnResource, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { METRIC, METRIC_DIMENSION, METRIC_SERVICE, metricsNamespace } from '../../core/metrics.ts';
import type { Api } from './api.ts';
import type { XlFunction } from './functions.ts';
import type { Patterns } from './patterns.ts';
import type { TaskQueues } from './queues.ts';

/** Default of the execution duration alarm: a pattern execution that ran longer than a day. */
export const EXECUTION_DURATION_ALARM = Duration.hours(24);
/** Lambda errors per function in 5 minutes: the steps function throws `transient` on purpose for Step Functions to retry, so one is no news. */
export const LAMBDA_ERRORS_THRESHOLD = 5;
/** Lambda throttles per function in 5 minutes: any means the account's concurrency ran out. */
export const LAMBDA_THROTTLES_THRESHOLD = 1;
/** API 5xx responses in 5 minutes. */
export const API_5XX_THRESHOLD = 5;
/** Minutes a breaker (or an unhealthy agent) must stay so before it is a person's business: the health monitor replaces agents and breakers cool down on their own. */
export const SUSTAINED_MINUTES = 5;

const FIVE_MINUTES = Duration.minutes(5);

export interface ObservabilityProps {
  readonly patterns: Patterns;
  readonly queues: TaskQueues;
  readonly api: Api;
  /** Every Lambda function of the layer: errors and throttles. */
  readonly functions: readonly XlFunction[];
  /** Subscribes this address to the alarm topic (`-c alarmEmail=`); SNS asks it to confirm. */
  readonly alarmEmail?: string;
  /** Alarm when a pattern execution runs longer than this (default 24 h). */
  readonly executionDurationAlarm?: Duration;
  /** The layer events' dead-letter queue (infra/constructs/events.ts): what EventBridge could not deliver. */
  readonly eventsDeadLetters?: sqs.IQueue;
}

export class Observability extends Construct {
  /** The stack's metric namespace (`XL/<stack>`), POWERTOOLS_METRICS_NAMESPACE. */
  readonly namespace: string;
  readonly dashboard: cloudwatch.Dashboard;
  /** Every alarm notifies it. Always created, so a deployment can subscribe a pager or a chat channel. */
  readonly alarmTopic: sns.Topic;
  /** Encrypts the topic; CloudWatch may use it to publish. */
  readonly alarmTopicKey: kms.Key;
  /** The alarms by name (the DLQ alarms of TaskQueues included). */
  readonly alarms: Readonly<Record<string, cloudwatch.IAlarm>>;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const stackName = Stack.of(this).stackName;
    this.namespace = metricsNamespace(stackName);
    const alarmPrefix = `${stackName}-`;

    // A customer managed key: CloudWatch alarms cannot publish to a topic encrypted with the AWS
    // managed key for SNS, whose policy cannot be changed (SNS developer guide, "Enable compatibility
    // between event sources from AWS services and encrypted topics").
    this.alarmTopicKey = new kms.Key(this, 'AlarmTopicKey', {
      description: `${stackName}: encrypts the alarm topic`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.alarmTopicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      topicName: `${stackName}-alarms`,
      displayName: `${stackName} execution layer alarms`,
      masterKey: this.alarmTopicKey,
      enforceSSL: true,
    });
    if (props.alarmEmail !== undefined) {
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.alarmEmail)) throw new Error(`alarmEmail must be an email address, got "${props.alarmEmail}"`);
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }
    const notify = new actions.SnsAction(this.alarmTopic);

    const alarms: Record<string, cloudwatch.IAlarm> = {};
    const alarm = (logicalId: string, name: string, alarmProps: Omit<cloudwatch.AlarmProps, 'alarmName'>) => {
      const a = new cloudwatch.Alarm(this, logicalId, {
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        ...alarmProps,
        alarmName: `${alarmPrefix}${name}`,
      });
      (a.node.defaultChild as CfnResource).overrideLogicalId(logicalId);
      a.addAlarmAction(notify);
      alarms[a.alarmName] = a;
      return a;
    };

    // DLQ depth: TaskQueues' alarms, and the execution-events function's dead letters, which the
    // reconcile drains every 5 minutes (so three periods mean it could not).
    for (const a of Object.values(props.queues.deadLetterAlarms)) {
      a.addAlarmAction(notify);
      alarms[a.alarmName] = a;
    }
    alarm('ExecutionEventsDlqAlarm', 'execution-events-dlq-depth', {
      alarmDescription: 'Execution status events the events function could not handle stayed in its dead-letter queue past the reconcile',
      metric: props.patterns.executionEventsDeadLetters.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.MAXIMUM }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
    });

    if (props.eventsDeadLetters) {
      alarm('EventsDlqAlarm', 'layer-events-dlq-depth', {
        alarmDescription: 'Events EventBridge could not deliver to the notification topic or the webhook within 24 hours',
        metric: props.eventsDeadLetters.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.MAXIMUM }),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }

    const { sequential, parallel, pipeline } = props.patterns;
    const durationLimit = props.executionDurationAlarm ?? EXECUTION_DURATION_ALARM;
    for (const [name, machine] of [['sequential', sequential], ['parallel', parallel], ['pipeline', pipeline]] as const) {
      const logical = name.charAt(0).toUpperCase() + name.slice(1);
      alarm(`${logical}ExecutionsFailedAlarm`, `${name}-executions-failed`, {
        alarmDescription: `A ${name} execution failed (see GET /executions?status=FAILED)`,
        metric: machine.metricFailed({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.SUM }),
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
      alarm(`${logical}ExecutionDurationAlarm`, `${name}-execution-duration`, {
        alarmDescription: `A ${name} execution ran longer than ${durationLimit.toHumanString()}`,
        // ExecutionTime is reported when an execution ends, in milliseconds.
        metric: machine.metricTime({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.MAXIMUM }),
        threshold: durationLimit.toMilliseconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }

    for (const fn of props.functions) {
      const id = fn.logicalId;
      // ApiPoolFunction -> api-pool, ExecutionEventsFunction -> execution-events
      const short = id.replace(/Function$/, '').replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase();
      alarm(`${id}ErrorsAlarm`, `${short}-errors`, {
        alarmDescription: `${fn.entry}: ${LAMBDA_ERRORS_THRESHOLD} or more errors in 5 minutes (see its log group)`,
        metric: fn.function.metricErrors({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.SUM }),
        threshold: LAMBDA_ERRORS_THRESHOLD,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
      alarm(`${id}ThrottlesAlarm`, `${short}-throttles`, {
        alarmDescription: `${fn.entry}: throttled (the account's or the function's concurrency ran out)`,
        metric: fn.function.metricThrottles({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.SUM }),
        threshold: LAMBDA_THROTTLES_THRESHOLD,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
      });
    }

    alarm('Api5xxAlarm', 'api-5xx', {
      alarmDescription: `The API answered ${API_5XX_THRESHOLD} or more 5xx responses in 5 minutes (see the API function's log group)`,
      metric: props.api.restApi.metricServerError({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.SUM }),
      threshold: API_5XX_THRESHOLD,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    });

    const metric = (metricName: string, service: string, statistic: string, extra: Record<string, string> = {}) =>
      new cloudwatch.Metric({
        namespace: this.namespace,
        metricName,
        dimensionsMap: { service, ...extra },
        statistic,
        period: Duration.minutes(1),
      });
    const breakersOpen = metric(METRIC.breakersOpen, METRIC_SERVICE.healthMonitor, cloudwatch.Stats.MAXIMUM);
    const unhealthyAgents = metric(METRIC.agents, METRIC_SERVICE.healthMonitor, cloudwatch.Stats.MAXIMUM, { [METRIC_DIMENSION.status]: 'unhealthy' });
    alarm('BreakersOpenAlarm', 'breakers-open', {
      alarmDescription: `A circuit breaker stayed open ${SUSTAINED_MINUTES} minutes (see GET /health)`,
      metric: breakersOpen,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: SUSTAINED_MINUTES,
    });
    alarm('UnhealthyAgentsAlarm', 'unhealthy-agents', {
      alarmDescription: `An agent stayed unhealthy ${SUSTAINED_MINUTES} minutes: the health monitor could not replace it (see GET /agents)`,
      metric: unhealthyAgents,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: SUSTAINED_MINUTES,
    });
    this.alarms = alarms;
    // enforceSSL gives the topic a policy of its own, which replaces the default one: allow this
    // stack's alarms to publish, each by its ARN. (A name pattern `<stack>-*` would also let the
    // alarms of a stack named `<stack>-staging` publish here.)
    this.alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnEquals: { 'aws:SourceArn': Object.values(alarms).map((a) => a.alarmArn) },
        },
      }),
    );

    // The agents report as `xl-agent-<type>`: SEARCH finds every type, SUM adds them up.
    const search = (metricName: string, dimensions: string[], statistic: string, label: string, sum = true) => {
      const query = `SEARCH('{${this.namespace},${dimensions.join(',')}} MetricName="${metricName}"', '${statistic}', 300)`;
      return new cloudwatch.MathExpression({ expression: sum ? `SUM(${query})` : query, label, period: FIVE_MINUTES });
    };
    const retries = new cloudwatch.Metric({
      namespace: this.namespace,
      metricName: METRIC.retries,
      dimensionsMap: { service: METRIC_SERVICE.steps },
      statistic: cloudwatch.Stats.SUM,
      period: FIVE_MINUTES,
      label: 'retries',
    });
    const machines = [sequential, parallel, pipeline];

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${stackName}-execution-layer`,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Tasks',
        left: [
          search(METRIC.tasksStarted, ['service'], 'Sum', 'started'),
          search(METRIC.tasksCompleted, ['service'], 'Sum', 'completed'),
          search(METRIC.tasksFailed, [METRIC_DIMENSION.errorType, 'service'], 'Sum', 'failed'),
          retries,
          // Completed from the result cache (Gate or an agent), no run.
          search(METRIC.cacheHits, ['service'], 'Sum', 'from cache'),
        ],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Failed tasks by error type',
        left: [search(METRIC.tasksFailed, [METRIC_DIMENSION.errorType, 'service'], 'Sum', '', false)],
        stacked: true,
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Queue wait and task duration (ms)',
        left: [search(METRIC.queueWait, ['service'], 'Average', 'queue wait (avg)', false)],
        right: [search(METRIC.taskDuration, ['service'], 'Average', 'task duration (avg)', false)],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Task cost (USD)',
        left: [search(METRIC.taskCost, ['service'], 'Sum', 'cost')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Agents by status',
        left: [search(METRIC.agents, ['service', METRIC_DIMENSION.status], 'Maximum', '', false)],
        stacked: true,
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Breakers open',
        left: [breakersOpen],
        leftAnnotations: [{ value: 1, label: 'open' }],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Executions',
        left: machines.flatMap((m) => [
          m.metricStarted({ period: FIVE_MINUTES }),
          m.metricSucceeded({ period: FIVE_MINUTES }),
          m.metricFailed({ period: FIVE_MINUTES }),
        ]),
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'Execution duration (ms, max)',
        left: machines.map((m) => m.metricTime({ period: FIVE_MINUTES, statistic: cloudwatch.Stats.MAXIMUM })),
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Lambda errors and throttles',
        left: props.functions.map((f) => f.function.metricErrors({ period: FIVE_MINUTES, label: `${f.logicalId} errors` })),
        right: props.functions.map((f) => f.function.metricThrottles({ period: FIVE_MINUTES, label: `${f.logicalId} throttles` })),
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'API',
        left: [props.api.restApi.metricCount({ period: FIVE_MINUTES }), props.api.restApi.metricServerError({ period: FIVE_MINUTES }), props.api.restApi.metricClientError({ period: FIVE_MINUTES })],
        right: [props.api.restApi.metricLatency({ period: FIVE_MINUTES, statistic: 'p90' })],
        width: 12,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(alarms), width: 24 }),
    );
  }
}
