// GET /executions' filters on a real executions table (dynalite): by status and by a part of the
// name, across pages of the byStart index, newest first, each request reading a bounded number of items.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecutionStore, FILTERED_READ_ITEMS } from '#core/aws/execution-store.ts';
import { ExecutionService } from '#core/executions.ts';
import type { ExecutionRecord } from '#core/records.ts';
import { startDynalite } from '../../local/services/dynalite.ts';
import { LOCAL_CLIENT, createTables } from '../support/emulators.ts';

let dynamo: Awaited<ReturnType<typeof startDynalite>>;
let store: ExecutionStore;
let service: ExecutionService;

/** An execution record started `minute` minutes past the hour (later is newer). */
const record = (n: number, name: string, status: ExecutionRecord['status']): ExecutionRecord => ({
  executionId: `ex-${String(n).padStart(4, '0')}`,
  name,
  pattern: 'sequential',
  status,
  planHash: 'h',
  planKey: `plans/${n}.json`,
  input: { inline: {} },
  maxConcurrency: 1,
  stages: [{ name: '', from: 0, to: 0 }],
  taskCount: 0,
  startedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
});

beforeAll(async () => {
  dynamo = await startDynalite();
  const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_CLIENT }), { marshallOptions: { removeUndefinedValues: true } });
  await createTables(ddb, { executions: 'executions' });
  store = new ExecutionStore(ddb, 'executions');
  service = new ExecutionService({ executions: store, payloads: undefined as never, workflows: undefined as never });
  // 0..11: nightly-N, every third FAILED, one PENDING (shown as RUNNING); then 250 SUCCEEDED others, newer.
  for (let n = 0; n < 12; n++) await store.createExecution(record(n, `nightly-${n}`, n === 11 ? 'PENDING' : n % 3 === 0 ? 'FAILED' : 'SUCCEEDED'), []);
  for (let n = 12; n < 262; n++) await store.createExecution(record(n, `build-${n}`, 'SUCCEEDED'), []);
}, 60_000);
afterAll(async () => dynamo?.close());

/** Every page of a filter, following nextToken; each page's ids. */
async function pages(opts: { statuses?: string[]; nameContains?: string; limit: number }): Promise<string[][]> {
  return (await pagesOf(opts)).map((p) => p.map((e) => e.executionId));
}
async function pagesOf(opts: { statuses?: string[]; nameContains?: string; limit: number }) {
  const out: Awaited<ReturnType<ExecutionService['list']>>['items'][] = [];
  let nextToken: string | undefined;
  do {
    const page = await service.list({ ...opts, nextToken });
    out.push(page.items);
    nextToken = page.nextToken;
  } while (nextToken && out.length < 20);
  return out;
}

describe('the executions list, filtered', () => {
  it('finds by a part of the name across the whole table, newest first, a page at a time', async () => {
    const all = await pages({ nameContains: 'nightly-1', limit: 2 });
    expect(all.flat()).toEqual(['ex-0011', 'ex-0010', 'ex-0001']);
    for (const page of all) expect(page.length).toBeLessThanOrEqual(2);
  });

  it('finds by status, RUNNING taking in an execution that is still PENDING inside', async () => {
    expect((await pages({ statuses: ['FAILED'], limit: 50 })).flat()).toEqual(['ex-0009', 'ex-0006', 'ex-0003', 'ex-0000']);
    expect((await pages({ statuses: ['RUNNING'], limit: 50 })).flat()).toEqual(['ex-0011']);
    const shown = (await pagesOf({ nameContains: 'nightly-11', limit: 1 })).flat();
    expect(shown).toEqual([expect.objectContaining({ executionId: 'ex-0011', status: 'RUNNING' })]);
  });

  it('reads at most a bounded number of items per request, answering a short page and a nextToken to go on', async () => {
    const first = await service.list({ statuses: ['FAILED'], limit: 50 });
    expect(FILTERED_READ_ITEMS).toBe(200);
    // The 250 newer SUCCEEDED executions fill the first request's reads: nothing matched yet, more to read.
    expect(first.items).toEqual([]);
    expect(first.nextToken).toBeDefined();
    const second = await service.list({ statuses: ['FAILED'], limit: 50, nextToken: first.nextToken });
    expect(second.items.map((e) => e.executionId)).toEqual(['ex-0009', 'ex-0006', 'ex-0003', 'ex-0000']);
    expect(second.nextToken).toBeUndefined();
  });

  it('combines the filters, and pages without a filter as before', async () => {
    expect((await pages({ statuses: ['SUCCEEDED'], nameContains: 'nightly', limit: 3 })).flat()).toEqual(['ex-0010', 'ex-0008', 'ex-0007', 'ex-0005', 'ex-0004', 'ex-0002', 'ex-0001']);
    const unfiltered = await service.list({ limit: 5 });
    expect(unfiltered.items.map((e) => e.executionId)).toEqual(['ex-0261', 'ex-0260', 'ex-0259', 'ex-0258', 'ex-0257']);
    expect(unfiltered.nextToken).toBeDefined();
  });

  it('refuses a nextToken it did not give, instead of starting again from the first page', async () => {
    const { nextToken } = await service.list({ limit: 2 });
    const other = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');
    for (const token of ['garbage', nextToken!.slice(0, -3), other({ pk: 'X#ex-0001', sk: 'E', gsi1pk: 'T#coder', gsi1sk: 'a' }), other({ pk: 1 }), other(['EXEC']), other({})]) {
      for (const filter of [{}, { statuses: ['FAILED'] }]) {
        await expect(service.list({ limit: 2, nextToken: token, ...filter }), token).rejects.toMatchObject({
          name: 'ValidationError',
          message: "nextToken is not one this API gave: pass a page's nextToken unchanged",
          details: [{ path: '/nextToken' }],
        });
      }
    }
    expect((await service.list({ limit: 2, nextToken })).items.map((e) => e.executionId)).toEqual(['ex-0259', 'ex-0258']);
  });
});
