// The fleet-wide circuit breaker on a real DynamoDB emulator: one item per key, one probe when half-open.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoBreakerStore } from '#core/aws/breaker-store.ts';
import { CircuitBreaker } from '#core/breakers.ts';
import { startDynalite } from '../../local/services/dynalite.ts';
import { createTables, LOCAL_CLIENT } from '../support/emulators.ts';

let dynamo: Awaited<ReturnType<typeof startDynalite>>;
let store: DynamoBreakerStore;

beforeAll(async () => {
  dynamo = await startDynalite();
  const client = new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: dynamo.endpoint });
  await createTables(client, { breakers: 'breakers' });
  store = new DynamoBreakerStore(DynamoDBDocumentClient.from(client), 'breakers');
});
afterAll(async () => dynamo?.close());

describe('circuit breaker', () => {
  it('counts failures only while they keep coming: one after the window starts the count again', async () => {
    let now = 5_000_000;
    const breaker = new CircuitBreaker(store, { failureThreshold: 3, openSeconds: 60, failureWindowSeconds: 600 }, () => now, 0);
    await breaker.recordFailure('dep:window');
    await breaker.recordFailure('dep:window');
    now += 601_000; // a quiet spell longer than the window
    await breaker.recordFailure('dep:window');
    expect(await store.get('dep:window')).toMatchObject({ state: 'closed', failures: 1 });
    await breaker.recordFailure('dep:window');
    await breaker.recordFailure('dep:window');
    expect(await store.get('dep:window')).toMatchObject({ state: 'open', failures: 3 });
  });

  it('opens after the failure threshold and refuses calls while open', async () => {
    let now = 1_000_000;
    const breaker = new CircuitBreaker(store, { failureThreshold: 3, openSeconds: 60 }, () => now, 0);
    expect(await breaker.admit('dep:a', 'p')).toEqual({ allowed: true, probe: false });
    for (let i = 0; i < 3; i++) await breaker.recordFailure('dep:a');
    expect(await store.get('dep:a')).toMatchObject({ state: 'open', failures: 3 });
    now += 30_000;
    expect(await breaker.admit('dep:a', 'p')).toMatchObject({ allowed: false });
  });

  it('lets exactly one of many concurrent callers probe once the open period is over', async () => {
    let now = 2_000_000;
    const clock = () => now;
    const fleet = Array.from({ length: 12 }, () => new CircuitBreaker(store, { failureThreshold: 1, openSeconds: 10 }, clock, 0));
    await fleet[0]!.recordFailure('agent:coder');
    now += 11_000;
    const admissions = await Promise.all(fleet.map((b, i) => b.admit('agent:coder', `probe-${i}`)));
    const probes = admissions.filter((a) => a.allowed);
    expect(probes).toHaveLength(1);
    expect(probes[0]).toEqual({ allowed: true, probe: true });
    expect(await store.get('agent:coder')).toMatchObject({ state: 'half-open' });
  });

  it('closes when the probe succeeds and opens again when it fails', async () => {
    let now = 3_000_000;
    const breaker = new CircuitBreaker(store, { failureThreshold: 1, openSeconds: 5 }, () => now, 0);
    await breaker.recordFailure('dep:b');
    now += 6_000;
    expect(await breaker.admit('dep:b', 'x')).toEqual({ allowed: true, probe: true });
    await breaker.recordSuccess('dep:b');
    expect(await store.get('dep:b')).toMatchObject({ state: 'closed', failures: 0 });

    await breaker.recordFailure('dep:b');
    now += 6_000;
    expect(await breaker.admit('dep:b', 'y')).toMatchObject({ probe: true });
    await breaker.recordFailure('dep:b');
    expect(await store.get('dep:b')).toMatchObject({ state: 'open' });
    expect(await breaker.admit('dep:b', 'z')).toMatchObject({ allowed: false });
  });

  it('is reset by hand', async () => {
    const breaker = new CircuitBreaker(store, { failureThreshold: 1, openSeconds: 600 }, Date.now, 0);
    await breaker.recordFailure('dep:c');
    await breaker.reset('dep:c');
    expect(await breaker.admit('dep:c', 'x')).toEqual({ allowed: true, probe: false });
  });
});
