// The one place that builds AWS clients, each once per process and only when first used, so that a
// Lambda bundle carries only the clients its handler calls. Endpoints come from the environment
// (AWS_ENDPOINT_URL_*), so the same code talks to AWS, LocalStack or the embedded local layer.
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { ECSClient } from '@aws-sdk/client-ecs';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * What is done to each client as it is built: nothing by default. The Lambda handlers pass X-Ray's
 * capture here (functions/lib/observability.ts), so the core and the agents never load Powertools.
 */
let capture: <C extends object>(client: C) => C = (client) => client;
export function captureClientsWith(fn: <C extends object>(client: C) => C): void {
  capture = fn;
}

/** A lazily built value, built at most once. */
export function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

export const ddbClient = /* @__PURE__ */ once(() =>
  // Captured before wrapping: the document client shares the base client's middleware stack.
  DynamoDBDocumentClient.from(capture(new DynamoDBClient({})), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  }),
);

// Path-style addressing works with every S3 emulator and with AWS.
export const s3Client = /* @__PURE__ */ once(() => capture(new S3Client({ forcePathStyle: process.env.AWS_ENDPOINT_URL_S3 !== undefined })));

export const sfnClient = /* @__PURE__ */ once(() => capture(new SFNClient({})));

export const secretsManagerClient = /* @__PURE__ */ once(() => capture(new SecretsManagerClient({})));

export const ecsClient = /* @__PURE__ */ once(() => capture(new ECSClient({})));

export const eventBridgeClient = /* @__PURE__ */ once(() => capture(new EventBridgeClient({})));

export const logsClient = /* @__PURE__ */ once(() => capture(new CloudWatchLogsClient({})));

/**
 * Queue URLs name AWS's host even locally (they are built from the stack's pseudo parameters), so
 * with an endpoint override the client must send to the endpoint, not to the URL's host; emulators
 * find the queue by the name at the end of the URL.
 */
export function sqsClient(): SQSClient {
  return capture(new SQSClient({ useQueueUrlAsEndpoint: process.env.AWS_ENDPOINT_URL_SQS === undefined }));
}
export const sharedSqsClient = /* @__PURE__ */ once(sqsClient);
