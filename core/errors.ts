// The six error types of the design document, and the small named errors the layer raises.

export const ERROR_TYPES = ['transient', 'permanent', 'resource', 'timeout', 'validation', 'dependency'] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

export function isErrorType(value: unknown): value is ErrorType {
  return typeof value === 'string' && (ERROR_TYPES as readonly string[]).includes(value);
}

/**
 * Where a failure came from (the classifier's second answer, beside the type): the task's own
 * command, the Claude Code CLI, the model API as the model proxy sees it, a git host, an AWS
 * service, the layer itself (its steps, a lost agent), the agent around the run (disk, its own AWS
 * calls), or the engines' checks of a completed run (coverage, review gates, generated tests).
 */
export const ERROR_SOURCES = ['command', 'claude-code', 'model-api', 'git', 'aws', 'layer', 'agent', 'engine', 'api'] as const;
export type ErrorSource = (typeof ERROR_SOURCES)[number];

export function isErrorSource(value: unknown): value is ErrorSource {
  return typeof value === 'string' && (ERROR_SOURCES as readonly string[]).includes(value);
}

/** A task's error as recorded and reported (TaskResult.error). */
export interface TaskError {
  type: ErrorType;
  message: string;
  source?: ErrorSource;
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
