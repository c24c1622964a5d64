// The two emulator launchers of the local layer, through the real AWS SDK clients.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  type CreateTableCommandInput,
  DeleteItemCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  UpdateTableCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ChangeMessageVisibilityCommand, CreateQueueCommand, ListQueuesCommand, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { startDynalite, waitForActiveTables } from '../../local/services/dynalite.ts';
import { startFauxqs127 } from '../../local/services/fauxqs.ts';
import { LOCAL_CLIENT } from '../support/emulators.ts';
import { waitFor } from '../support/processes.ts';

const ITEMS_TABLE: CreateTableCommandInput = {
  TableName: 'items',
  KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
  BillingMode: 'PAY_PER_REQUEST',
};
const dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'xl-services-'));
  dirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Local addresses (ip:port) listening on a TCP port, from /proc/net/tcp and tcp6. */
function listeners(port: number): string[] {
  const found: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.trim().split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== '0A' || !local) continue; // 0A: LISTEN
      const [hexIp, hexPort] = local.split(':');
      if (parseInt(hexPort!, 16) !== port) continue;
      const ip =
        hexIp!.length === 8
          ? hexIp!.match(/../g)!.reverse().map((b) => parseInt(b, 16)).join('.')
          : hexIp === '00000000000000000000000000000000'
            ? '::'
            : `ipv6:${hexIp}`;
      found.push(`${ip}:${port}`);
    }
  }
  return found;
}

describe('startDynalite', () => {
  it('listens on 127.0.0.1 only and creates tables that are ACTIVE a moment later', async () => {
    const db = await startDynalite();
    try {
      expect(db.endpoint).toBe(`http://127.0.0.1:${db.port}`);
      expect(listeners(db.port)).toEqual([`127.0.0.1:${db.port}`]);
      const ddb = new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: db.endpoint });
      await ddb.send(new CreateTableCommand(ITEMS_TABLE));
      // The CreateTable response says CREATING, as on AWS; dynalite makes it ACTIVE just after.
      await waitForActiveTables(ddb, ['items'], 1000);
      const described = await ddb.send(new DescribeTableCommand({ TableName: 'items' }));
      expect(described.Table?.TableStatus).toBe('ACTIVE');
      await ddb.send(new PutItemCommand({ TableName: 'items', Item: { pk: { S: 'a' }, n: { N: '1' } } }));
      const got = await ddb.send(new GetItemCommand({ TableName: 'items', Key: { pk: { S: 'a' } } }));
      expect(got.Item).toEqual({ pk: { S: 'a' }, n: { N: '1' } });
      ddb.destroy();
    } finally {
      await db.close();
    }
  });

  it('keeps items across a restart on the same path', async () => {
    const path = join(await tempDir(), 'dynamo');
    const first = await startDynalite({ path });
    const ddb1 = new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: first.endpoint });
    await ddb1.send(new CreateTableCommand(ITEMS_TABLE));
    await waitForActiveTables(ddb1, ['items']);
    await ddb1.send(new PutItemCommand({ TableName: 'items', Item: { pk: { S: 'kept' } } }));
    ddb1.destroy();
    await first.close();

    const second = await startDynalite({ path });
    try {
      const ddb2 = new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: second.endpoint });
      const got = await ddb2.send(new GetItemCommand({ TableName: 'items', Key: { pk: { S: 'kept' } } }));
      expect(got.Item).toEqual({ pk: { S: 'kept' } });
      ddb2.destroy();
    } finally {
      await second.close();
    }
  });
});

describe('dynalite expression cache', () => {
  it('a repeated expression with new values behaves as a fresh parse: conditions, updates and the unused-value check', async () => {
    const dynamo = await startDynalite();
    try {
      const ddb = new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_CLIENT });
      await ddb.send(new CreateTableCommand({ ...ITEMS_TABLE, TableName: 'cached' }));
      await waitForActiveTables(ddb, ['cached']);
      await ddb.send(new PutItemCommand({ TableName: 'cached', Item: { pk: { S: 'a' }, n: { N: '1' }, tag: { S: 'x' } } }));
      const bump = (expected: string, next: string, tag: string) =>
        ddb.send(
          new UpdateItemCommand({
            TableName: 'cached',
            Key: { pk: { S: 'a' } },
            UpdateExpression: 'SET n = :next, #t = :tag',
            ConditionExpression: 'n = :expected',
            ExpressionAttributeNames: { '#t': 'tag' },
            ExpressionAttributeValues: { ':next': { N: next }, ':tag': { S: tag }, ':expected': { N: expected } },
            ReturnValues: 'ALL_NEW',
          }),
        );
      // The same expressions many times (past the template's checked hits), each with its own values.
      for (let i = 1; i <= 6; i++) {
        const res = await bump(String(i), String(i + 1), `t${i}`);
        expect(res.Attributes).toEqual({ pk: { S: 'a' }, n: { N: String(i + 1) }, tag: { S: `t${i}` } });
        await expect(bump(String(i), '99', 'stale')).rejects.toThrow(/conditional request failed/i);
      }
      // A value the cached expressions do not use is still refused, naming it.
      await expect(
        ddb.send(
          new UpdateItemCommand({
            TableName: 'cached',
            Key: { pk: { S: 'a' } },
            UpdateExpression: 'SET n = :next, #t = :tag',
            ConditionExpression: 'n = :expected',
            ExpressionAttributeNames: { '#t': 'tag' },
            ExpressionAttributeValues: { ':next': { N: '1' }, ':tag': { S: 'x' }, ':expected': { N: '7' }, ':extra': { S: 'unused' } },
          }),
        ),
      ).rejects.toThrow(/unused in expressions: keys: \{:extra\}/);
      // A condition cached while the update used its name too still counts that name as used
      // when another update does not.
      const tagged = (update: string, tag: string, old: string) =>
        ddb.send(
          new UpdateItemCommand({
            TableName: 'cached',
            Key: { pk: { S: 'a' } },
            UpdateExpression: update,
            ConditionExpression: '#t = :old',
            ExpressionAttributeNames: { '#t': 'tag' },
            ExpressionAttributeValues: { ':tag': { S: tag }, ':old': { S: old } },
          }),
        );
      await tagged('SET #t = :tag', 'u1', 't6');
      await tagged('SET #t = :tag', 'u2', 'u1');
      await tagged('SET #t = :tag', 'u3', 'u2');
      await tagged('SET #t = :tag', 'u4', 'u3');
      await expect(tagged('SET xtag = :tag', 'u5', 'u4').then(() => 'ok')).resolves.toBe('ok');
    } finally {
      await dynamo.close();
    }
  });
});

describe('dynalite reads', () => {
  it('see every write before them: a table updated, deleted and created again with another key, and its items', async () => {
    const dynamo = await startDynalite({ path: join(await tempDir(), 'db') });
    try {
      const ddb = new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_CLIENT });
      const exists = () => ddb.send(new DescribeTableCommand({ TableName: 'kept' })).then(() => true, () => false);
      await ddb.send(new CreateTableCommand({ ...ITEMS_TABLE, TableName: 'kept' }));
      await waitForActiveTables(ddb, ['kept']);
      await ddb.send(new PutItemCommand({ TableName: 'kept', Item: { pk: { S: 'a' } } }));
      expect((await ddb.send(new GetItemCommand({ TableName: 'kept', Key: { pk: { S: 'a' } } }))).Item).toEqual({ pk: { S: 'a' } });

      await ddb.send(new UpdateTableCommand({ TableName: 'kept', BillingMode: 'PROVISIONED', ProvisionedThroughput: { ReadCapacityUnits: 3, WriteCapacityUnits: 4 } }));
      await waitForActiveTables(ddb, ['kept']);
      const described = await ddb.send(new DescribeTableCommand({ TableName: 'kept' }));
      expect(described.Table?.ProvisionedThroughput).toMatchObject({ ReadCapacityUnits: 3, WriteCapacityUnits: 4 });

      await ddb.send(new DeleteTableCommand({ TableName: 'kept' }));
      await waitFor(async () => !(await exists()));
      await expect(ddb.send(new GetItemCommand({ TableName: 'kept', Key: { pk: { S: 'a' } } }))).rejects.toThrow(/not found/i);

      await ddb.send(
        new CreateTableCommand({ ...ITEMS_TABLE, TableName: 'kept', KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }] }),
      );
      await waitForActiveTables(ddb, ['kept']);
      await ddb.send(new PutItemCommand({ TableName: 'kept', Item: { id: { S: 'b' } } }));
      await expect(ddb.send(new PutItemCommand({ TableName: 'kept', Item: { pk: { S: 'a' } } }))).rejects.toThrow(/key/i);
      expect((await ddb.send(new GetItemCommand({ TableName: 'kept', Key: { id: { S: 'b' } } }))).Item).toEqual({ id: { S: 'b' } });
    } finally {
      await dynamo.close();
    }
  });
});

describe('dynalite writes', () => {
  // A table with a global index (changing key, KEYS_ONLY) and a local one (ALL): each write of an
  // item and its index entries goes to LevelDB as one batch (dynalite-writes.ts).
  const INDEXED: CreateTableCommandInput = {
    TableName: 'tasks',
    KeySchema: [
      { AttributeName: 'ex', KeyType: 'HASH' },
      { AttributeName: 'id', KeyType: 'RANGE' },
    ],
    AttributeDefinitions: [
      { AttributeName: 'ex', AttributeType: 'S' },
      { AttributeName: 'id', AttributeType: 'S' },
      { AttributeName: 'status', AttributeType: 'S' },
      { AttributeName: 'at', AttributeType: 'N' },
    ],
    GlobalSecondaryIndexes: [{ IndexName: 'byStatus', KeySchema: [{ AttributeName: 'status', KeyType: 'HASH' }], Projection: { ProjectionType: 'KEYS_ONLY' } }],
    LocalSecondaryIndexes: [
      {
        IndexName: 'byTime',
        KeySchema: [
          { AttributeName: 'ex', KeyType: 'HASH' },
          { AttributeName: 'at', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
    BillingMode: 'PAY_PER_REQUEST',
  };
  const ids = (items: Record<string, { S?: string }>[] | undefined) => (items ?? []).map((i) => i.id?.S).sort();

  it('keep the indexes in step with the items through puts, updates, failed conditions, deletes and a restart', async () => {
    const path = join(await tempDir(), 'db');
    let dynamo = await startDynalite({ path });
    let ddb = new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_CLIENT });
    const byStatus = async (status: string) =>
      ids((await ddb.send(new QueryCommand({ TableName: 'tasks', IndexName: 'byStatus', KeyConditionExpression: '#s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': { S: status } } }))).Items);
    const byTime = async () =>
      (await ddb.send(new QueryCommand({ TableName: 'tasks', IndexName: 'byTime', KeyConditionExpression: 'ex = :e', ExpressionAttributeValues: { ':e': { S: 'e1' } } }))).Items?.map((i) => [i.id?.S, i.status?.S]);
    try {
      await ddb.send(new CreateTableCommand(INDEXED));
      await waitForActiveTables(ddb, ['tasks']);
      for (const [id, at] of [['a', 2], ['b', 1], ['c', 3]] as const) {
        await ddb.send(new PutItemCommand({ TableName: 'tasks', Item: { ex: { S: 'e1' }, id: { S: id }, status: { S: 'queued' }, at: { N: String(at) } } }));
      }
      expect(await byStatus('queued')).toEqual(['a', 'b', 'c']);
      expect(await byTime()).toEqual([['b', 'queued'], ['a', 'queued'], ['c', 'queued']]);

      // The index key changes: the old entry goes, the new one comes, in the same write.
      await ddb.send(new UpdateItemCommand({ TableName: 'tasks', Key: { ex: { S: 'e1' }, id: { S: 'a' } }, UpdateExpression: 'SET #s = :r', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':r': { S: 'running' } } }));
      expect(await byStatus('queued')).toEqual(['b', 'c']);
      expect(await byStatus('running')).toEqual(['a']);
      expect(await byTime()).toEqual([['b', 'queued'], ['a', 'running'], ['c', 'queued']]);

      // A refused condition writes nothing, index included.
      await expect(
        ddb.send(new UpdateItemCommand({ TableName: 'tasks', Key: { ex: { S: 'e1' }, id: { S: 'b' } }, UpdateExpression: 'SET #s = :d', ConditionExpression: '#s = :r', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':d': { S: 'done' }, ':r': { S: 'running' } } })),
      ).rejects.toThrow(ConditionalCheckFailedException);
      expect(await byStatus('done')).toEqual([]);

      // An item without the global index's key leaves that index, and a deleted item leaves both.
      await ddb.send(new UpdateItemCommand({ TableName: 'tasks', Key: { ex: { S: 'e1' }, id: { S: 'c' } }, UpdateExpression: 'REMOVE #s', ExpressionAttributeNames: { '#s': 'status' } }));
      await ddb.send(new DeleteItemCommand({ TableName: 'tasks', Key: { ex: { S: 'e1' }, id: { S: 'b' } } }));
      expect(await byStatus('queued')).toEqual([]);
      expect(await byTime()).toEqual([['a', 'running'], ['c', undefined]]);
      // A put over an existing item replaces its index entries.
      await ddb.send(new PutItemCommand({ TableName: 'tasks', Item: { ex: { S: 'e1' }, id: { S: 'a' }, status: { S: 'done' }, at: { N: '9' } } }));
      expect(await byStatus('running')).toEqual([]);
      expect(await byStatus('done')).toEqual(['a']);

      // What was batched is on disk.
      ddb.destroy();
      await dynamo.close();
      dynamo = await startDynalite({ path });
      ddb = new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_CLIENT });
      expect(await byStatus('done')).toEqual(['a']);
      expect(await byTime()).toEqual([['c', undefined], ['a', 'done']]);
    } finally {
      ddb.destroy();
      await dynamo.close();
    }
  });
});

describe('startFauxqs127', () => {
  it('listens on 127.0.0.1 only and serves SQS and path-style S3', async () => {
    const fq = await startFauxqs127();
    try {
      expect(fq.endpoint).toBe(`http://127.0.0.1:${fq.port}`);
      expect(listeners(fq.port)).toEqual([`127.0.0.1:${fq.port}`]);
      const sqs = new SQSClient({ ...LOCAL_CLIENT, endpoint: fq.endpoint });
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'jobs' }));
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'one' }));
      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
      expect(got.Messages?.map((m) => m.Body)).toEqual(['one']);

      const s3 = new S3Client({ ...LOCAL_CLIENT, endpoint: fq.endpoint, forcePathStyle: true });
      await s3.send(new CreateBucketCommand({ Bucket: 'payloads' }));
      await s3.send(new PutObjectCommand({ Bucket: 'payloads', Key: 'plans/p1.json', Body: '{"plan":1}' }));
      const object = await s3.send(new GetObjectCommand({ Bucket: 'payloads', Key: 'plans/p1.json' }));
      expect(await object.Body!.transformToString()).toBe('{"plan":1}');
      sqs.destroy();
      s3.destroy();
    } finally {
      await fq.close();
    }
  });

  it('keeps queues, messages and objects across a restart on the same dataDir', async () => {
    const dataDir = await tempDir();
    const first = await startFauxqs127({ dataDir });
    const sqs1 = new SQSClient({ ...LOCAL_CLIENT, endpoint: first.endpoint });
    const { QueueUrl } = await sqs1.send(new CreateQueueCommand({ QueueName: 'durable' }));
    await sqs1.send(new SendMessageCommand({ QueueUrl, MessageBody: 'survives' }));
    const s3a = new S3Client({ ...LOCAL_CLIENT, endpoint: first.endpoint, forcePathStyle: true });
    await s3a.send(new CreateBucketCommand({ Bucket: 'durable-bucket' }));
    await s3a.send(new PutObjectCommand({ Bucket: 'durable-bucket', Key: 'k', Body: 'v' }));
    sqs1.destroy();
    s3a.destroy();
    await first.close();

    const second = await startFauxqs127({ dataDir });
    try {
      const sqs2 = new SQSClient({ ...LOCAL_CLIENT, endpoint: second.endpoint });
      const queues = await sqs2.send(new ListQueuesCommand({}));
      expect(queues.QueueUrls?.some((u) => u.endsWith('/durable'))).toBe(true);
      // The URL from before the restart names the old port; fauxqs resolves queues by name.
      const got = await sqs2.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
      expect(got.Messages?.map((m) => m.Body)).toEqual(['survives']);
      const s3b = new S3Client({ ...LOCAL_CLIENT, endpoint: second.endpoint, forcePathStyle: true });
      const object = await s3b.send(new GetObjectCommand({ Bucket: 'durable-bucket', Key: 'k' }));
      expect(await object.Body!.transformToString()).toBe('v');
      sqs2.destroy();
      s3b.destroy();
    } finally {
      await second.close();
    }
  });
});

describe('startFauxqs127 with persistence', () => {
  // fauxqs 2.4.1 lost a message made ready again while persisting (see local/services/fauxqs.ts).
  it('makes a released message receivable again, with its receive count, instead of losing it', async () => {
    const fauxqs = await startFauxqs127({ dataDir: await tempDir() });
    try {
      const sqs = new SQSClient({ ...LOCAL_CLIENT, endpoint: fauxqs.endpoint, maxAttempts: 1 });
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'release-test' }));
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'task' }));
      const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl, VisibilityTimeout: 30 }));
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: first.Messages![0]!.ReceiptHandle, VisibilityTimeout: 0 }));
      const again = await sqs.send(new ReceiveMessageCommand({ QueueUrl, VisibilityTimeout: 1, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
      expect(again.Messages?.[0]?.Body).toBe('task');
      expect(again.Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe('2');
      // And once its visibility runs out.
      await new Promise((r) => setTimeout(r, 1500));
      const third = await sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 2 }));
      expect(third.Messages?.[0]?.Body).toBe('task');
    } finally {
      await fauxqs.close();
    }
  });
});
