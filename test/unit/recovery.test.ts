import { describe, expect, it } from 'vitest';
import { parsePlan } from '#core/plan.ts';
import { retryBudget } from '#core/patterns.ts';
import { RECOVERY_DEFAULTS, backoffDelay, decideRecovery, recoveryStrategy } from '#core/recovery.ts';

const task = (recovery: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  pattern: 'sequential',
  tasks: [{ id: 't', agentType: 'coder', command: 'true', recovery, ...extra }],
});

describe('recovery strategies', () => {
  it('has the contract defaults per error type', () => {
    expect(RECOVERY_DEFAULTS.transient).toMatchObject({ maxRetries: 3, backoff: { strategy: 'exponential', jitter: 'full' } });
    expect(RECOVERY_DEFAULTS.timeout.maxRetries).toBe(1);
    expect(RECOVERY_DEFAULTS.resource.maxRetries).toBe(2);
    expect(RECOVERY_DEFAULTS.resource.backoff.baseSeconds).toBeGreaterThan(RECOVERY_DEFAULTS.transient.backoff.baseSeconds);
    expect(RECOVERY_DEFAULTS.dependency).toMatchObject({ maxRetries: 2, onOpen: 'fail' });
    expect(RECOVERY_DEFAULTS.permanent.maxRetries).toBe(0);
    expect(RECOVERY_DEFAULTS.validation.maxRetries).toBe(0);
  });

  it('lets a task override one error type and keep the others', () => {
    const t = { recovery: { transient: { maxRetries: 7 } } };
    expect(recoveryStrategy(t, 'transient')).toMatchObject({ maxRetries: 7, backoff: RECOVERY_DEFAULTS.transient.backoff });
    expect(recoveryStrategy(t, 'timeout').maxRetries).toBe(1);
  });

  it('still reads the first form of the backoff, baseDelaySeconds and maxDelaySeconds', () => {
    expect(recoveryStrategy({ recovery: { transient: { baseDelaySeconds: 4, maxDelaySeconds: 8 } } }, 'transient').backoff).toEqual({
      strategy: 'exponential',
      baseSeconds: 4,
      capSeconds: 8,
      jitter: 'full',
    });
  });

  it('gives retries asked for a type that has none by default a backoff of their own', () => {
    expect(recoveryStrategy({ recovery: { permanent: { maxRetries: 2 } } }, 'permanent').backoff.capSeconds).toBeGreaterThan(0);
  });

  it.each([
    ['fixed', [5, 5, 5, 5]],
    ['linear', [5, 10, 15, 20]],
    ['exponential', [5, 10, 20, 20]],
  ] as const)('computes %s backoff without jitter, capped', (strategy, delays) => {
    const b = { strategy, baseSeconds: 5, capSeconds: 20, jitter: 'none' as const };
    expect([0, 1, 2, 3].map((n) => backoffDelay(b, n))).toEqual(delays);
  });

  it('draws full jitter from [0, d] and equal jitter from [d/2, d]', () => {
    const b = { strategy: 'fixed' as const, baseSeconds: 10, capSeconds: 10 };
    expect(backoffDelay({ ...b, jitter: 'full' }, 0, () => 0)).toBe(0);
    expect(backoffDelay({ ...b, jitter: 'full' }, 0, () => 0.999)).toBe(10);
    expect(backoffDelay({ ...b, jitter: 'equal' }, 0, () => 0)).toBe(5);
    expect(backoffDelay({ ...b, jitter: 'equal' }, 0, () => 0.999)).toBe(10);
  });

  it('never waits longer than the cap, however many retries came before', () => {
    const b = { strategy: 'exponential' as const, baseSeconds: 1, capSeconds: 30, jitter: 'none' as const };
    expect(backoffDelay(b, 1000)).toBe(30);
  });

  it('retries until the budget is spent, then falls back once, then fails with the escalation', () => {
    const s = recoveryStrategy(
      { recovery: { transient: { maxRetries: 1, fallback: { action: 'agent-type', agentType: 'architect' }, escalation: 'notify' } } },
      'transient',
    );
    expect(decideRecovery(s, 0, { random: () => 0 })).toEqual({ action: 'retry', delaySeconds: 0 });
    expect(decideRecovery(s, 1)).toEqual({ action: 'fallback', fallback: { action: 'agent-type', agentType: 'architect' } });
    expect(decideRecovery(s, 1, { fallbackUsed: true })).toEqual({ action: 'fail', escalation: 'notify' });
    expect(decideRecovery(RECOVERY_DEFAULTS.permanent, 0)).toEqual({ action: 'fail' });
  });
});

describe('a task\'s loops in the worst case (what sizes its batch)', () => {
  it('counts every retry over all error types, one fallback run and the breaker waits', () => {
    expect(retryBudget({})).toBe(3 + 1 + 2 + 2);
    expect(retryBudget({ recovery: { transient: { maxRetries: 20 }, permanent: { maxRetries: 1 } } })).toBe(20 + 1 + 2 + 2 + 1);
    expect(retryBudget({ recovery: { permanent: { fallback: { action: 'agent-type', agentType: 'architect' } } } })).toBe(8 + 1);
    expect(retryBudget({ recovery: { permanent: { fallback: { action: 'skip' } } } })).toBe(8);
    expect(retryBudget({ recovery: { dependency: { onOpen: 'wait' } } })).toBe(8 + 10);
  });
});

describe('recovery in the plan', () => {
  it('accepts the whole strategy: backoff, fallback, escalation and onOpen', () => {
    const plan = parsePlan(
      task({
        transient: { maxRetries: 2, backoff: { strategy: 'linear', baseSeconds: 2, capSeconds: 10, jitter: 'equal' }, fallback: { action: 'default-output', output: { ok: false } } },
        timeout: { fallback: { action: 'skip', reason: 'best effort' }, escalation: 'notify' },
        dependency: { onOpen: 'wait', escalation: 'open-breaker' },
        resource: { fallback: { action: 'agent-type', agentType: 'architect' }, escalation: 'fail-execution' },
      }),
    );
    expect(plan.pattern === 'sequential' && plan.tasks[0]!.recovery?.dependency).toEqual({ onOpen: 'wait', escalation: 'open-breaker' });
  });

  it.each([
    [{ transient: { backoff: { strategy: 'cubic' } } }, '/tasks/0/recovery/transient/backoff/strategy'],
    [{ transient: { backoff: { strategy: 'fixed', baseSeconds: 10, capSeconds: 5 } } }, '/tasks/0/recovery/transient/backoff/capSeconds'],
    [{ transient: { backoff: { strategy: 'fixed' }, baseDelaySeconds: 3 } }, '/tasks/0/recovery/transient/backoff'],
    [{ transient: { fallback: { action: 'retry-forever' } } }, '/tasks/0/recovery/transient/fallback/action'],
    [{ transient: { fallback: { action: 'agent-type', agentType: 'coder' } } }, '/tasks/0/recovery/transient/fallback/agentType'],
    [{ transient: { fallback: { action: 'agent-type', agentType: 'janitor' } } }, '/tasks/0/recovery/transient/fallback/agentType'],
    [{ transient: { fallback: { action: 'default-output', output: { big: 'x'.repeat(40_000) } } } }, '/tasks/0/recovery/transient/fallback/output'],
    [{ transient: { escalation: 'page-everyone' } }, '/tasks/0/recovery/transient/escalation'],
    [{ transient: { onOpen: 'wait' } }, '/tasks/0/recovery/transient/onOpen'],
    [{ sometimes: { maxRetries: 1 } }, '/tasks/0/recovery'],
  ])('refuses %j, naming %s', (recovery, path) => {
    expect(() => parsePlan(task(recovery))).toThrow(expect.objectContaining({ details: expect.arrayContaining([expect.objectContaining({ path })]) }));
  });

  it('refuses a fallback agent type that lacks the task\'s capability', () => {
    const plan = task({ transient: { fallback: { action: 'agent-type', agentType: 'reviewer' } } }, { capability: 'refactoring' });
    expect(() => parsePlan(plan)).toThrow(/reviewer has no capability "refactoring"/);
  });
});
