// The layer's events on AWS (core/events.ts; the design's Monitor and Notification agents): an
// EventBridge bus of the stack that the functions put them on, a rule that sends the ones a person
// should hear of to a notification topic, and, with `-c webhookUrl=`, a rule that sends every event
// to that URL as an EventBridge API destination.
//
// Why a topic of its own rather than the alarm topic: alarms are an operator's pages about the layer
// (a few a day at most), notifications are about users' executions (one per failed run); people
// subscribe to one or the other, and the alarm topic's policy admits only this stack's alarms.
import { CfnOutput, Duration, RemovalPolicy, SecretValue, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EVENT_SOURCE } from '../../core/aws/event-bus.ts';
import { NOTIFY_KINDS } from '../../core/events.ts';

/** The header the webhook's API key travels in (the Connection's API key authorization). */
export const WEBHOOK_KEY_HEADER = 'X-XL-Webhook-Key';

export interface LayerEventsProps {
  /**
   * Every event is POSTed here (an API destination): HTTPS, as EventBridge requires of an API
   * destination's endpoint. Without it there is no webhook.
   */
  readonly webhookUrl?: string;
  /**
   * A Secrets Manager secret (ARN) whose value the webhook receives in X-XL-Webhook-Key. A Connection
   * must authorize (Basic, API key or OAuth; EventBridge user guide, "Authorization methods for
   * connections"), so without it the stack generates one (output WebhookKeySecretArn).
   */
  readonly webhookKeySecretArn?: string;
  /** Subscribes this address to the notification topic; SNS asks it to confirm. */
  readonly notificationEmail?: string;
}

export class LayerEvents extends Construct {
  readonly bus: events.EventBus;
  readonly notificationTopic: sns.Topic;
  readonly notificationKey: kms.Key;
  readonly notifyRule: events.Rule;
  /** The role the notify rule publishes with (sns:Publish on the topic, the topic's key). */
  readonly notifyRole: iam.Role;
  /** Events EventBridge could not deliver to the topic or the webhook after its retries. */
  readonly deadLetters: sqs.Queue;
  readonly webhook?: { destination: events.ApiDestination; connection: events.Connection; rule: events.Rule; keySecret: secretsmanager.ISecret };
  /** XL_EVENT_BUS for the functions: a literal name, so the local layer resolves it too. */
  readonly environment: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: LayerEventsProps = {}) {
    super(scope, id);
    const stackName = Stack.of(this).stackName;
    const busName = `${stackName}-events`;
    this.bus = new events.EventBus(this, 'Bus', { eventBusName: busName, description: `${stackName}: the execution layer's events (source ${EVENT_SOURCE})` });
    this.environment = { XL_EVENT_BUS: busName };

    this.deadLetters = new sqs.Queue(this, 'DeadLetters', {
      // Not `-events-dlq`: a stack named `<stack>-execution` would then own this stack's
      // `<stack>-execution-events-dlq` (the execution-events function's DLQ).
      queueName: `${stackName}-layer-events-dlq`,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    // A customer managed key: the AWS managed key for SNS cannot be used by a publisher that is not
    // in the account's IAM (its policy cannot be changed); EventBridge publishes with a role of the
    // rule (authorizeUsingRole), granted the key by grantPublish, so the topic's policy admits no
    // service principal at all (SNS developer guide, "Enable compatibility between event sources
    // from AWS services and encrypted topics").
    this.notificationKey = new kms.Key(this, 'NotificationTopicKey', {
      description: `${stackName}: encrypts the notification topic`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.notificationTopic = new sns.Topic(this, 'NotificationTopic', {
      topicName: `${stackName}-notifications`,
      displayName: `${stackName} execution layer notifications`,
      masterKey: this.notificationKey,
      enforceSSL: true,
    });
    if (props.notificationEmail !== undefined) {
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.notificationEmail)) throw new Error(`notificationEmail must be an email address, got "${props.notificationEmail}"`);
      this.notificationTopic.addSubscription(new subscriptions.EmailSubscription(props.notificationEmail));
    }

    // EventBridge's retry policy (up to 24 hours), then the dead-letter queue; CDK adds the queue
    // policy that lets these rules (aws:SourceArn) send to it.
    const delivery = { retryAttempts: 185, maxEventAge: Duration.hours(24), deadLetterQueue: this.deadLetters };
    this.notifyRole = new iam.Role(this, 'NotifyRole', {
      description: `${stackName}: EventBridge publishes the notify rule's events to the notification topic`,
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
    });
    this.notifyRule = new events.Rule(this, 'Notify', {
      ruleName: `${stackName}-notify`,
      description: 'The events a person should hear of, to the notification topic',
      eventBus: this.bus,
      eventPattern: { source: [EVENT_SOURCE], detailType: [...NOTIFY_KINDS] },
      targets: [new targets.SnsTopic(this.notificationTopic, { ...delivery, authorizeUsingRole: true, role: this.notifyRole })],
    });

    if (props.webhookUrl !== undefined) {
      let url: URL;
      try {
        url = new URL(props.webhookUrl);
      } catch {
        throw new Error(`webhookUrl is not a URL: "${props.webhookUrl}"`);
      }
      if (url.protocol !== 'https:') throw new Error(`webhookUrl must be https (an EventBridge API destination's endpoint is), got ${url.protocol}`);
      const keySecret = props.webhookKeySecretArn
        ? secretsmanager.Secret.fromSecretCompleteArn(this, 'WebhookKey', props.webhookKeySecretArn)
        : new secretsmanager.Secret(this, 'WebhookKey', {
            secretName: `${stackName}/webhook-key`,
            description: `${stackName}: the key the webhook receives in ${WEBHOOK_KEY_HEADER}`,
            generateSecretString: { passwordLength: 48, excludePunctuation: true },
          });
      // EventBridge keeps its own copy of the key in a secret it manages (events!connection/...).
      const connection = new events.Connection(this, 'WebhookConnection', {
        connectionName: `${stackName}-webhook`,
        description: `${stackName}: authorizes the event webhook`,
        authorization: events.Authorization.apiKey(WEBHOOK_KEY_HEADER, SecretValue.secretsManager(keySecret.secretArn)),
      });
      const destination = new events.ApiDestination(this, 'WebhookDestination', {
        apiDestinationName: `${stackName}-webhook`,
        description: `${stackName}: every event, POSTed as EventBridge's JSON (the event in detail)`,
        connection,
        endpoint: props.webhookUrl,
        httpMethod: events.HttpMethod.POST,
        // A receiver is not flooded by a burst (a 10,000-task plan's failures): EventBridge queues and retries.
        rateLimitPerSecond: 20,
      });
      const rule = new events.Rule(this, 'Webhook', {
        ruleName: `${stackName}-webhook`,
        description: 'Every event of the layer, to the webhook',
        eventBus: this.bus,
        eventPattern: { source: [EVENT_SOURCE] },
        targets: [new targets.ApiDestination(destination, delivery)],
      });
      this.webhook = { destination, connection, rule, keySecret };
      if (!props.webhookKeySecretArn) new CfnOutput(Stack.of(this), 'WebhookKeySecretArn', { value: keySecret.secretArn, description: `The value the webhook receives in ${WEBHOOK_KEY_HEADER}` });
    }
  }

  /** cdk-nag findings that stand, with why (infra/nag.ts acknowledges them on these constructs). */
  nagAcknowledgments(): [Construct, string, string][] {
    const out: [Construct, string, string][] = [
      [this.deadLetters, 'AwsSolutions-SQS3', "It is a dead-letter queue: the target DLQ of the notification and webhook rules (EventBridge's, not a redrive policy, which the rule looks for)."],
    ];
    out.push([
      this.notifyRole,
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      "GenerateDataKey* (GenerateDataKey and GenerateDataKeyWithoutPlaintext) on the notification topic's own key only: what SNS asks of a publisher to an encrypted topic.",
    ]);
    const generated = this.webhook?.keySecret;
    if (generated instanceof secretsmanager.Secret) {
      out.push([generated, 'AwsSolutions-SMG4', 'A shared key the webhook receiver checks: rotating it means changing the receiver at the same moment, which no rotation function can do; rotate by hand (put a new value, then update the receiver).']);
    }
    return out;
  }

  /** Lets these functions put events on the bus. */
  grantPut(functions: { role: iam.IGrantable }[]): void {
    for (const fn of functions) this.bus.grantPutEventsTo(fn.role);
  }


}
