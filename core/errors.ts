// The six error types of the design document, and the small named errors the layer raises.

export const ERROR_TYPES = ['transient', 'permanent', 'resource', 'timeout', 'validation', 'dependency'] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

export function isErrorType(value: unknown): value is ErrorType {
  return typeof value === 'string' && (ERROR_TYPES as readonly string[]).includes(value);
}

/**
 * Maps an error name as Step Functions reports it (a Catch's `Error`) to an error type.
 * Agents fail tasks with the error type as the error name; the rest are the service's own.
 */
export function classifyErrorName(name: string | undefined): ErrorType {
  if (isErrorType(name)) return name;
  switch (name) {
    case 'States.Timeout':
    case 'States.HeartbeatTimeout':
      return 'timeout';
    case 'States.DataLimitExceeded':
      return 'resource';
    case 'States.Permissions':
    case 'States.Runtime':
      return 'permanent';
    default:
      // Service hiccups (Lambda.ServiceException, SQS throttling, States.TaskFailed...) are worth a retry.
      return 'transient';
  }
}

export interface ErrorDetail {
  path: string;
  message: string;
}

/** An error with a type; the API maps it to a status code and the contract's error body. */
export class XlError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
    readonly status: number,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends XlError {
  constructor(message: string, details?: ErrorDetail[]) {
    super('validation', message, 400, details);
  }
}
export class ConflictError extends XlError {
  constructor(message: string) {
    super('validation', message, 409);
  }
}
export class PayloadTooLargeError extends XlError {
  constructor(message: string) {
    super('validation', message, 413);
  }
}
export class NotFoundError extends XlError {
  constructor(message: string) {
    super('permanent', message, 404);
  }
}
export class UnauthorizedError extends XlError {
  constructor(message = 'missing or wrong bearer token') {
    super('permanent', message, 401);
  }
}
