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
import type { HttpHandlerOptions, HttpRequest, HttpResponse, RequestHandler } from '@smithy/types';

/** The services whose clients can be given a request handler of their own. */
export type HandledService = 'dynamodb' | 'sqs' | 's3';
export type ClientRequestHandler = RequestHandler<HttpRequest, HttpResponse, HttpHandlerOptions>;

/**
 * The request handler each service's clients are built with: the SDK's own (HTTP to the endpoint)
 * unless set. Only the embedded local layer sets one, before it builds any client: its clients then
 * call the emulators in its own process (local/services/in-process.ts); the code that does is not
 * imported here, so the Lambda bundles do not carry it.
 */
let requestHandlers: Partial<Record<HandledService, ClientRequestHandler>> = {};
export function handleRequestsWith(handlers: Partial<Record<HandledService, ClientRequestHandler>>): void {
  requestHandlers = { ...handlers };
}
/** The config that gives a client of `service` its request handler, if one is set. */
export function requestHandlerOf(service: HandledService): { requestHandler?: ClientRequestHandler } {
  const requestHandler = requestHandlers[service];
  return requestHandler ? { requestHandler } : {};
}

/** A lazily built value, built at most once. */
export function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

export const ddbClient = /* @__PURE__ */ once(() =>
  DynamoDBDocumentClient.from(new DynamoDBClient(requestHandlerOf('dynamodb')), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  }),
);

// Path-style addressing works with every S3 emulator and with AWS.
export const s3Client = /* @__PURE__ */ once(() => new S3Client({ forcePathStyle: process.env.AWS_ENDPOINT_URL_S3 !== undefined, ...requestHandlerOf('s3') }));

export const sfnClient = /* @__PURE__ */ once(() => new SFNClient({}));

export const secretsManagerClient = /* @__PURE__ */ once(() => new SecretsManagerClient({}));

export const ecsClient = /* @__PURE__ */ once(() => new ECSClient({}));

export const eventBridgeClient = /* @__PURE__ */ once(() => new EventBridgeClient({}));

export const logsClient = /* @__PURE__ */ once(() => new CloudWatchLogsClient({}));

/**
 * Queue URLs name AWS's host even locally (they are built from the stack's pseudo parameters), so
 * with an endpoint override the client must send to the endpoint, not to the URL's host; emulators
 * find the queue by the name at the end of the URL.
 */
export function sqsClient(): SQSClient {
  return new SQSClient({ useQueueUrlAsEndpoint: process.env.AWS_ENDPOINT_URL_SQS === undefined, ...requestHandlerOf('sqs') });
}
export const sharedSqsClient = /* @__PURE__ */ once(sqsClient);
