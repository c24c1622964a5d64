// The circuit breaker's rules (core/breakers.ts), one at a time, on a fake clock and an in-memory
// store with DynamoDB's conditional writes. What counts against which key, as tables.
import { describe, expect, it } from 'vitest';
import {
  BreakerPolicies,
  breakerKeysFor,
  CircuitBreaker,
  type CircuitBreakerOptions,
  cooldownSeconds,
  DEFAULT_BREAKER_POLICY,
  failureBreakerKey,
  gitHost,
  successBreakerKeys,
} from '../../core/breakers.ts';
import type { TaskError } from '../../core/errors.ts';
import { eventLog, FakeClock, MemoryBreakerStore } from '../support/breakers.ts';

function setup(options: CircuitBreakerOptions = {}) {
  const clock = new FakeClock();
  const store = new MemoryBreakerStore();
  const { events, sink } = eventLog();
  const breaker = new CircuitBreaker(store, { clock: clock.now, closedCacheMs: 0, events: sink, ...options });
  const failTimes = async (key: string, n: number) => {
    for (let i = 0; i < n; i++) await breaker.recordFailure(key);
  };
  return { clock, store, events, breaker, failTimes };
}

describe('breaker keys of a task', () => {
  it.each([
    ['a command task', { agentType: 'tester', command: 'npm test' }, ['agent:tester']],
    ['a Claude Code task', { agentType: 'coder', instructions: 'fix it' }, ['agent:coder', 'dependency:model-api']],
    ['an https repository', { agentType: 'coder', command: 'make', workspace: { repository: 'https://github.com/org/repo.git' } }, ['agent:coder', 'dependency:git:github.com']],
    ['a host with a port and user, in capitals', { agentType: 'coder', command: 'make', workspace: { repository: 'https://me@Git.Example.COM:8443/org/repo' } }, ['agent:coder', 'dependency:git:git.example.com']],
    ['an ssh:// URL', { agentType: 'reviewer', instructions: 'review', workspace: { repository: 'ssh://git@gitlab.com:22/org/repo.git' } }, ['agent:reviewer', 'dependency:model-api', 'dependency:git:gitlab.com']],
    ['an scp-like address', { agentType: 'coder', command: 'make', workspace: { repository: 'git@github.com:org/repo.git' } }, ['agent:coder', 'dependency:git:github.com']],
    ['an scp-like address without a user', { agentType: 'coder', command: 'make', workspace: { repository: 'bitbucket.org:org/repo.git' } }, ['agent:coder', 'dependency:git:bitbucket.org']],
    ['an absolute local path', { agentType: 'coder', command: 'make', workspace: { repository: '/srv/git/repo.git' } }, ['agent:coder']],
    ['a relative local path with a colon after a slash', { agentType: 'coder', command: 'make', workspace: { repository: './repos/a:b' } }, ['agent:coder']],
    ['a file:// URL', { agentType: 'coder', command: 'make', workspace: { repository: 'file:///srv/git/repo.git' } }, ['agent:coder']],
  ])('%s needs %j', (_name, task, keys) => {
    expect(breakerKeysFor(task)).toEqual(keys);
  });

  it('a repository that is no URL and no address has no host', () => {
    expect(gitHost('https://')).toBeUndefined();
    expect(gitHost('repo')).toBeUndefined();
  });
});

describe('the key a failure counts against', () => {
  const task = { agentType: 'coder', breakers: ['agent:coder', 'dependency:model-api', 'dependency:git:github.com'] };
  const local = { agentType: 'tester', command: 'make', workspace: { repository: '/srv/repo' } };
  const cases: [string, typeof task | typeof local, Pick<TaskError, 'type' | 'source'>, string | undefined][] = [
    ['a user\'s bad command (permanent)', task, { type: 'permanent', source: 'command' }, undefined],
    ['invalid input (validation)', task, { type: 'validation', source: 'api' }, undefined],
    ['a refused model key (permanent, model API)', task, { type: 'permanent', source: 'model-api' }, undefined],
    ['a 529 from the model API (transient)', task, { type: 'transient', source: 'model-api' }, 'dependency:model-api'],
    ['a model API rate limit (resource)', task, { type: 'resource', source: 'model-api' }, 'dependency:model-api'],
    ['a clone that timed out (git)', task, { type: 'timeout', source: 'git' }, 'dependency:git:github.com'],
    ['a git failure of a local repository', local, { type: 'transient', source: 'git' }, 'agent:tester'],
    ['a transient failure of the command', task, { type: 'transient', source: 'command' }, 'agent:coder'],
    ['a timeout without a source', task, { type: 'timeout' }, 'agent:coder'],
    ['a lost agent (dependency, layer)', task, { type: 'dependency', source: 'layer' }, 'agent:coder'],
    ['a task over its budget (resource)', task, { type: 'resource', source: 'claude-code' }, undefined],
  ];
  it.each(cases)('%s', (_name, subject, error, key) => {
    expect(failureBreakerKey(subject, error)).toBe(key);
  });

  it('a plan task without recorded keys finds its git host from its repository', () => {
    expect(failureBreakerKey({ agentType: 'coder', workspace: { repository: 'git@gitlab.com:o/r.git' } }, { type: 'transient', source: 'git' })).toBe('dependency:git:gitlab.com');
  });
});

describe('the keys a run reports a success to', () => {
  const keys = ['agent:coder', 'dependency:model-api', 'dependency:git:github.com'];
  it.each([
    ['a completed run: all of them', { status: 'completed' as const }, keys],
    ['a permanent failure of the command: all of them', { status: 'failed' as const, error: { type: 'permanent' as const, source: 'command' as const } }, keys],
    ['a refused model key: all but the model API', { status: 'failed' as const, error: { type: 'permanent' as const, source: 'model-api' as const } }, ['agent:coder', 'dependency:git:github.com']],
    ['a repository that does not exist: all but git', { status: 'failed' as const, error: { type: 'validation' as const, source: 'git' as const } }, ['agent:coder', 'dependency:model-api']],
    ['a transient failure: none (Recover counts it)', { status: 'failed' as const, error: { type: 'transient' as const } }, []],
  ])('%s', (_name, outcome, expected) => {
    expect(successBreakerKeys(keys, outcome)).toEqual(expected);
  });
});

describe('policy', () => {
  it('defaults to 5 failures in 60 s, a 30 s cooldown doubling per re-open up to 15 minutes', () => {
    const policy = new BreakerPolicies().for('agent:coder');
    expect(policy).toEqual(DEFAULT_BREAKER_POLICY);
    expect(policy).toMatchObject({ failureThreshold: 5, failureWindowSeconds: 60 });
    expect([0, 1, 2, 3, 4, 5, 6, 60].map((n) => cooldownSeconds(policy, n))).toEqual([30, 60, 120, 240, 480, 900, 900, 900]);
  });

  it('is overridden by "*", then by prefixes (longer wins), then by the key itself', () => {
    const policies = BreakerPolicies.parse(
      JSON.stringify({
        'dependency:git:github.com': { failureThreshold: 9 },
        'dependency:*': { failureThreshold: 3, cooldownSeconds: 10 },
        'dependency:git:*': { failureThreshold: 4 },
        '*': { failureWindowSeconds: 120 },
      }),
    );
    expect(policies.for('agent:coder')).toMatchObject({ failureThreshold: 5, failureWindowSeconds: 120, cooldownSeconds: 30 });
    expect(policies.for('dependency:model-api')).toMatchObject({ failureThreshold: 3, cooldownSeconds: 10, failureWindowSeconds: 120 });
    expect(policies.for('dependency:git:gitlab.com')).toMatchObject({ failureThreshold: 4, cooldownSeconds: 10 });
    expect(policies.for('dependency:git:github.com')).toMatchObject({ failureThreshold: 9, cooldownSeconds: 10 });
  });

  it('unset or empty is the defaults', () => {
    expect(BreakerPolicies.parse(undefined).for('x')).toEqual(DEFAULT_BREAKER_POLICY);
    expect(BreakerPolicies.parse(' ').for('x')).toEqual(DEFAULT_BREAKER_POLICY);
  });

  it.each([
    ['{"*": {', /^XL_BREAKER_POLICY is not JSON: /],
    ['[1]', /^XL_BREAKER_POLICY: /],
    ['{"agent:coder": {"failureThreshold": 0}}', 'XL_BREAKER_POLICY["agent:coder"].failureThreshold: must be at least 1'],
    ['{"*": {"failureThreshold": 2.5}}', 'XL_BREAKER_POLICY["*"].failureThreshold: must be a whole number'],
    ['{"dependency:git:*": {"cooldownSeconds": "30"}}', 'XL_BREAKER_POLICY["dependency:git:*"].cooldownSeconds: must be a number of seconds'],
    ['{"*": {"cooldown": 30}}', 'XL_BREAKER_POLICY["*"]: unknown fields (cooldown; known: failureThreshold, failureWindowSeconds, cooldownSeconds, maxCooldownSeconds, probeTimeoutSeconds)'],
    ['{"agent:coder": 3}', 'XL_BREAKER_POLICY["agent:coder"]: must be an object of policy fields'],
    ['{"agent:*:x": {}}', /XL_BREAKER_POLICY\["agent:\*:x"\]: must be a key, or a key prefix ending in \*/],
    ['{"failureThreshold": 3}', 'XL_BREAKER_POLICY: "failureThreshold" must sit under a key pattern, e.g. {"*": {"failureThreshold": ...}} for every key'],
  ])('%s is refused, naming what is wrong', (text, message) => {
    expect(() => BreakerPolicies.parse(text)).toThrow(message);
  });
});

describe('closed', () => {
  it('opens when the failures within the window reach the threshold, with one event', async () => {
    const { breaker, store, events, failTimes, clock } = setup();
    await failTimes('agent:coder', 4);
    expect(await store.get('agent:coder')).toMatchObject({ state: 'closed', failures: 4 });
    expect(events).toEqual([]);
    await breaker.recordFailure('agent:coder');
    expect(await store.get('agent:coder')).toMatchObject({ state: 'open', failures: 5, openedAt: clock.iso(), nextProbeAt: clock.iso(30) });
    expect(events).toEqual([{ kind: 'breaker.opened', key: 'agent:coder', failures: 5, reason: '5 failures within 60 s', nextProbeAt: clock.iso(30) }]);
  });

  it('a failure drops out of the count once it is older than the window (a sliding window)', async () => {
    const { breaker, store, failTimes, clock } = setup();
    await failTimes('agent:coder', 2);
    clock.advance(30);
    await failTimes('agent:coder', 2);
    clock.advance(30); // the first two are 60 s old now: out
    await breaker.recordFailure('agent:coder');
    expect(await store.get('agent:coder')).toMatchObject({ state: 'closed', failures: 3 });
    await failTimes('agent:coder', 2);
    expect(await store.get('agent:coder')).toMatchObject({ state: 'open', failures: 5 });
  });

  it('a success resets the count', async () => {
    const { breaker, store, failTimes } = setup();
    await failTimes('agent:coder', 4);
    await breaker.recordSuccess('agent:coder');
    expect(await store.get('agent:coder')).toMatchObject({ state: 'closed', failures: 0 });
    await failTimes('agent:coder', 4);
    expect((await store.get('agent:coder'))?.state).toBe('closed');
  });

  it('a healthy fleet pays no write per task: a success with nothing counted writes nothing, and admission asks for no report', async () => {
    const { breaker, store } = setup();
    expect(await breaker.admit('agent:coder', 'p')).toEqual({ allowed: true, probe: false, report: false });
    await breaker.recordSuccess('agent:coder');
    await breaker.recordFailure('agent:coder');
    await breaker.recordSuccess('agent:coder');
    const writes = store.writes;
    await breaker.recordSuccess('agent:coder');
    expect(store.writes).toBe(writes);
  });

  it('admission asks for the run\'s success to be reported while failures are counted', async () => {
    const { breaker } = setup();
    await breaker.recordFailure('dependency:model-api');
    expect(await breaker.admit('dependency:model-api', 'p')).toEqual({ allowed: true, probe: false, report: true });
  });

  it('a process does not read a key it saw closed again within closedCacheMs', async () => {
    const { store, clock } = setup();
    const breaker = new CircuitBreaker(store, { clock: clock.now, closedCacheMs: 1000 });
    await breaker.admit('agent:coder', 'a');
    const reads = store.reads;
    await breaker.admit('agent:coder', 'b');
    expect(store.reads).toBe(reads);
    clock.advance(1);
    await breaker.admit('agent:coder', 'c');
    expect(store.reads).toBe(reads + 1);
  });

  it('follows each key\'s own policy', async () => {
    const { breaker, store, failTimes } = setup({ policy: BreakerPolicies.parse('{"dependency:git:*": {"failureThreshold": 2}}') });
    await failTimes('dependency:git:github.com', 2);
    await failTimes('agent:coder', 2);
    expect((await store.get('dependency:git:github.com'))?.state).toBe('open');
    expect((await store.get('agent:coder'))?.state).toBe('closed');
    expect(breaker.policyFor('dependency:git:github.com').failureThreshold).toBe(2);
  });
});

describe('open', () => {
  it('refuses until its cooldown ends, naming the breaker and when it will probe', async () => {
    const { breaker, failTimes, clock } = setup();
    await failTimes('dependency:model-api', 5);
    const probeAt = clock.iso(30);
    clock.advance(29);
    expect(await breaker.admit('dependency:model-api', 'p')).toEqual({
      allowed: false,
      reason: `circuit breaker dependency:model-api is open (5 failures, opened at ${clock.iso(-29)}); it lets one probe through at ${probeAt}`,
      retryAt: probeAt,
    });
  });

  it('ignores failures and successes of runs dispatched before it opened', async () => {
    const { breaker, store, failTimes, events } = setup();
    await failTimes('agent:coder', 5);
    const before = await store.get('agent:coder');
    await breaker.recordFailure('agent:coder');
    await breaker.recordSuccess('agent:coder');
    expect(await store.get('agent:coder')).toEqual(before);
    expect(events).toHaveLength(1);
  });

  it('after its cooldown, lets exactly one caller take the probe (half-open)', async () => {
    const { breaker, store, failTimes, clock, events } = setup();
    await failTimes('agent:coder', 5);
    clock.advance(30);
    expect(await breaker.admit('agent:coder', 'first')).toEqual({ allowed: true, probe: true, report: true });
    expect(await breaker.admit('agent:coder', 'second')).toEqual({
      allowed: false,
      reason: `circuit breaker agent:coder is half-open and its probe is out; if the probe does not report, another may go at ${clock.iso(900)}`,
      retryAt: clock.iso(900),
    });
    expect(await store.get('agent:coder')).toMatchObject({ state: 'half-open', probeId: 'first' });
    expect(events.map((e) => e.kind)).toEqual(['breaker.opened', 'breaker.half-open']);
  });
});

describe('half-open', () => {
  async function halfOpen(options: CircuitBreakerOptions = {}) {
    const s = setup(options);
    await s.failTimes('agent:coder', 5);
    s.clock.advance(30);
    await s.breaker.admit('agent:coder', 'probe-1');
    return s;
  }

  it('the probe\'s success closes it, with an event, and the count starts from zero', async () => {
    const { breaker, store, events } = await halfOpen();
    await breaker.recordSuccess('agent:coder');
    expect(await store.get('agent:coder')).toMatchObject({ state: 'closed', failures: 0 });
    expect(events.at(-1)).toEqual({ kind: 'breaker.closed', key: 'agent:coder', failures: 0, reason: 'the probe succeeded' });
    expect(await breaker.admit('agent:coder', 'x')).toEqual({ allowed: true, probe: false, report: false });
  });

  it('the probe\'s failure re-opens it with a doubled cooldown, up to the cap', async () => {
    const { breaker, store, clock, events } = await halfOpen();
    const cooldowns: number[] = [];
    for (let i = 0; i < 7; i++) {
      await breaker.recordFailure('agent:coder');
      const record = (await store.get('agent:coder'))!;
      const seconds = (Date.parse(record.nextProbeAt!) - clock.ms) / 1000;
      cooldowns.push(seconds);
      clock.advance(seconds);
      expect(await breaker.admit('agent:coder', `probe-${i + 2}`)).toMatchObject({ probe: true });
    }
    expect(cooldowns).toEqual([60, 120, 240, 480, 900, 900, 900]);
    expect(events.filter((e) => e.kind === 'breaker.opened').at(-1)).toMatchObject({ reason: 'the probe failed' });
  });

  it('once closed again, the next opening starts from the base cooldown', async () => {
    const { breaker, store, clock, failTimes } = await halfOpen();
    await breaker.recordFailure('agent:coder'); // re-open: 60 s
    clock.advance(60);
    await breaker.admit('agent:coder', 'probe-2');
    await breaker.recordSuccess('agent:coder');
    await failTimes('agent:coder', 5);
    expect(await store.get('agent:coder')).toMatchObject({ state: 'open', reopens: 0, nextProbeAt: clock.iso(30) });
  });

  it('a probe out longer than probeTimeoutSeconds is lost: one new probe may be taken', async () => {
    const { breaker, store, clock, events } = await halfOpen({ policy: { probeTimeoutSeconds: 120 } });
    clock.advance(119);
    expect(await breaker.admit('agent:coder', 'probe-2')).toMatchObject({ allowed: false });
    clock.advance(1);
    expect(await breaker.admit('agent:coder', 'probe-2')).toEqual({ allowed: true, probe: true, report: true });
    expect(await breaker.admit('agent:coder', 'probe-3')).toMatchObject({ allowed: false });
    expect(await store.get('agent:coder')).toMatchObject({ state: 'half-open', probeId: 'probe-2', nextProbeAt: clock.iso(120) });
    expect(events.at(-1)).toMatchObject({ kind: 'breaker.half-open', reason: 'the previous probe did not report in time' });
  });
});

describe('a task needing several breakers', () => {
  it('is admitted when all are, and reports to those with failures counted and those it probes', async () => {
    const { breaker, failTimes, clock } = setup();
    await failTimes('dependency:git:github.com', 5);
    await breaker.recordFailure('dependency:model-api');
    clock.advance(30);
    expect(await breaker.admitAll(['agent:coder', 'dependency:model-api', 'dependency:git:github.com'], 'd1')).toEqual({
      allowed: true,
      probe: true,
      report: ['dependency:model-api', 'dependency:git:github.com'],
    });
  });

  it('is refused by the first open one, naming it; a probe it took on an earlier key is given back', async () => {
    const { breaker, store, failTimes, clock } = setup();
    await failTimes('dependency:model-api', 5);
    clock.advance(20);
    await failTimes('dependency:git:github.com', 5);
    clock.advance(10); // model API may probe; git still cools down for 20 s
    const refused = await breaker.admitAll(['agent:coder', 'dependency:model-api', 'dependency:git:github.com'], 'd1');
    expect(refused).toMatchObject({ allowed: false, key: 'dependency:git:github.com', retryAt: clock.iso(20) });
    expect(await store.get('dependency:model-api')).toMatchObject({ state: 'half-open', nextProbeAt: clock.iso() });
    expect((await store.get('dependency:model-api'))?.probeId).toBeUndefined();
    expect(await breaker.admit('dependency:model-api', 'd2')).toMatchObject({ allowed: true, probe: true });
  });
});

describe('reset and the view', () => {
  it('reset closes an open breaker with an event; a key with no record is not found', async () => {
    const { breaker, store, failTimes, events } = setup();
    await failTimes('agent:tester', 5);
    expect(await breaker.reset('agent:tester')).toBe(true);
    expect(await store.get('agent:tester')).toMatchObject({ state: 'closed', failures: 0 });
    expect(events.at(-1)).toEqual({ kind: 'breaker.closed', key: 'agent:tester', failures: 0, reason: 'reset by request' });
    expect(await breaker.reset('agent:nobody')).toBe(false);
  });

  it('lists each key with its state, failures within the window, openedAt and next probe time', async () => {
    const { breaker, failTimes, clock } = setup();
    await failTimes('agent:coder', 2);
    await failTimes('dependency:model-api', 5);
    const openedAt = clock.iso();
    clock.advance(61);
    expect(await breaker.list()).toEqual([
      { key: 'agent:coder', state: 'closed', failures: 0 },
      { key: 'dependency:model-api', state: 'open', failures: 5, openedAt, nextProbeAt: clock.iso(-31) },
    ]);
  });
});
