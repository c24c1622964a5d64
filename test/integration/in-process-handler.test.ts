// The local layer's own SDK clients call dynalite and fauxqs in its process (local/services/in-process.ts):
// the real clients and the real emulators, with the TCP hop taken out.
import { createServer, type RequestListener, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessHandler } from '../../local/services/in-process.ts';
import { inProcessEnabled } from '../../local/switches.ts';
import { type Emulators, LOCAL_CLIENT, startEmulators } from '../support/emulators.ts';
import { waitFor } from '../support/processes.ts';

let emulators: Emulators;
let ddb: DynamoDBDocumentClient;
let sqs: SQSClient;
let s3: S3Client;
let queueUrl: string;
/** TCP connections the emulators accepted while the in-process clients were used. */
let connections = 0;
/** The requests fauxqs' listener was given, by X-Amz-Target (or method). */
const fauxqsRequests: string[] = [];

beforeAll(async () => {
  emulators = await startEmulators({ prefix: 'inproc-', queues: ['coder'] });
  const { dynamo, fauxqs } = emulators;
  ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: dynamo.endpoint, requestHandler: new InProcessHandler(dynamo.server) }));
  const sqsAndS3 = new InProcessHandler(fauxqs.server);
  sqs = new SQSClient({ ...LOCAL_CLIENT, endpoint: fauxqs.endpoint, requestHandler: sqsAndS3 });
  s3 = new S3Client({ ...LOCAL_CLIENT, endpoint: fauxqs.endpoint, forcePathStyle: true, requestHandler: sqsAndS3 });
  queueUrl = `${emulators.queuePrefix}coder-normal`;
  for (const server of [dynamo.server, fauxqs.server]) server.on('connection', () => connections++);
  fauxqs.server.on('request', (req) => fauxqsRequests.push(String(req.headers['x-amz-target'] ?? req.method)));
});

afterAll(async () => {
  await emulators?.close();
});

describe('the in-process handler on dynalite', () => {
  it('puts, gets and updates an item, and a failed condition arrives as ConditionalCheckFailedException', async () => {
    const TableName = emulators.tables.executions;
    const Key = { pk: 'EXEC#1', sk: 'META' };
    await ddb.send(new PutCommand({ TableName, Item: { ...Key, status: 'RUNNING', n: 1 } }));
    expect((await ddb.send(new GetCommand({ TableName, Key }))).Item).toEqual({ ...Key, status: 'RUNNING', n: 1 });

    await ddb.send(new UpdateCommand({ TableName, Key, UpdateExpression: 'SET n = n + :one', ConditionExpression: '#s = :running', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':one': 1, ':running': 'RUNNING' } }));
    const refused = ddb.send(new UpdateCommand({ TableName, Key, UpdateExpression: 'SET n = :zero', ConditionExpression: '#s = :done', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':zero': 0, ':done': 'SUCCEEDED' } }));
    await expect(refused).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    expect((await ddb.send(new GetCommand({ TableName, Key }))).Item?.n).toBe(2);
  });
});

describe('the in-process handler on fauxqs', () => {
  it('sends, receives and deletes a message', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '{"task":"t1"}', MessageAttributes: { kind: { DataType: 'String', StringValue: 'task' } } }));
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
    expect(Messages?.map((m) => [m.Body, m.MessageAttributes?.kind?.StringValue])).toEqual([['{"task":"t1"}', 'task']]);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: Messages![0]!.ReceiptHandle! }));
    const after = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, VisibilityTimeout: 0 }));
    expect(after.Messages ?? []).toEqual([]);
  });

  it('answers a long poll on an empty queue with a message sent after the poll was made, well before the poll’s wait is up', async () => {
    const asked = fauxqsRequests.length;
    const began = Date.now();
    const poll = sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 20 }));
    await waitFor(() => fauxqsRequests.slice(asked).includes('AmazonSQS.ReceiveMessage'));
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'later' }));
    const { Messages } = await poll;
    expect(Messages?.map((m) => m.Body)).toEqual(['later']);
    expect(Date.now() - began).toBeLessThan(10_000);
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: Messages![0]!.ReceiptHandle! }));
  });

  it('rejects an aborted long poll with an AbortError at once, and the emulator serves the next call', async () => {
    const asked = fauxqsRequests.length;
    const controller = new AbortController();
    const poll = sqs.send(new ReceiveMessageCommand({ QueueUrl: `${emulators.queuePrefix}coder-low`, WaitTimeSeconds: 20 }), { abortSignal: controller.signal });
    await waitFor(() => fauxqsRequests.slice(asked).includes('AmazonSQS.ReceiveMessage'));
    const began = Date.now();
    controller.abort();
    await expect(poll).rejects.toMatchObject({ name: 'AbortError' });
    expect(Date.now() - began).toBeLessThan(10_000); // not the poll's 20 s (generous: a loaded machine must not fail this)
    await expect(sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'after the abort' }))).resolves.toHaveProperty('MessageId');
    await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 })).then(({ Messages }) =>
      Promise.all((Messages ?? []).map((m) => sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! })))),
    );
  });

  it('never hands the emulator a request whose signal was aborted before it was sent', async () => {
    const asked = fauxqsRequests.length;
    const controller = new AbortController();
    controller.abort();
    await expect(sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'never' }), { abortSignal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(fauxqsRequests.slice(asked)).toEqual([]);
  });

  it('puts and gets a 1 MB object, from bytes and from a stream, the body streamed back', async () => {
    const bytes = randomBytes(1024 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: emulators.bucket, Key: 'one-mb', Body: bytes }));
    const got = await s3.send(new GetObjectCommand({ Bucket: emulators.bucket, Key: 'one-mb' }));
    expect(got.Body).toBeInstanceOf(Readable);
    expect(got.ContentLength).toBe(bytes.length);
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(bytes)).toBe(true);

    const chunks = Array.from({ length: 16 }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536));
    await s3.send(new PutObjectCommand({ Bucket: emulators.bucket, Key: 'streamed', Body: Readable.from(chunks), ContentLength: bytes.length }));
    const streamed = await s3.send(new GetObjectCommand({ Bucket: emulators.bucket, Key: 'streamed' }));
    expect(Buffer.from(await streamed.Body!.transformToByteArray()).equals(bytes)).toBe(true);
  });

  it('opened no TCP connection to either emulator', () => {
    expect(connections).toBe(0);
  });
});

describe('the in-process handler when the emulator fails', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  });
  async function emulator(listener: RequestListener): Promise<SQSClient> {
    const server = createServer(listener);
    servers.push(server);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    // One attempt: the error itself is the subject, not the SDK's retries.
    return new SQSClient({ ...LOCAL_CLIENT, endpoint: 'http://127.0.0.1:9', maxAttempts: 1, requestHandler: new InProcessHandler(server) });
  }
  const send = (client: SQSClient) => client.send(new SendMessageCommand({ QueueUrl: 'http://127.0.0.1:9/000000000000/q', MessageBody: 'x' }));

  it('gives the caller the error an emulator throws', async () => {
    const client = await emulator(() => {
      throw new Error('the emulator broke');
    });
    await expect(send(client)).rejects.toThrow('the emulator broke');
  });

  it('gives the caller an error when the emulator destroys its response unanswered', async () => {
    const client = await emulator((_req, res) => void setImmediate(() => res.destroy()));
    await expect(send(client)).rejects.toMatchObject({ code: 'LIGHT_ECONNRESET' });
  });

  it('refuses a request to an emulator that is closed', async () => {
    const server = createServer(() => undefined);
    const client = new SQSClient({ ...LOCAL_CLIENT, endpoint: 'http://127.0.0.1:9', maxAttempts: 1, requestHandler: new InProcessHandler(server) });
    await expect(send(client)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('rejects with a TimeoutError an emulator that does not answer within the requestTimeout', async () => {
    const server = createServer(() => undefined); // never answers
    servers.push(server);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const client = new SQSClient({ ...LOCAL_CLIENT, endpoint: 'http://127.0.0.1:9', maxAttempts: 1, requestHandler: new InProcessHandler(server, { requestTimeout: 50 }) });
    await expect(send(client)).rejects.toMatchObject({ name: 'TimeoutError' });
  });
});

describe('XL_LOCAL_INPROCESS', () => {
  it('is on unless 0 or false, and names itself when it is neither', () => {
    expect([undefined, '', '1', 'true'].map((v) => inProcessEnabled({ XL_LOCAL_INPROCESS: v }))).toEqual([true, true, true, true]);
    expect(['0', 'false'].map((v) => inProcessEnabled({ XL_LOCAL_INPROCESS: v }))).toEqual([false, false]);
    expect(() => inProcessEnabled({ XL_LOCAL_INPROCESS: 'yes' })).toThrow(/XL_LOCAL_INPROCESS must be 1 .* or 0 .*got "yes"/);
  });
});
