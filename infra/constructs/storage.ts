// The payload bucket: plans, large values (claim-check) and task artifacts.
import { CfnResource, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Objects under this prefix are scratch data and expire. */
export const TMP_PREFIX = 'tmp/';
export const TMP_EXPIRY_DAYS = 30;
/**
 * Where agents write (agent/worker.ts, agent/checkpoint.ts): task outputs, artifacts (transcripts)
 * and checkpoints. They read anywhere: plans, inputs and earlier outputs are named by the records.
 */
export const AGENT_WRITE_PREFIXES = ['outputs/', 'artifacts/', 'checkpoints/'];

export class PayloadStorage extends Construct {
  readonly bucket: s3.Bucket;
  /** Receives the payload bucket's server access logs (and nothing else). */
  readonly accessLogsBucket: s3.Bucket;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogsBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      // Object ownership left to CDK: a bucket policy for log delivery with the current feature flags,
      // the log-delivery ACL (ObjectWriter) without them (as when an app is built without cdk.json).
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(90) }],
    });
    this.bucket = new s3.Bucket(this, 'PayloadBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      versioned: false,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'payload/',
      lifecycleRules: [
        { id: 'expire-tmp', prefix: TMP_PREFIX, expiration: Duration.days(TMP_EXPIRY_DAYS) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      ],
    });
    (this.bucket.node.defaultChild as CfnResource).overrideLogicalId('PayloadBucket');
  }

  get environment(): Record<string, string> {
    return { XL_BUCKET: this.bucket.bucketName };
  }

  /**
   * Get and put objects, list keys. Narrower than Bucket.grantReadWrite (no s3:DeleteObject*, no
   * s3:PutObjectRetention/LegalHold, no action wildcards): nothing in the layer deletes payloads;
   * `tmp/` expires by lifecycle.
   */
  grantReadWrite(grantee: iam.IGrantable): iam.Grant {
    iam.Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket'], resourceArns: [this.bucket.bucketArn] });
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
      resourceArns: [this.bucket.arnForObjects('*')],
    });
  }

  /** An agent's worker: get any object (definitions, inputs, outputs of earlier tasks), put under AGENT_WRITE_PREFIXES only. */
  grantAgentAccess(grantee: iam.IGrantable): void {
    // ListBucket makes a missing key a 404 (NoSuchKey) instead of a 403.
    iam.Grant.addToPrincipal({ grantee, actions: ['s3:ListBucket'], resourceArns: [this.bucket.bucketArn] });
    iam.Grant.addToPrincipal({ grantee, actions: ['s3:GetObject'], resourceArns: [this.bucket.arnForObjects('*')] });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
      resourceArns: AGENT_WRITE_PREFIXES.map((p) => this.bucket.arnForObjects(`${p}*`)),
    });
  }
}
