// The error names the steps function (functions/steps.ts) throws, so that the state machines' Retry
// can tell what is worth another attempt from what is not (infra/constructs/patterns.ts, STEP_RETRY).
// A step's failure is the layer's, not the task's: `transient` is retried by the state machine with
// backoff, `permanent` goes straight to the state's Catch.

export type StepErrorName = 'transient' | 'permanent';

/** An AWS SDK v3 service exception, as far as this module reads one. */
interface SdkErrorShape {
  name?: string;
  code?: string;
  $fault?: 'client' | 'server';
  $retryable?: { throttling?: boolean } | boolean;
  $metadata?: { httpStatusCode?: number };
}

/** Throttling and capacity errors of the services the steps call (DynamoDB above all). */
const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'TransactionInProgressException',
]);

/** Errors of the connection, not of the request: the SDK's own timeout and Node's socket errors. */
const NETWORK = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND']);

/**
 * transient: what another attempt may cure (throttling, a 5xx, a lost connection, anything the SDK
 * itself marks retryable); permanent: the rest (access denied, a missing record, a bug). Read from
 * the SDK's fields, never from messages.
 */
export function stepErrorName(err: unknown): StepErrorName {
  if (!(err instanceof Error)) return 'permanent';
  if (err.name === 'transient' || err.name === 'permanent') return err.name;
  const e = err as Error & SdkErrorShape;
  if (e.$retryable) return 'transient';
  if (e.$fault === 'server') return 'transient';
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status === 429 || status >= 500)) return 'transient';
  if (THROTTLING.has(e.name)) return 'transient';
  if (NETWORK.has(e.name) || (e.code !== undefined && NETWORK.has(e.code))) return 'transient';
  return 'permanent';
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
