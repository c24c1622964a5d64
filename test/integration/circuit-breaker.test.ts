// The fleet-wide circuit breaker on a real DynamoDB emulator: one item per key, one probe when half-open.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoBreakerStore } from '#core/aws/breaker-store.ts';
import { CircuitBreaker, type CircuitBreakerOptions } from '#core/breakers.ts';
import type { LayerEvent } from '#core/events.ts';
import { startDynalite } from '../../local/services/dynalite.ts';
import { createTables, LOCAL_CLIENT } from '../support/emulators.ts';

let dynamo: Awaited<ReturnType<typeof startDynalite>>;
let client: DynamoDBClient;
let store: DynamoBreakerStore;

beforeAll(async () => {
  dynamo = await startDynalite();
  client = new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: dynamo.endpoint });
  await createTables(client, { breakers: 'breakers' });
  store = new DynamoBreakerStore(DynamoDBDocumentClient.from(client), 'breakers');
});
afterAll(async () => dynamo?.close());

/** A breaker of one process of the fleet, on a shared fake clock, collecting its events. */
function member(clock: () => number, events: LayerEvent[] = [], options: CircuitBreakerOptions = {}) {
  return new CircuitBreaker(store, { clock, closedCacheMs: 0, events: { emit: async (e) => void events.push(e) }, ...options });
}

describe('circuit breaker on DynamoDB', () => {
  it('counts failures within the sliding window only: older ones drop out', async () => {
    let now = 5_000_000;
    const breaker = member(() => now, [], { policy: { failureThreshold: 3, failureWindowSeconds: 60 } });
    await breaker.recordFailure('dependency:git:window.example');
    await breaker.recordFailure('dependency:git:window.example');
    now += 61_000; // both are older than the window now
    await breaker.recordFailure('dependency:git:window.example');
    expect(await store.get('dependency:git:window.example')).toMatchObject({ state: 'closed', failures: 1 });
    await breaker.recordFailure('dependency:git:window.example');
    await breaker.recordFailure('dependency:git:window.example');
    expect(await store.get('dependency:git:window.example')).toMatchObject({ state: 'open', failures: 3 });
  });

  it('a breaker opened by repeated failures fails fast, then closes through one probe', async () => {
    let now = 1_000_000;
    const events: LayerEvent[] = [];
    const fleet = Array.from({ length: 3 }, () => member(() => now, events));
    for (let i = 0; i < 5; i++) await fleet[i % 3]!.recordFailure('agent:tester');
    expect(events).toEqual([expect.objectContaining({ kind: 'breaker.opened', key: 'agent:tester', failures: 5 })]);

    now += 10_000;
    const refused = await fleet[1]!.admit('agent:tester', 'early');
    expect(refused).toEqual({ allowed: false, reason: expect.stringContaining('circuit breaker agent:tester is open'), retryAt: new Date(1_000_000 + 30_000).toISOString() });

    now += 20_000; // the 30 s cooldown is over
    const admissions = await Promise.all(fleet.map((b, i) => b.admit('agent:tester', `probe-${i}`)));
    expect(admissions.filter((a) => a.allowed)).toEqual([{ allowed: true, probe: true, report: true }]);
    await fleet[2]!.recordSuccess('agent:tester');
    expect(await store.get('agent:tester')).toMatchObject({ state: 'closed', failures: 0 });
    expect(await fleet[0]!.admit('agent:tester', 'after')).toEqual({ allowed: true, probe: false, report: false });
    expect(events.map((e) => e.kind)).toEqual(['breaker.opened', 'breaker.half-open', 'breaker.closed']);
  });

  it('50 concurrent callers at half-open: exactly one gets the probe, and one half-open event is emitted', async () => {
    let now = 2_000_000;
    const events: LayerEvent[] = [];
    await member(() => now, [], { policy: { failureThreshold: 1 } }).recordFailure('dependency:model-api');
    now += 30_000;
    // Each caller its own client, as each Lambda or agent has.
    const fleet = Array.from({ length: 50 }, () => {
      const own = new DynamoBreakerStore(DynamoDBDocumentClient.from(new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: dynamo.endpoint })), 'breakers');
      return new CircuitBreaker(own, { clock: () => now, closedCacheMs: 0, events: { emit: async (e) => void events.push(e) } });
    });
    const admissions = await Promise.all(fleet.map((b, i) => b.admit('dependency:model-api', `probe-${i}`)));
    const probes = admissions.flatMap((a, i) => (a.allowed && a.probe ? [i] : []));
    expect(probes).toHaveLength(1);
    expect(admissions.filter((a) => a.allowed)).toHaveLength(1);
    expect(await store.get('dependency:model-api')).toMatchObject({ state: 'half-open', probeId: `probe-${probes[0]}` });
    expect(events.filter((e) => e.kind === 'breaker.half-open')).toHaveLength(1);
  });

  it('a failed probe re-opens it with twice the cooldown', async () => {
    let now = 3_000_000;
    const breaker = member(() => now, [], { policy: { failureThreshold: 1, cooldownSeconds: 5 } });
    await breaker.recordFailure('agent:coder');
    now += 5_000;
    expect(await breaker.admit('agent:coder', 'x')).toMatchObject({ allowed: true, probe: true });
    await breaker.recordFailure('agent:coder');
    expect(await store.get('agent:coder')).toMatchObject({ state: 'open', reopens: 1, nextProbeAt: new Date(now + 10_000).toISOString() });
    now += 9_999;
    expect(await breaker.admit('agent:coder', 'y')).toMatchObject({ allowed: false });
    now += 1;
    expect(await breaker.admit('agent:coder', 'z')).toMatchObject({ allowed: true, probe: true });
  });

  it('is reset by hand; a key that never failed has nothing to reset', async () => {
    const breaker = member(Date.now, [], { policy: { failureThreshold: 1 } });
    await breaker.recordFailure('agent:reviewer');
    expect(await breaker.reset('agent:reviewer')).toBe(true);
    expect(await breaker.admit('agent:reviewer', 'x')).toEqual({ allowed: true, probe: false, report: false });
    expect(await breaker.reset('agent:never-failed')).toBe(false);
  });
});
