// One queue per agent type and priority, each with its dead-letter queue. Names are deterministic
// (`<stack>_<type>-<priority>`) so that a single prefix variable reaches all of them. The underscore
// is what scopes the IAM patterns to this stack: CloudFormation stack names allow only letters,
// digits and hyphens, so `xl_*` matches stack `xl`'s queues and never those of a stack `xl-staging`
// (whose are `xl-staging_*`), as `xl-*` would. SQS names allow letters, digits, `-` and `_`, up to
// 80 characters (SQS Developer Guide, "Amazon SQS queue quotas").
import { ArnFormat, Aws, CfnResource, Duration, Fn, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AGENT_TYPES, PRIORITIES, type AgentType, type Priority, queueKey } from '../../core/agent-types.ts';
import { MAX_RECEIVE_COUNT } from '../../core/dead-letters.ts';

/** Between the stack name and the queue key: a character stack names cannot hold (see above). */
export const QUEUE_NAME_SEPARATOR = '_';
/** SQS's limit on a queue name. */
export const QUEUE_NAME_MAX_LENGTH = 80;

/** Agents extend visibility while they run; this is only the first lease on a received message. */
export const QUEUE_VISIBILITY_TIMEOUT = Duration.seconds(120);
export const QUEUE_MAX_RECEIVE_COUNT = MAX_RECEIVE_COUNT;

const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export class TaskQueues extends Construct {
  /** Task queues keyed by `queueKey(type, priority)`, e.g. `coder-high`. */
  readonly queues: Readonly<Record<string, sqs.Queue>>;
  /** Their dead-letter queues, same keys. */
  readonly deadLetterQueues: Readonly<Record<string, sqs.Queue>>;
  /**
   * One alarm per DLQ, in alarm while it holds a message (a dispatch no agent could finish). They
   * have no actions: a deployment adds its own (an SNS topic, a chat channel) with addAlarmAction.
   */
  readonly deadLetterAlarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** `https://sqs.<region>.<urlSuffix>/<account>/<stack>_`: append `<type>-<priority>` for a queue URL. */
  readonly urlPrefix: string;
  /** `<stack>_`: the common prefix of every task queue and DLQ name, and of nothing else. */
  readonly namePrefix: string;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const stack = Stack.of(this);
    this.namePrefix = `${stack.stackName}${QUEUE_NAME_SEPARATOR}`;
    const longest = Math.max(...AGENT_TYPES.flatMap((t) => PRIORITIES.map((p) => `${this.namePrefix}${queueKey(t, p)}-dlq`.length)));
    if (longest > QUEUE_NAME_MAX_LENGTH) {
      throw new Error(
        `stack name "${stack.stackName}" is too long for the queue names (<stack>_<type>-<priority>-dlq reaches ${longest} characters; SQS allows ${QUEUE_NAME_MAX_LENGTH}): use at most ${stack.stackName.length - (longest - QUEUE_NAME_MAX_LENGTH)} characters`,
      );
    }
    const queues: Record<string, sqs.Queue> = {};
    const dlqs: Record<string, sqs.Queue> = {};
    const alarms: Record<string, cloudwatch.Alarm> = {};
    for (const type of AGENT_TYPES) {
      for (const priority of PRIORITIES) {
        const key = queueKey(type, priority);
        const logical = `${pascal(type)}${pascal(priority)}`;
        const dlq = new sqs.Queue(this, `${logical}Dlq`, {
          queueName: `${this.namePrefix}${key}-dlq`,
          encryption: sqs.QueueEncryption.SQS_MANAGED,
          enforceSSL: true,
          retentionPeriod: Duration.days(14),
        });
        const queue = new sqs.Queue(this, `${logical}Queue`, {
          queueName: `${this.namePrefix}${key}`,
          encryption: sqs.QueueEncryption.SQS_MANAGED,
          enforceSSL: true,
          visibilityTimeout: QUEUE_VISIBILITY_TIMEOUT,
          retentionPeriod: Duration.days(14),
          deadLetterQueue: { queue: dlq, maxReceiveCount: QUEUE_MAX_RECEIVE_COUNT },
        });
        (dlq.node.defaultChild as CfnResource).overrideLogicalId(`${logical}Dlq`);
        (queue.node.defaultChild as CfnResource).overrideLogicalId(`${logical}Queue`);
        queues[key] = queue;
        dlqs[key] = dlq;
        // SQS sends its metrics each minute; any visible message in a DLQ is worth a look.
        alarms[key] = new cloudwatch.Alarm(this, `${logical}DlqAlarm`, {
          alarmName: `${stack.stackName}-${key}-dlq-depth`,
          alarmDescription: `${key}: a dispatch reached the dead-letter queue (agents kept dying on it or could not handle it); see GET /dead-letters`,
          metric: dlq.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM }),
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        });
        (alarms[key].node.defaultChild as CfnResource).overrideLogicalId(`${logical}DlqAlarm`);
      }
    }
    this.queues = queues;
    this.deadLetterQueues = dlqs;
    this.deadLetterAlarms = alarms;
    this.urlPrefix = Fn.join('', ['https://sqs.', Aws.REGION, '.', Aws.URL_SUFFIX, '/', Aws.ACCOUNT_ID, '/', this.namePrefix]);
  }

  queue(type: AgentType, priority: Priority): sqs.Queue {
    const q = this.queues[queueKey(type, priority)];
    if (!q) throw new Error(`no queue for ${type}/${priority}`);
    return q;
  }

  /** The task queues (not the DLQs) of one agent type, high priority first. */
  queuesOf(type: AgentType): sqs.Queue[] {
    return PRIORITIES.map((p) => this.queue(type, p));
  }

  /** Every task queue (not the DLQs). */
  get taskQueues(): sqs.Queue[] {
    return Object.values(this.queues);
  }

  /** Task queues and DLQs. */
  get allQueues(): sqs.Queue[] {
    return [...Object.values(this.queues), ...Object.values(this.deadLetterQueues)];
  }

  get environment(): Record<string, string> {
    return { XL_QUEUE_URL_PREFIX: this.urlPrefix };
  }

  /**
   * ARN pattern of the stack's queues (`<stack>_*`): exactly the task queues and their DLQs (the
   * execution-events DLQ is `<stack>-execution-events-dlq`, outside it). One pattern instead of 66
   * ARNs keeps the policies of the roles that read every queue small.
   */
  get queueArnPattern(): string {
    return Stack.of(this).formatArn({ service: 'sqs', resource: `${this.namePrefix}*`, arnFormat: ArnFormat.NO_RESOURCE_NAME });
  }

  /**
   * ARN pattern of the agents' direct queues (affinity, core/affinity.ts): `<stack>_<type>-direct-*`
   * for one type's, every type's without one. The agents create them at start and delete them at
   * their drain (core/agent-types.ts directQueueName), so they are named by pattern only.
   */
  directQueueArnPattern(type?: AgentType): string {
    return Stack.of(this).formatArn({ service: 'sqs', resource: `${this.namePrefix}${type ?? '*'}-direct-*`, arnFormat: ArnFormat.NO_RESOURCE_NAME });
  }

  /** The pool manager's sweep of a dead agent's direct queue: drain it into the task queues, then delete it. */
  grantDirectQueueSweep(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:DeleteQueue'],
      resourceArns: [this.directQueueArnPattern()],
    });
    // Back to the task queues: on the stack's queue pattern, as the redrive's grant (33 queue ARNs
    // would overflow the pool manager's inline policy).
    iam.Grant.addToPrincipal({ grantee, actions: ['sqs:SendMessage'], resourceArns: [this.queueArnPattern] });
  }

  /** sqs:GetQueueAttributes on every queue and DLQ (backlog and health views). */
  grantReadAttributes(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['sqs:GetQueueAttributes'], resourceArns: [this.queueArnPattern] });
  }

  /** ARN pattern of the stack's task DLQs only (`<stack>_*-dlq`). */
  get deadLetterQueueArnPattern(): string {
    return Stack.of(this).formatArn({ service: 'sqs', resource: `${this.namePrefix}*-dlq`, arnFormat: ArnFormat.NO_RESOURCE_NAME });
  }

  /**
   * Reading the DLQs without consuming them (the dead-letter sweep, GET /dead-letters): receive,
   * then make visible again; depths.
   */
  grantDeadLetterRead(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
      resourceArns: [this.deadLetterQueueArnPattern],
    });
  }

  /**
   * POST /dead-letters/redrive: StartMessageMoveTask needs, on the DLQ, sqs:StartMessageMoveTask,
   * sqs:ReceiveMessage, sqs:DeleteMessage and sqs:GetQueueAttributes, and sqs:SendMessage on the
   * destination (the task queue the message came from). The same permissions serve the copying
   * redrive (receive, send, delete).
   */
  grantDeadLetterRedrive(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: [
        'sqs:StartMessageMoveTask',
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:GetQueueAttributes',
      ],
      resourceArns: [this.deadLetterQueueArnPattern],
    });
    // On the stack's queue pattern, which the backlog grant already names: one statement, where 33
    // queue ARNs (or a pattern per priority) push the API role's policy past IAM's size limit.
    iam.Grant.addToPrincipal({ grantee, actions: ['sqs:SendMessage'], resourceArns: [this.queueArnPattern] });
  }
}
