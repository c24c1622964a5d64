import { describe, expect, it } from 'vitest';
import { classifyErrorName } from '#core/errors.ts';
import { RECOVERY_DEFAULTS, decideRecovery, recoveryStrategy } from '#core/recovery.ts';

describe('recovery strategies', () => {
  it('has the contract defaults per error type', () => {
    expect(RECOVERY_DEFAULTS.transient.maxRetries).toBe(3);
    expect(RECOVERY_DEFAULTS.timeout.maxRetries).toBe(1);
    expect(RECOVERY_DEFAULTS.resource.maxRetries).toBe(2);
    expect(RECOVERY_DEFAULTS.resource.baseDelaySeconds).toBeGreaterThan(RECOVERY_DEFAULTS.transient.baseDelaySeconds);
    expect(RECOVERY_DEFAULTS.dependency).toMatchObject({ maxRetries: 2, gatedByBreaker: true });
    expect(RECOVERY_DEFAULTS.permanent.maxRetries).toBe(0);
    expect(RECOVERY_DEFAULTS.validation.maxRetries).toBe(0);
  });

  it('lets a task override one error type and keep the others', () => {
    const task = { recovery: { transient: { maxRetries: 7 } } };
    expect(recoveryStrategy(task, 'transient').maxRetries).toBe(7);
    expect(recoveryStrategy(task, 'timeout').maxRetries).toBe(1);
  });

  it('retries until the budget is spent, with full-jitter exponential backoff', () => {
    const s = RECOVERY_DEFAULTS.transient;
    expect(decideRecovery(s, 0, () => 0.999)).toEqual({ retry: true, delaySeconds: 0 });
    expect(decideRecovery(s, 2, () => 0.999)).toEqual({ retry: true, delaySeconds: 3 });
    expect(decideRecovery(s, 3)).toEqual({ retry: false });
    expect(decideRecovery(RECOVERY_DEFAULTS.permanent, 0)).toEqual({ retry: false });
  });

  it('classifies Step Functions error names', () => {
    expect(classifyErrorName('transient')).toBe('transient');
    expect(classifyErrorName('States.Timeout')).toBe('timeout');
    expect(classifyErrorName('States.HeartbeatTimeout')).toBe('timeout');
    expect(classifyErrorName('States.DataLimitExceeded')).toBe('resource');
    expect(classifyErrorName('Lambda.ServiceException')).toBe('transient');
  });
});
