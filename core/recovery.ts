// Recovery strategies per error type (the design's RecoveryStrategy), with the contract's defaults.
// A task's `recovery` field overrides them one error type at a time.
import type { ErrorType } from './errors.ts';
import type { Task } from './plan.ts';

export interface RecoveryStrategy {
  errorType: ErrorType;
  maxRetries: number;
  /** Exponential backoff with full jitter: delay = random(0, min(maxDelay, base * 2^retry)). */
  baseDelaySeconds: number;
  maxDelaySeconds: number;
  /** dependency errors also go through the agent type's circuit breaker. */
  gatedByBreaker: boolean;
}

export const RECOVERY_DEFAULTS: Record<ErrorType, RecoveryStrategy> = {
  transient: { errorType: 'transient', maxRetries: 3, baseDelaySeconds: 1, maxDelaySeconds: 30, gatedByBreaker: false },
  timeout: { errorType: 'timeout', maxRetries: 1, baseDelaySeconds: 1, maxDelaySeconds: 10, gatedByBreaker: false },
  resource: { errorType: 'resource', maxRetries: 2, baseDelaySeconds: 10, maxDelaySeconds: 300, gatedByBreaker: false },
  dependency: { errorType: 'dependency', maxRetries: 2, baseDelaySeconds: 5, maxDelaySeconds: 120, gatedByBreaker: true },
  permanent: { errorType: 'permanent', maxRetries: 0, baseDelaySeconds: 0, maxDelaySeconds: 0, gatedByBreaker: false },
  validation: { errorType: 'validation', maxRetries: 0, baseDelaySeconds: 0, maxDelaySeconds: 0, gatedByBreaker: false },
};

export function recoveryStrategy(task: Pick<Task, 'recovery'>, errorType: ErrorType): RecoveryStrategy {
  const base = RECOVERY_DEFAULTS[errorType];
  const override = task.recovery?.[errorType];
  return override ? { ...base, ...override } : base;
}

export type RecoveryDecision = { retry: true; delaySeconds: number } | { retry: false };

/**
 * Whether a failed task runs again. `retriesSoFar` counts earlier retries for this error type,
 * so each error type has its own budget, as the contract's defaults are written per type.
 */
export function decideRecovery(
  strategy: RecoveryStrategy,
  retriesSoFar: number,
  random: () => number = Math.random,
): RecoveryDecision {
  if (retriesSoFar >= strategy.maxRetries) return { retry: false };
  const cap = Math.min(strategy.maxDelaySeconds, strategy.baseDelaySeconds * 2 ** retriesSoFar);
  return { retry: true, delaySeconds: Math.floor(random() * cap) };
}
