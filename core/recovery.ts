// Recovery strategies per error type (the design's RecoveryStrategy: retries, backoff, fallback
// action, escalation policy), with the contract's defaults. A task's `recovery` field overrides them
// one error type at a time; the state machine's Recover step (core/steps.ts) carries them out.
import type { AgentType } from './agent-types.ts';
import type { ErrorType } from './errors.ts';

export const BACKOFF_STRATEGIES = ['fixed', 'linear', 'exponential'] as const;
export const JITTERS = ['full', 'equal', 'none'] as const;
export const ESCALATIONS = ['notify', 'open-breaker', 'fail-execution'] as const;

export interface Backoff {
  strategy: (typeof BACKOFF_STRATEGIES)[number];
  baseSeconds: number;
  capSeconds: number;
  jitter: (typeof JITTERS)[number];
}

/** Once the retries are spent: another agent type, a default output, or a skip. */
export type FallbackAction =
  | { action: 'agent-type'; agentType: AgentType }
  | { action: 'default-output'; output: Record<string, unknown> }
  | { action: 'skip'; reason?: string };

/** When the task fails for good: tell someone, open the breaker, or end the whole execution now. */
export type EscalationPolicy = (typeof ESCALATIONS)[number];

export interface RecoveryStrategy {
  errorType: ErrorType;
  maxRetries: number;
  backoff: Backoff;
  fallback?: FallbackAction;
  escalation?: EscalationPolicy;
  /** A dependency's open breaker refusing the task: fail it at once (the default) or wait for the probe. */
  onOpen: 'fail' | 'wait';
}

const exponential = (baseSeconds: number, capSeconds: number): Backoff => ({ strategy: 'exponential', baseSeconds, capSeconds, jitter: 'full' });
const none: Backoff = { strategy: 'fixed', baseSeconds: 0, capSeconds: 0, jitter: 'none' };

/** The contract's defaults: transient 3 retries with exponential backoff and full jitter; timeout 1;
 * resource 2 with longer backoff; dependency 2 (gated by the breakers); permanent and validation none. */
export const RECOVERY_DEFAULTS: Record<ErrorType, RecoveryStrategy> = {
  transient: { errorType: 'transient', maxRetries: 3, backoff: exponential(1, 30), onOpen: 'fail' },
  timeout: { errorType: 'timeout', maxRetries: 1, backoff: exponential(1, 10), onOpen: 'fail' },
  resource: { errorType: 'resource', maxRetries: 2, backoff: exponential(10, 300), onOpen: 'fail' },
  dependency: { errorType: 'dependency', maxRetries: 2, backoff: exponential(5, 120), onOpen: 'fail' },
  permanent: { errorType: 'permanent', maxRetries: 0, backoff: none, onOpen: 'fail' },
  validation: { errorType: 'validation', maxRetries: 0, backoff: none, onOpen: 'fail' },
};

/** How many times in a row a task waits for an open breaker (`onOpen: "wait"`) before it fails. */
export const MAX_BREAKER_WAITS = 10;

/** A plan's `recovery[errorType]` (core/plan.ts validates it): each field overrides the default's. */
export interface RecoveryOverride {
  maxRetries?: number;
  baseDelaySeconds?: number;
  maxDelaySeconds?: number;
  backoff?: { strategy: Backoff['strategy']; baseSeconds?: number; capSeconds?: number; jitter?: Backoff['jitter'] };
  fallback?: FallbackAction;
  escalation?: EscalationPolicy;
  onOpen?: 'fail' | 'wait';
}

export function recoveryStrategy(task: { recovery?: Partial<Record<ErrorType, RecoveryOverride>> }, errorType: ErrorType): RecoveryStrategy {
  const base = RECOVERY_DEFAULTS[errorType];
  const o = task.recovery?.[errorType];
  if (!o) return base;
  // The first form, baseDelaySeconds/maxDelaySeconds, tunes the default shape.
  const legacy = o.baseDelaySeconds !== undefined || o.maxDelaySeconds !== undefined;
  const backoff: Backoff = o.backoff
    ? {
        strategy: o.backoff.strategy,
        baseSeconds: o.backoff.baseSeconds ?? Math.max(1, base.backoff.baseSeconds),
        capSeconds: o.backoff.capSeconds ?? Math.max(o.backoff.baseSeconds ?? 1, base.backoff.capSeconds, 1),
        jitter: o.backoff.jitter ?? 'full',
      }
    : legacy
      ? {
          ...exponential(1, 30),
          ...(base.maxRetries > 0 ? base.backoff : {}),
          ...(o.baseDelaySeconds !== undefined ? { baseSeconds: o.baseDelaySeconds } : {}),
          ...(o.maxDelaySeconds !== undefined ? { capSeconds: o.maxDelaySeconds } : {}),
        }
      : base.maxRetries === 0 && (o.maxRetries ?? 0) > 0
        ? exponential(1, 30) // retries asked for an error type that has none by default
        : base.backoff;
  return {
    errorType,
    maxRetries: o.maxRetries ?? base.maxRetries,
    backoff,
    ...(o.fallback ? { fallback: o.fallback } : {}),
    ...(o.escalation ? { escalation: o.escalation } : {}),
    onOpen: o.onOpen ?? base.onOpen,
  };
}

/**
 * The delay before retry number `retry + 1` (0-based `retry`), whole seconds (a Wait state's
 * SecondsPath takes an integer): fixed base, linear base * (n + 1), exponential base * 2^n, capped;
 * then full jitter (random in [0, d]), equal jitter (d/2 + random in [0, d/2]) or none.
 */
export function backoffDelay(backoff: Backoff, retry: number, random: () => number = Math.random): number {
  const { baseSeconds: base, capSeconds: cap } = backoff;
  const raw = backoff.strategy === 'fixed' ? base : backoff.strategy === 'linear' ? base * (retry + 1) : base * 2 ** Math.min(retry, 30);
  const d = Math.min(cap, raw);
  const jittered = backoff.jitter === 'full' ? random() * d : backoff.jitter === 'equal' ? d / 2 + random() * (d / 2) : d;
  return Math.max(0, Math.min(Math.round(jittered), Math.ceil(cap)));
}

export type RecoveryDecision =
  | { action: 'retry'; delaySeconds: number }
  | { action: 'fallback'; fallback: FallbackAction }
  | { action: 'fail'; escalation?: EscalationPolicy };

/**
 * What happens after a failure. `retriesSoFar` counts earlier retries for this error type, so each
 * type has its own budget, as the contract's defaults are written per type. A fallback runs once
 * per task (`fallbackUsed`): after another agent type failed too, the task fails for good.
 */
export function decideRecovery(
  strategy: RecoveryStrategy,
  retriesSoFar: number,
  opts: { fallbackUsed?: boolean; random?: () => number } = {},
): RecoveryDecision {
  if (retriesSoFar < strategy.maxRetries) {
    return { action: 'retry', delaySeconds: backoffDelay(strategy.backoff, retriesSoFar, opts.random) };
  }
  if (strategy.fallback && !opts.fallbackUsed) return { action: 'fallback', fallback: strategy.fallback };
  return { action: 'fail', ...(strategy.escalation ? { escalation: strategy.escalation } : {}) };
}
