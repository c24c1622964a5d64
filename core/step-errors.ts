// The error names the steps function (functions/steps.ts) throws, so that the state machines' Retry
// can tell what is worth another attempt from what is not (infra/constructs/patterns.ts, STEP_RETRY).
// A step's failure is the layer's, not the task's: `transient` is retried by the state machine with
// backoff, `permanent` goes straight to the state's Catch.

import { classifyAwsError, isAwsOrNetworkError } from './classify.ts';

export type StepErrorName = 'transient' | 'permanent';

/**
 * transient: what another attempt may cure (throttling, a 5xx, a lost connection, anything the SDK
 * itself marks retryable); permanent: the rest (access denied, a missing record, a bug). Read from
 * the SDK's fields, never from messages.
 */
export function stepErrorName(err: unknown): StepErrorName {
  if (!(err instanceof Error)) return 'permanent';
  if (err.name === 'transient' || err.name === 'permanent') return err.name;
  // The one classifier (core/classify.ts); what is not an AWS or network error is a bug: permanent.
  return isAwsOrNetworkError(err) && classifyAwsError(err).type === 'transient' ? 'transient' : 'permanent';
}

/**
 * The error a step reports: named for the state machine's Retry, with a message that says which
 * step failed and the original error's name (the Catch's Cause carries it to the task or the execution).
 */
export function stepError(step: string, err: unknown): Error {
  const name = stepErrorName(err);
  const original = err instanceof Error ? err : new Error(String(err));
  const label = original.name && original.name !== name && original.name !== 'Error' ? `${original.name}: ` : '';
  const out = new Error(`${step}: ${label}${original.message}`, { cause: err });
  out.name = name;
  return out;
}
