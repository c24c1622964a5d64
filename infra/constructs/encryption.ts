// `-c kms=true`: one customer managed key, rotated yearly, for the layer's data at rest: the task
// queues and DLQs, the execution-events DLQ, the three tables, the payload bucket and every log group
// of the stack. Off by default: AWS owned/managed keys cost nothing and need no key policy; a CMK
// costs per month and per request, and lets a platform team own, audit and revoke the key.
import { Aws, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';

/** What a role that reads and writes encrypted data needs on the key (no action wildcards). */
export const DATA_KEY_ACTIONS = ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'];

export class DataEncryption extends Construct {
  readonly key: kms.Key;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const stack = Stack.of(this);
    this.key = new kms.Key(this, 'Key', {
      description: `${stack.stackName}: the execution layer's queues, tables, payload bucket and log groups`,
      enableKeyRotation: true,
      // The data it encrypts is retained (tables, bucket): so is the key, or that data is lost.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch Logs encrypts a log group's events with the key only under this encryption context
    // (CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS", step 2: the
    // key policy for logs.<region>.amazonaws.com with kms:EncryptionContext:aws:logs:arn). The log
    // groups cannot be named here: they depend on the key, so their ARNs would make a cycle.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchLogsOfThisAccountAndRegion',
        principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` },
        },
      }),
    );
    // EventBridge puts undeliverable status-change events on the execution-events DLQ (EventBridge
    // User Guide, "Using dead-letter queues": an encrypted queue needs the key to allow events.amazonaws.com).
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeDeadLetters',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
  }

  /** SSE-KMS with this key instead of SSE-SQS. */
  encryptQueue(queue: sqs.Queue): void {
    const cfn = queue.node.defaultChild as sqs.CfnQueue;
    cfn.sqsManagedSseEnabled = undefined;
    cfn.kmsMasterKeyId = this.key.keyArn;
  }

  encryptTable(table: dynamodb.Table): void {
    const cfn = table.node.defaultChild as dynamodb.CfnTable;
    cfn.sseSpecification = { sseEnabled: true, sseType: 'KMS', kmsMasterKeyId: this.key.keyArn };
  }

  /** SSE-KMS with an S3 Bucket Key (fewer KMS requests). Not for a server access logs target, which must use SSE-S3. */
  encryptBucket(bucket: s3.Bucket): void {
    const cfn = bucket.node.defaultChild as s3.CfnBucket;
    cfn.bucketEncryption = {
      serverSideEncryptionConfiguration: [
        { serverSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: this.key.keyArn }, bucketKeyEnabled: true },
      ],
    };
  }

  /** Every log group under `scope` (functions, state machines, agents, API access logs, flow logs). */
  encryptLogGroups(scope: IConstruct): number {
    const groups = scope.node.findAll().filter((c): c is logs.CfnLogGroup => c instanceof logs.CfnLogGroup);
    for (const g of groups) g.kmsKeyId = this.key.keyArn;
    return groups.length;
  }

  /** Read and write data under the key (explicit actions: cdk-nag refuses action wildcards). */
  grantData(...grantees: iam.IGrantable[]): void {
    for (const grantee of grantees) this.key.grant(grantee, ...DATA_KEY_ACTIONS);
  }
}
