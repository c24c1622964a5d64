// Model-based test of the circuit breaker (fast-check): random sequences of admit, success, failure,
// reset and the clock moving on, run against the real CircuitBreaker over an in-memory store with
// DynamoDB's conditional writes, and against a small model of the design's rules. After every
// command the answers, the stored record and the events must agree with the model.
// Runs: XL_FC_RUNS (200 by default; the reliability suite asks for 10000).
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { type BreakerPolicy, BreakerPolicies, CircuitBreaker } from '../../core/breakers.ts';
const cooldownSeconds = (p: BreakerPolicy, n: number) => Math.min(p.cooldownSeconds * 2 ** n, p.maxCooldownSeconds);
import type { LayerEvent } from '../../core/events.ts';
import type { BreakerState } from '../../core/records.ts';
import { FakeClock, MemoryBreakerStore } from '../support/breakers.ts';

const RUNS = Number(process.env.XL_FC_RUNS ?? 200);
const KEYS = ['agent:coder', 'dependency:model-api'] as const;
type Key = (typeof KEYS)[number];

/** The design's rules, written plainly: what each key's breaker should be and say. */
interface KeyModel {
  state: BreakerState;
  /** Failure times counted while closed (ms). */
  times: number[];
  failures: number;
  reopens: number;
  nextProbeAt?: number;
  probeId?: string;
}
interface Model {
  now: number;
  policy: BreakerPolicy;
  keys: Map<Key, KeyModel>;
}
interface Real {
  clock: FakeClock;
  store: MemoryBreakerStore;
  breaker: CircuitBreaker;
  /** Other processes of the fleet, on the same store and clock. */
  fleet: CircuitBreaker[];
  events: LayerEvent[];
}

const closed = (): KeyModel => ({ state: 'closed', times: [], failures: 0, reopens: 0 });

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

/** The stored record and the events since the command started agree with the model. */
async function agree(model: Model, real: Real, key: Key, expectedEvents: string[], eventsBefore: number, what: string): Promise<void> {
  const emitted = real.events.slice(eventsBefore).map((e) => `${e.kind} ${'key' in e ? e.key : ''}`);
  check(JSON.stringify(emitted) === JSON.stringify(expectedEvents), `${what}: events ${JSON.stringify(emitted)}, model ${JSON.stringify(expectedEvents)}`);
  const m = model.keys.get(key);
  const record = await real.store.get(key);
  if (!m) return check(record === undefined, `${what}: a record exists for ${key} and the model has none`);
  check(record !== undefined, `${what}: no record for ${key}`);
  check(record!.state === m.state, `${what}: state ${record!.state}, model ${m.state}`);
  check(record!.failures === m.failures, `${what}: failures ${record!.failures}, model ${m.failures}`);
  if (m.state !== 'closed') {
    check(record!.nextProbeAt === new Date(m.nextProbeAt!).toISOString(), `${what}: nextProbeAt ${record!.nextProbeAt}, model ${new Date(m.nextProbeAt!).toISOString()}`);
  }
  if (m.state === 'half-open') check(record!.probeId === m.probeId, `${what}: probe ${record!.probeId}, model ${m.probeId}`);
}

class Admit implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly key: Key,
    readonly id: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const before = real.events.length;
    const probeId = `p${this.id}`;
    const answer = await real.breaker.admit(this.key, probeId);
    const m = model.keys.get(this.key) ?? closed();
    const events: string[] = [];
    let expected: unknown;
    if (m.state === 'closed') expected = { allowed: true, probe: false, report: m.failures > 0 };
    else if (model.now < m.nextProbeAt!) expected = { allowed: false, retryAt: new Date(m.nextProbeAt!).toISOString() };
    else {
      Object.assign(m, { state: 'half-open', probeId, nextProbeAt: model.now + model.policy.probeTimeoutSeconds * 1000 });
      model.keys.set(this.key, m);
      events.push(`breaker.half-open ${this.key}`);
      expected = { allowed: true, probe: true, report: true };
    }
    const got = answer.allowed ? answer : { allowed: false, retryAt: answer.retryAt };
    check(JSON.stringify(got) === JSON.stringify(expected), `${this.toString()}: ${JSON.stringify(got)}, model ${JSON.stringify(expected)}`);
    await agree(model, real, this.key, events, before, this.toString());
  }
  toString = () => `admit(${this.key}, p${this.id})`;
}

/** Several processes of the fleet ask at once: at most one of them may take the probe. */
class AdmitTogether implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly key: Key,
    readonly id: number,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const before = real.events.length;
    const answers = await Promise.all(real.fleet.map((b, i) => b.admit(this.key, `p${this.id}-${i}`)));
    const m = model.keys.get(this.key) ?? closed();
    const events: string[] = [];
    const allowed = answers.filter((a) => a.allowed);
    if (m.state === 'closed') check(allowed.length === answers.length, `${this.toString()}: ${answers.length - allowed.length} refused while closed`);
    else if (model.now < m.nextProbeAt!) check(allowed.length === 0, `${this.toString()}: ${allowed.length} admitted before the probe time`);
    else {
      const winners = answers.flatMap((a, i) => (a.allowed && a.probe ? [i] : []));
      check(allowed.length === 1 && winners.length === 1, `${this.toString()}: ${allowed.length} admitted, ${winners.length} probes, model: exactly one`);
      Object.assign(m, { state: 'half-open', probeId: `p${this.id}-${winners[0]}`, nextProbeAt: model.now + model.policy.probeTimeoutSeconds * 1000 });
      model.keys.set(this.key, m);
      events.push(`breaker.half-open ${this.key}`);
    }
    await agree(model, real, this.key, events, before, this.toString());
  }
  toString = () => `admitTogether(${this.key}, p${this.id}-*)`;
}

class Success implements fc.AsyncCommand<Model, Real> {
  constructor(readonly key: Key) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const before = real.events.length;
    await real.breaker.recordSuccess(this.key);
    const m = model.keys.get(this.key);
    const events: string[] = [];
    if (m && m.state !== 'open' && (m.state === 'half-open' || m.failures > 0)) {
      if (m.state === 'half-open') events.push(`breaker.closed ${this.key}`);
      model.keys.set(this.key, closed());
    }
    await agree(model, real, this.key, events, before, this.toString());
  }
  toString = () => `success(${this.key})`;
}

class Failure implements fc.AsyncCommand<Model, Real> {
  constructor(readonly key: Key) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const before = real.events.length;
    await real.breaker.recordFailure(this.key);
    const { policy, now } = model;
    const m = model.keys.get(this.key) ?? closed();
    const events: string[] = [];
    if (m.state === 'half-open') {
      const reopens = m.reopens + 1;
      model.keys.set(this.key, { state: 'open', times: [], failures: m.failures + 1, reopens, nextProbeAt: now + cooldownSeconds(policy, reopens) * 1000 });
      events.push(`breaker.opened ${this.key}`);
    } else if (m.state === 'closed') {
      const times = [...m.times.filter((t) => now - t < policy.failureWindowSeconds * 1000), now].slice(-policy.failureThreshold);
      if (times.length >= policy.failureThreshold) {
        model.keys.set(this.key, { state: 'open', times: [], failures: times.length, reopens: 0, nextProbeAt: now + cooldownSeconds(policy, 0) * 1000 });
        events.push(`breaker.opened ${this.key}`);
      } else {
        model.keys.set(this.key, { ...closed(), times, failures: times.length });
      }
    }
    await agree(model, real, this.key, events, before, this.toString());
  }
  toString = () => `failure(${this.key})`;
}

class Reset implements fc.AsyncCommand<Model, Real> {
  constructor(readonly key: Key) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const before = real.events.length;
    const found = await real.breaker.reset(this.key);
    const m = model.keys.get(this.key);
    check(found === (m !== undefined), `${this.toString()}: answered ${found}, model ${m !== undefined}`);
    const events = m && m.state !== 'closed' ? [`breaker.closed ${this.key}`] : [];
    if (m) model.keys.set(this.key, closed());
    await agree(model, real, this.key, events, before, this.toString());
  }
  toString = () => `reset(${this.key})`;
}

class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    model.now += this.ms;
    real.clock.ms += this.ms;
  }
  toString = () => `advance(${this.ms} ms)`;
}

/** Moves the clock to one of the rules' edges, give or take a millisecond: where off-by-ones live. */
class AdvanceToEdge implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly edge: 'window' | 'next probe',
    readonly deltaMs: -1 | 0 | 1,
  ) {}
  check = () => true;
  async run(model: Model, real: Real): Promise<void> {
    const probeTimes = [...model.keys.values()].flatMap((m) => (m.state !== 'closed' && m.nextProbeAt! > model.now ? [m.nextProbeAt!] : []));
    const target = this.edge === 'window' ? model.now + model.policy.failureWindowSeconds * 1000 : probeTimes.length ? Math.min(...probeTimes) : model.now;
    const ms = Math.max(0, target + this.deltaMs - model.now);
    model.now += ms;
    real.clock.ms += ms;
  }
  toString = () => `advanceTo(${this.edge} ${this.deltaMs >= 0 ? '+' : ''}${this.deltaMs} ms)`;
}

const key = fc.constantFrom(...KEYS);
const commands = [
  fc.tuple(key, fc.nat(1_000_000)).map(([k, id]) => new Admit(k, id)),
  fc.tuple(key, fc.nat(1_000_000)).map(([k, id]) => new AdmitTogether(k, id)),
  key.map((k) => new Success(k)),
  key.map((k) => new Failure(k)),
  // Failures come in bursts more often than anything else: enough to open breakers often.
  key.map((k) => new Failure(k)),
  key.map((k) => new Reset(k)),
  // Small steps, steps of whole seconds (they land on cooldown and window edges), and long quiet spells.
  fc.tuple(fc.constantFrom('window' as const, 'next probe' as const), fc.constantFrom(-1 as const, 0 as const, 1 as const)).map(([edge, d]) => new AdvanceToEdge(edge, d)),
  fc.oneof(fc.integer({ min: 0, max: 1500 }), fc.integer({ min: 0, max: 300 }).map((s) => s * 1000), fc.integer({ min: 0, max: 2000 }).map((s) => s * 1000)).map((ms) => new Advance(ms)),
];

const policy: fc.Arbitrary<BreakerPolicy> = fc
  .record({
    failureThreshold: fc.integer({ min: 1, max: 5 }),
    failureWindowSeconds: fc.integer({ min: 1, max: 120 }),
    cooldownSeconds: fc.integer({ min: 1, max: 60 }),
    capFactor: fc.constantFrom(1, 2, 4, 30),
    probeTimeoutSeconds: fc.integer({ min: 1, max: 300 }),
  })
  .map(({ capFactor, ...p }) => ({ ...p, maxCooldownSeconds: p.cooldownSeconds * capFactor }));

describe('circuit breaker against its model', () => {
  it(`agrees with the model on every answer, record and event (${RUNS} runs)`, async () => {
    const started = performance.now();
    await fc.assert(
      fc.asyncProperty(policy, fc.commands(commands, { maxCommands: 80, size: 'max' }), async (p, cmds) => {
        const clock = new FakeClock();
        const store = new MemoryBreakerStore();
        const events: LayerEvent[] = [];
        const member = () =>
          new CircuitBreaker(store, {
            policy: new BreakerPolicies({ '*': p }),
            clock: clock.now,
            closedCacheMs: 0,
            events: { emit: async (e) => void events.push(e) },
          });
        const real = { clock, store, breaker: member(), fleet: [member(), member(), member()], events };
        await fc.asyncModelRun(() => ({ model: { now: clock.ms, policy: p, keys: new Map() }, real }), cmds);
      }),
      { numRuns: RUNS },
    );
    if (RUNS >= 1000) console.log(`breaker model: ${RUNS} runs in ${Math.round(performance.now() - started)} ms`);
  }, 120_000);
});
