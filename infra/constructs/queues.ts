// One queue per agent type and priority, each with its dead-letter queue. Names are deterministic
// (`<stack>-<type>-<priority>`) so that a single prefix variable reaches all of them.
import { ArnFormat, Aws, CfnResource, Duration, Fn, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AGENT_TYPES, PRIORITIES, type AgentType, type Priority, queueKey } from '../../core/agent-types.ts';

/** Agents extend visibility while they run; this is only the first lease on a received message. */
export const QUEUE_VISIBILITY_TIMEOUT = Duration.seconds(120);
export const QUEUE_MAX_RECEIVE_COUNT = 5;

const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export class TaskQueues extends Construct {
  /** Task queues keyed by `queueKey(type, priority)`, e.g. `coder-high`. */
  readonly queues: Readonly<Record<string, sqs.Queue>>;
  /** Their dead-letter queues, same keys. */
  readonly deadLetterQueues: Readonly<Record<string, sqs.Queue>>;
  /** `https://sqs.<region>.<urlSuffix>/<account>/<stack>-`: append `<type>-<priority>` for a queue URL. */
  readonly urlPrefix: string;
  /** `<stack>-`: the common prefix of every queue name. */
  readonly namePrefix: string;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const stack = Stack.of(this);
    this.namePrefix = `${stack.stackName}-`;
    const queues: Record<string, sqs.Queue> = {};
    const dlqs: Record<string, sqs.Queue> = {};
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
      }
    }
    this.queues = queues;
    this.deadLetterQueues = dlqs;
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
   * ARN pattern of the stack's queues (`<stack>-*`): exactly the task queues and their DLQs. One
   * pattern instead of 66 ARNs keeps the policies of the roles that read every queue small.
   */
  get queueArnPattern(): string {
    return Stack.of(this).formatArn({ service: 'sqs', resource: `${this.namePrefix}*`, arnFormat: ArnFormat.NO_RESOURCE_NAME });
  }

  /** sqs:GetQueueAttributes on every queue and DLQ (backlog and health views). */
  grantReadAttributes(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['sqs:GetQueueAttributes'], resourceArns: [this.queueArnPattern] });
  }
}
