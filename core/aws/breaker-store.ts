// BreakerStore over DynamoDB: optimistic versioning on one item per breaker key.
import { type DynamoDBDocumentClient, GetCommand, PutCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import type { BreakerStore } from '../breakers.ts';
import type { BreakerRecord } from '../records.ts';
import { conditional } from './ddb.ts';

export class DynamoBreakerStore implements BreakerStore {
  constructor(
    private readonly ddb: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(key: string): Promise<BreakerRecord | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { pk: key }, ConsistentRead: true }));
    if (!res.Item) return undefined;
    const { pk: _pk, ...rest } = res.Item;
    return rest as BreakerRecord;
  }

  async list(): Promise<BreakerRecord[]> {
    const out: BreakerRecord[] = [];
    for await (const page of paginateScan({ client: this.ddb }, { TableName: this.table })) {
      for (const { pk: _pk, ...rest } of page.Items ?? []) out.push(rest as BreakerRecord);
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  async put(next: BreakerRecord, expectedVersion: number): Promise<boolean> {
    return conditional(() =>
      this.ddb.send(
        new PutCommand({
          TableName: this.table,
          // No undefined attributes (a cleared probeId): not every document client is set to drop them.
          Item: Object.fromEntries(Object.entries({ pk: next.key, ...next }).filter(([, v]) => v !== undefined)),
          ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(pk)' : 'version = :v',
          ExpressionAttributeValues: expectedVersion === 0 ? undefined : { ':v': expectedVersion },
        }),
      ),
    );
  }
}
