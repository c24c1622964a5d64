import { SFNServiceException } from '@aws-sdk/client-sfn';

/** Step Functions' payload quota: input, output and state data, in bytes of UTF-8. */
export const PAYLOAD_LIMIT_BYTES = 262_144;

/** Byte length of a JSON text, without encoding it when the answer is certain from its length. */
export function overPayloadLimit(json: string): boolean {
  if (json.length > PAYLOAD_LIMIT_BYTES) return true;
  if (json.length * 3 <= PAYLOAD_LIMIT_BYTES) return false;
  return Buffer.byteLength(json, 'utf8') > PAYLOAD_LIMIT_BYTES;
}

type SfnErrorCtor = new (opts: { message: string; $metadata: object }) => SFNServiceException;

/**
 * Throws the SDK's own exception class, so that in-process callers can use the same
 * `instanceof TaskTimedOut` checks as SDK callers; the HTTP layer sends its name as `__type`.
 */
export function apiError(Ctor: SfnErrorCtor, message: string): SFNServiceException {
  return new Ctor({ message, $metadata: {} });
}

/**
 * An error a Task state reports, as aws-local-stepfunctions expects one: its `name` is the ASL
 * error name matched by Retry/Catch, its `message` the cause. No `cause` property: the library
 * would prefer it over the message in its event log.
 */
export class TaskError extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

/**
 * An error that neither Retry nor Catch may handle (the library reads these two properties):
 * States.DataLimitExceeded, States.Runtime, and the end of an execution that is already over.
 */
export class TerminalError extends TaskError {
  readonly isRetryable = false;
  readonly isCatchable = false;
}

export function dataLimitError(what: string): TerminalError {
  return new TerminalError(
    'States.DataLimitExceeded',
    `The state/task '${what}' returned a result with a size exceeding the maximum number of bytes service limit.`,
  );
}

/** Error name and cause of anything thrown, as Lambda reports a function error. */
export function lambdaErrorOf(err: unknown): TaskError {
  const name = err instanceof Error ? err.name || 'Error' : 'Error';
  const message = err instanceof Error ? err.message : String(err);
  return new TaskError(name, JSON.stringify({ errorType: name, errorMessage: message }));
}
