// The classifier (the design's Error Classification): every source of failure maps here to one of
// the six error types, and records where it came from. Recovery (core/recovery.ts) and the circuit
// breakers act on the type; users read the source beside the message. docs/design.md has the table.
import type { ErrorSource, ErrorType, TaskError } from './errors.ts';
import { isErrorType } from './errors.ts';

/** Exit code a command uses to ask for a retry (the contract's, after BSD's EX_TEMPFAIL). */
export const EXIT_TRANSIENT = 75;
const MESSAGE_CAP = 4096;

const error = (type: ErrorType, source: ErrorSource, message: string): TaskError => ({ type, source, message: message.slice(0, MESSAGE_CAP) });

/** How a process ended: by its own exit, by a signal nobody of the layer sent, or killed at its timeout. */
export interface ProcessEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The layer killed it at the task's timeoutSeconds. */
  timedOut?: boolean;
  /** The tail of its stderr. */
  stderr?: string;
}

/**
 * A task's command (the contract): exit 75 is transient; killed at its timeout, timeout; killed by
 * SIGKILL from outside the layer, resource (the kernel's OOM killer sends it when the container is
 * over its memory limit), and so is exit 137 (a shell whose child was SIGKILLed); another signal,
 * transient; 126 and 127 (not executable, not found) and any other non-zero exit, permanent with the
 * tail of stderr.
 */
export function classifyProcessEnd(end: ProcessEnd, source: ErrorSource = 'command'): TaskError | undefined {
  const tail = end.stderr?.trim() ?? '';
  if (end.timedOut) return error('timeout', source, tail ? `timed out: ${tail}` : 'timed out');
  if (end.signal === 'SIGKILL') return error('resource', source, `killed by SIGKILL (out of memory?)${tail ? `: ${tail}` : ''}`);
  if (end.signal !== null) return error('transient', source, `killed by signal ${end.signal}${tail ? `: ${tail}` : ''}`);
  if (end.code === 0) return undefined;
  if (end.code === EXIT_TRANSIENT) return error('transient', source, tail || `exit code ${EXIT_TRANSIENT}`);
  if (end.code === 126 || end.code === 127) return error('permanent', source, tail || `exit code ${end.code}: the command could not be run`);
  // 128 + SIGKILL: a shell saying its child was SIGKILLed, as the OOM killer does to the largest process.
  if (end.code === 137) return error('resource', source, `a process of the command was killed by SIGKILL (exit 137: out of memory?)${tail ? `: ${tail}` : ''}`);
  return error('permanent', source, tail || `exit code ${end.code}`);
}

/**
 * An error name as Step Functions reports it in a Catch. Agents fail tasks with the error type as
 * the name; the rest are the service's own or the steps Lambda's.
 */
export function classifyStatesError(name: string | undefined, cause = ''): TaskError {
  const message = cause || name || 'unknown error';
  if (isErrorType(name)) return error(name, 'layer', message);
  switch (name) {
    case 'States.Timeout':
    case 'States.HeartbeatTimeout':
      return error('timeout', 'layer', message);
    case 'States.DataLimitExceeded':
      return error('resource', 'layer', message);
    case 'States.Permissions':
    case 'States.Runtime':
      return error('permanent', 'layer', message);
    case 'Lambda.ResourceNotFoundException':
      return error('dependency', 'aws', message);
  }
  if (name?.startsWith('Lambda.') || name?.startsWith('SQS.')) return error('transient', 'aws', message);
  // States.TaskFailed and anything new: worth a retry rather than a lost task.
  return error('transient', 'layer', message);
}

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
  'LimitExceededException',
  'TransactionInProgressException',
]);
const REFUSED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'UnauthorizedOperation',
  'KMSAccessDeniedException',
  'KMSDisabledException',
]);
const MISSING = new Set([
  'ResourceNotFoundException',
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
  'NoSuchBucket',
  'NoSuchKey',
  'StateMachineDoesNotExist',
  'ExecutionDoesNotExist',
  'ClusterNotFoundException',
]);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'NetworkingError']);

/** An AWS SDK v3 service error, or a network error on the way to one (not a bug of the caller's). */
export function isAwsOrNetworkError(err: unknown): boolean {
  const e = (err ?? {}) as { name?: string; code?: string; $metadata?: unknown; $retryable?: unknown; $fault?: unknown };
  if (e.$metadata !== undefined || e.$retryable !== undefined || e.$fault !== undefined) return true;
  return [e.name, e.code].some((n) => n !== undefined && (THROTTLING.has(n) || NETWORK.has(n)));
}

/**
 * An AWS SDK v3 error: throttling, 5xx and the network are transient; refused credentials or
 * permissions are permanent (a retry is refused again); a missing resource is a dependency.
 */
export function classifyAwsError(err: unknown): TaskError {
  const e = (err ?? {}) as { name?: string; code?: string; message?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number }; $fault?: string };
  const name = e.name ?? e.code ?? 'Error';
  const message = `${name}: ${e.message ?? String(err)}`;
  if (THROTTLING.has(name) || e.$retryable !== undefined) return error('transient', 'aws', message);
  if (REFUSED.has(name)) return error('permanent', 'aws', message);
  if (MISSING.has(name)) return error('dependency', 'aws', message);
  if (NETWORK.has(name) || (e.code && NETWORK.has(e.code))) return error('transient', 'aws', message);
  const status = e.$metadata?.httpStatusCode;
  if (status === 429 || (status !== undefined && status >= 500) || e.$fault === 'server') return error('transient', 'aws', message);
  if (status === 401 || status === 403) return error('permanent', 'aws', message);
  if (status === 404) return error('dependency', 'aws', message);
  // A 4xx the layer caused (a malformed call): retrying sends the same call again.
  if (status !== undefined && status >= 400) return error('permanent', 'aws', message);
  return error('transient', 'aws', message);
}

/**
 * The model API as the model proxy or the Claude Code CLI sees it: a refused key is permanent; 429
 * (rate limited) is transient; 529 (overloaded) and 5xx are the dependency's, and count against the
 * model API's breaker; another 4xx is the request's (validation).
 */
export function classifyModelApiStatus(status: number, message = ''): TaskError {
  const text = message || `the model API answered ${status}`;
  if (status === 401 || status === 403) return error('permanent', 'model-api', text);
  if (status === 429) return error('transient', 'model-api', text);
  if (status === 529 || status >= 500) return error('dependency', 'model-api', text);
  if (status === 408) return error('transient', 'model-api', text);
  if (status === 413) return error('resource', 'model-api', text);
  return error('validation', 'model-api', text);
}

/**
 * Error text of the model API as the CLI prints it (it keeps the status in the text): the same
 * rules as classifyModelApiStatus; undefined when the text names no model API error.
 */
export function classifyModelApiText(text: string): TaskError | undefined {
  const status = /\b(401|403|408|413|429|5\d\d)\b/.exec(text)?.[1];
  if (status) return classifyModelApiStatus(Number(status), text);
  if (/authentication|invalid.{0,20}api.?key|unauthori[sz]ed/i.test(text)) return error('permanent', 'model-api', text);
  if (/overloaded/i.test(text)) return error('dependency', 'model-api', text);
  if (/rate.?limit|too many requests/i.test(text)) return error('transient', 'model-api', text);
  return undefined;
}

export type GitPhase = 'clone' | 'fetch' | 'push';

const GIT_REFUSED = /authentication failed|could not read (username|password)|permission denied|invalid username or password|\b403\b|\b401\b|access denied/i;
const GIT_MISSING = /repository .* not found|not found|does not exist|does not appear to be a git repository|couldn't find remote ref|remote branch .* not found|did not match any|unknown revision|invalid reference/i;
const GIT_UNREACHABLE = /could not resolve host|connection (refused|timed out|reset)|failed to connect|network is unreachable|early eof|rpc failed|the remote end hung up|\b50[0-4]\b|temporary failure|operation timed out|ssl|tls/i;
const GIT_REJECTED = /\[rejected\]|non-fast-forward|fetch first|failed to push some refs/i;

/**
 * git against a host: refused credentials or a missing repository or ref are permanent (the task's
 * plan is wrong); an unreachable or failing host is a dependency (its breaker counts it); a push
 * that lost a race (non-fast-forward) is transient: the retry clones the new tip.
 */
export function classifyGit(phase: GitPhase, stderr: string, opts: { timedOut?: boolean } = {}): TaskError {
  const last = stderr.trim().split('\n').filter(Boolean).pop() ?? '';
  const what = phase === 'push' ? 'the push' : phase === 'fetch' ? 'the fetch' : 'the clone';
  const message = `${what} failed: ${last || 'git failed'}`;
  if (opts.timedOut) return error('dependency', 'git', `${what} timed out`);
  if (GIT_REFUSED.test(stderr)) return error('permanent', 'git', message);
  if (phase === 'push' && GIT_REJECTED.test(stderr)) return error('transient', 'git', message);
  if (GIT_UNREACHABLE.test(stderr)) return error('dependency', 'git', message);
  if (GIT_MISSING.test(stderr)) return error('permanent', 'git', message);
  return error(phase === 'push' ? 'dependency' : 'permanent', 'git', message);
}

/**
 * An error the API answers with (functions/lib/http.ts): its own type (validation for 400, 409 and
 * 413, permanent for 401, 403 and 404, transient for 429 and 5xx, as the contract says), from the
 * `api` when it refused the request, from the `layer` behind it on a 5xx.
 */
export function classifyApiError(err: { type: ErrorType; status: number; message: string }): TaskError {
  return { type: err.type, source: err.status < 500 ? 'api' : 'layer', message: err.message };
}

/**
 * The worker failed around the run (not the task's command): an AWS error keeps its own class; a
 * disk full is resource; anything else is a transient failure of the agent.
 */
export function classifyAgentError(err: unknown, what: string): TaskError {
  const e = (err ?? {}) as { code?: string; $metadata?: unknown; message?: string };
  if (e.$metadata !== undefined) {
    const aws = classifyAwsError(err);
    return { ...aws, message: `${what}: ${aws.message}` };
  }
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return error('resource', 'agent', `${what}: no space left (${e.message ?? e.code})`);
  if (e.code === 'ENOMEM') return error('resource', 'agent', `${what}: out of memory`);
  return error('transient', 'agent', `${what}: ${e.message ?? String(err)}`);
}
