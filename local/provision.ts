// Creates, in the local emulators, the tables, queues and buckets the template declares, with the
// template's own settings (keys, indexes, redrive policies, visibility timeouts).
import { CreateTableCommand, type DynamoDBClient, ResourceInUseException } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { waitForActiveTables } from './services/dynalite.ts';
import { type CfnTemplate, type LocalNames, resolveValue, resourcesOfType } from './template.ts';

type Props = Record<string, unknown>;

export async function provisionTables(ddb: DynamoDBClient, template: CfnTemplate, names: LocalNames): Promise<void> {
  const tables: string[] = [];
  for (const [id, resource] of resourcesOfType(template, 'AWS::DynamoDB::Table')) {
    tables.push(names.ref.get(id)!);
    const p = resolveValue(resource.Properties ?? {}, names) as Props;
    try {
      await ddb.send(
        new CreateTableCommand({
          TableName: names.ref.get(id)!,
          KeySchema: p.KeySchema as never,
          AttributeDefinitions: p.AttributeDefinitions as never,
          GlobalSecondaryIndexes: p.GlobalSecondaryIndexes as never,
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
    } catch (err) {
      if (!(err instanceof ResourceInUseException)) throw err; // kept from an earlier run
    }
  }
  await waitForActiveTables(ddb, tables);
}

export async function provisionQueues(sqs: SQSClient, template: CfnTemplate, names: LocalNames): Promise<void> {
  const queues = resourcesOfType(template, 'AWS::SQS::Queue');
  // Dead-letter queues first: the others' redrive policies point at them.
  const isDlqOf = (id: string) => queues.some(([, q]) => JSON.stringify(q.Properties?.RedrivePolicy ?? '').includes(`"${id}"`));
  queues.sort(([a], [b]) => Number(isDlqOf(b)) - Number(isDlqOf(a)));
  const attrs = ['VisibilityTimeout', 'MessageRetentionPeriod', 'DelaySeconds', 'MaximumMessageSize', 'ReceiveMessageWaitTimeSeconds'];
  for (const [id, resource] of queues) {
    const p = resolveValue(resource.Properties ?? {}, names) as Props;
    const Attributes: Record<string, string> = {};
    for (const a of attrs) if (p[a] !== undefined) Attributes[a] = String(p[a]);
    if (p.RedrivePolicy) Attributes.RedrivePolicy = JSON.stringify(p.RedrivePolicy);
    await sqs.send(new CreateQueueCommand({ QueueName: names.attrs.get(id)!.QueueName, Attributes }));
  }
}

export async function provisionBuckets(s3: S3Client, template: CfnTemplate, names: LocalNames): Promise<void> {
  for (const [id] of resourcesOfType(template, 'AWS::S3::Bucket')) {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: names.ref.get(id)! }));
    } catch (err) {
      const name = (err as Error).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
    }
  }
}
