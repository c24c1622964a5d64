// The result cache's key and its entries on a real executions table (dynalite): what the key
// depends on, expiry checked on read (dynalite has no TTL; DynamoDB's deletes days late), and Gate's
// completion of a queued task from an entry.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecutionStore } from '#core/aws/execution-store.ts';
import { parsePlan } from '#core/plan.ts';
import { type CachedResult, cacheKey, submitTimeCacheKey } from '#core/result-cache.ts';
import type { TaskRecord } from '#core/records.ts';
import { startDynalite } from '../../local/services/dynalite.ts';
import { LOCAL_CLIENT, createTables } from '../support/emulators.ts';

const definition = { id: 'build', agentType: 'coder', command: 'make', timeoutSeconds: 60, priority: 'normal', failureStrategy: 'stop', cache: { ttlSeconds: 60 } };

describe('the cache key', () => {
  it('depends on what a run does, its input and its commit, not on how the layer treats it', () => {
    const key = cacheKey({ definition, input: { a: 1, b: 2 } });
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    // Key order of the input, the id, priority, timeout, strategy and the TTL do not count.
    expect(cacheKey({ definition: { ...definition, id: 'other', priority: 'high', timeoutSeconds: 5, failureStrategy: 'continue', cache: { ttlSeconds: 9 } }, input: { b: 2, a: 1 } })).toBe(key);
    expect(cacheKey({ definition: { ...definition, command: 'make all' }, input: { a: 1, b: 2 } })).not.toBe(key);
    expect(cacheKey({ definition: { ...definition, agentType: 'tester' }, input: { a: 1, b: 2 } })).not.toBe(key);
    expect(cacheKey({ definition, input: { a: 1, b: 3 } })).not.toBe(key);
    expect(cacheKey({ definition, input: { a: 1, b: 2 }, commit: 'a'.repeat(40) })).not.toBe(key);
  });

  it("takes a given `key` in the definition's place, so different commands can share results on purpose", () => {
    const keyed = (command: string) => cacheKey({ definition: { ...definition, command, cache: { ttlSeconds: 60, key: 'lint-v3' } }, input: {} });
    expect(keyed('npm run lint')).toBe(keyed('npx eslint .'));
    expect(cacheKey({ definition: { ...definition, agentType: 'tester', cache: { ttlSeconds: 60, key: 'lint-v3' } }, input: {} })).not.toBe(keyed('npm run lint'));
  });

  it('is known at submit only where nothing is left to resolve', () => {
    const repo = (ref?: string) => ({ ...definition, workspace: { repository: 'https://example.com/r.git', ...(ref ? { ref } : {}) } });
    expect(submitTimeCacheKey(definition, {}, 0, 'sequential')).toBeDefined();
    expect(submitTimeCacheKey(repo('a'.repeat(40)), {}, 0, 'parallel')).toBeDefined();
    expect(submitTimeCacheKey(repo('main'), {}, 0, 'sequential')).toBeUndefined(); // a branch moves
    expect(submitTimeCacheKey(repo('abc1234'), {}, 0, 'sequential')).toBeUndefined(); // an abbreviation is resolved by the clone
    expect(submitTimeCacheKey(repo(), {}, 0, 'sequential')).toBeUndefined();
    expect(submitTimeCacheKey(definition, {}, 1, 'pipeline')).toBeUndefined(); // its data is earlier stages' outputs
    expect(submitTimeCacheKey({ ...definition, cache: undefined }, {}, 0, 'sequential')).toBeUndefined();
  });

  it('is refused in a plan with a TTL out of range or beside pushBranch, naming the field', () => {
    const plan = (task: object) => ({ pattern: 'sequential', tasks: [{ id: 't', agentType: 'coder', command: 'true', ...task }] });
    expect(() => parsePlan(plan({ cache: { ttlSeconds: 0 } }))).toThrow(/tasks\/0\/cache\/ttlSeconds/);
    expect(() => parsePlan(plan({ cache: { ttlSeconds: 31 * 86400 } }))).toThrow(/ttlSeconds/);
    expect(() => parsePlan(plan({ cache: { ttl: 5 } }))).toThrow(/cache/);
    expect(() => parsePlan(plan({ cache: { ttlSeconds: 5 }, workspace: { repository: 'r', pushBranch: 'b' } }))).toThrow(/pushBranch/);
    expect(parsePlan(plan({ cache: { ttlSeconds: 5, key: 'k' } }))).toBeDefined();
  });
});

describe('cache entries in the executions table', () => {
  let dynamo: Awaited<ReturnType<typeof startDynalite>>;
  let store: ExecutionStore;
  beforeAll(async () => {
    dynamo = await startDynalite();
    const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: dynamo.endpoint, ...LOCAL_CLIENT }), { marshallOptions: { removeUndefinedValues: true } });
    await createTables(ddb, { executions: 'executions' });
    store = new ExecutionStore(ddb, 'executions');
  });
  afterAll(async () => dynamo?.close());

  const entry = (key: string, expiresAt: number): CachedResult => ({
    key,
    executionId: 'ex-1',
    taskId: 'build',
    output: { inline: { built: true } },
    artifacts: [{ name: 'workspace.diff', uri: 's3://b/k', bytes: 10 }],
    completedAt: '2026-12-06T00:00:00.000Z',
    expiresAt,
  });

  it('answers an entry until its expiry and nothing from then on, whatever the table still holds', async () => {
    const now = Date.UTC(2026, 11, 6, 12);
    await store.putCachedResult(entry('k1', now / 1000 + 60));
    expect(await store.getCachedResult('k1', now)).toMatchObject({ executionId: 'ex-1', output: { inline: { built: true } } });
    expect(await store.getCachedResult('k1', now + 59_999)).toBeDefined();
    expect(await store.getCachedResult('k1', now + 60_000)).toBeUndefined();
    expect(await store.getCachedResult('missing', now)).toBeUndefined();
  });

  it('completes a queued task from an entry, once, and never one that moved on', async () => {
    const task = (index: number, status: TaskRecord['status']): TaskRecord => ({
      executionId: 'ex-2', index, taskId: `t${index}`, stage: 0, agentType: 'coder', priority: 'normal', timeoutSeconds: 60,
      failureStrategy: 'stop', definition: { inline: {} as never }, status, attempts: 0, dispatchSeq: 1, retries: {},
    });
    await store.createExecution(
      { executionId: 'ex-2', name: 'ex-2', pattern: 'parallel', status: 'RUNNING', planHash: 'h', planKey: 'p', input: { inline: {} }, maxConcurrency: 2, stages: [], taskCount: 2, startedAt: new Date().toISOString() },
      [task(0, 'queued'), task(1, 'skipped')],
    );
    const hit = entry('k2', Date.now() / 1000 + 60);
    expect(await store.completeFromCache('ex-2', 0, hit)).toBe(true);
    expect(await store.getTask('ex-2', 0)).toMatchObject({ status: 'completed', attempts: 0, cachedFrom: { executionId: 'ex-1', taskId: 'build' }, output: { inline: { built: true } }, artifacts: hit.artifacts });
    expect(await store.completeFromCache('ex-2', 0, hit)).toBe(false);
    expect(await store.completeFromCache('ex-2', 1, hit)).toBe(false);
    expect((await store.getTask('ex-2', 1))?.status).toBe('skipped');
  });
});
