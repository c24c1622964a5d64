// The emulators integration tests run against: dynalite (tables) and fauxqs (queues and the payload
// bucket), on loopback, with SDK clients for them and the stack's tables, bucket and queues created.
import { CreateTableCommand, type CreateTableCommandInput, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AgentType } from '../../core/agent-types.ts';
import { type RunningDynalite, startDynalite, waitForActiveTables } from '../../local/services/dynalite.ts';
import { type RunningFauxqs, startFauxqs127 } from '../../local/services/fauxqs.ts';

/** Region and credentials for SDK clients of the emulators (they check neither). */
export const LOCAL_CLIENT = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

export interface TableNames {
  executions: string;
  agents: string;
  breakers: string;
}

// Keys and indexes as infra/constructs/tables.ts declares them. Kept here rather than read from the
// synthesized template: synthesizing the stack would cost every test file seconds of CPU.
const S = 'S' as const;
const historyTable = (TableName: string, IndexName: string): CreateTableCommandInput => ({
  TableName,
  BillingMode: 'PAY_PER_REQUEST',
  AttributeDefinitions: ['pk', 'sk', 'gsi1pk', 'gsi1sk'].map((AttributeName) => ({ AttributeName, AttributeType: S })),
  KeySchema: [
    { AttributeName: 'pk', KeyType: 'HASH' },
    { AttributeName: 'sk', KeyType: 'RANGE' },
  ],
  GlobalSecondaryIndexes: [
    {
      IndexName,
      KeySchema: [
        { AttributeName: 'gsi1pk', KeyType: 'HASH' },
        { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    },
  ],
});
const TABLES: { [K in keyof TableNames]: (TableName: string) => CreateTableCommandInput } = {
  executions: (name) => historyTable(name, 'byStart'),
  agents: (name) => historyTable(name, 'byType'),
  breakers: (TableName) => ({
    TableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: S }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  }),
};

/** Creates the named ones of the stack's tables, and waits until they are ACTIVE. */
export async function createTables(ddb: DynamoDBClient | DynamoDBDocumentClient, tables: Partial<TableNames>): Promise<void> {
  // A document client sends plain DynamoDB commands unchanged.
  const client = ddb as DynamoDBClient;
  const kinds = Object.keys(tables) as (keyof TableNames)[];
  await Promise.all(kinds.map((kind) => client.send(new CreateTableCommand(TABLES[kind](tables[kind]!)))));
  await waitForActiveTables(client, kinds.map((kind) => tables[kind]!));
}

export interface Emulators {
  dynamo: RunningDynalite;
  fauxqs: RunningFauxqs;
  ddb: DynamoDBDocumentClient;
  sqs: SQSClient;
  s3: S3Client;
  /** `<prefix>executions`, `<prefix>agents`, `<prefix>breakers`. */
  tables: TableNames;
  /** `<prefix>payloads`. */
  bucket: string;
  /** The queue URL of an agent type and priority is `<queuePrefix><type>-<priority>`. */
  queuePrefix: string;
  close(): Promise<void>;
}

/**
 * Starts dynalite and fauxqs and creates the stack's tables, the payload bucket and, for each agent
 * type in `queues`, its three priority queues, all named with `prefix` as the local layer names them.
 * With `maxReceiveCount`, each queue also gets its DLQ (`<queue>-dlq`) and a redrive policy, as the
 * stack declares them.
 */
export async function startEmulators(opts: { prefix: string; queues: readonly AgentType[]; maxReceiveCount?: number }): Promise<Emulators> {
  const [dynamo, fauxqs] = await Promise.all([startDynalite(), startFauxqs127()]);
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: dynamo.endpoint }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  const sqs = new SQSClient({ ...LOCAL_CLIENT, endpoint: fauxqs.endpoint });
  const s3 = new S3Client({ ...LOCAL_CLIENT, endpoint: fauxqs.endpoint, forcePathStyle: true });
  const { prefix } = opts;
  const tables = { executions: `${prefix}executions`, agents: `${prefix}agents`, breakers: `${prefix}breakers` };
  const bucket = `${prefix}payloads`;
  await Promise.all([createTables(ddb, tables), s3.send(new CreateBucketCommand({ Bucket: bucket }))]);
  for (const type of opts.queues) {
    for (const priority of ['high', 'normal', 'low']) {
      const name = `${prefix}${type}-${priority}`;
      let Attributes: Record<string, string> | undefined;
      if (opts.maxReceiveCount !== undefined) {
        const dlq = (await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }))).QueueUrl!;
        const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
        Attributes = { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: opts.maxReceiveCount }) };
      }
      await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes }));
    }
  }
  return {
    dynamo,
    fauxqs,
    ddb,
    sqs,
    s3,
    tables,
    bucket,
    // On the emulator's own address, as the local layer writes queue URLs: the SDK sends each call
    // to its QueueUrl's host (fauxqs names `sqs.<region>.localhost`, which does not resolve here).
    queuePrefix: `${fauxqs.endpoint}/000000000000/${prefix}`,
    close: async () => {
      await Promise.all([dynamo.close(), fauxqs.close()]);
    },
  };
}
