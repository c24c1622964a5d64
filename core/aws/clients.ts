// The one place that builds AWS clients. Endpoints come from the environment (AWS_ENDPOINT_URL_*),
// so the same code talks to AWS, LocalStack or the embedded local layer.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ECSClient } from '@aws-sdk/client-ecs';

export interface AwsClients {
  ddb: DynamoDBDocumentClient;
  s3: S3Client;
  sfn: SFNClient;
  sqs: SQSClient;
  ecs: ECSClient;
}

let shared: AwsClients | undefined;

export function awsClients(): AwsClients {
  if (shared) return shared;
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
  // Path-style addressing works with every S3 emulator and with AWS.
  const s3 = new S3Client({ forcePathStyle: process.env.AWS_ENDPOINT_URL_S3 !== undefined });
  shared = { ddb, s3, sfn: new SFNClient({}), sqs: sqsClient(), ecs: new ECSClient({}) };
  return shared;
}

/**
 * Queue URLs name AWS's host even locally (they are built from the stack's pseudo parameters), so
 * with an endpoint override the client must send to the endpoint, not to the URL's host; emulators
 * find the queue by the name at the end of the URL.
 */
export function sqsClient(): SQSClient {
  return new SQSClient({ useQueueUrlAsEndpoint: process.env.AWS_ENDPOINT_URL_SQS === undefined });
}
