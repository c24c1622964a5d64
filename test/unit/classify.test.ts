// The classifier's table (docs/design.md, "Recovery"): every failure source, row by row.
import { describe, expect, it } from 'vitest';
import {
  classifyAgentError,
  classifyApiError,
  classifyAwsError,
  classifyGit,
  classifyModelApiStatus,
  classifyModelApiText,
  classifyProcessEnd,
  classifyStatesError,
} from '#core/classify.ts';

const aws = (name: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(`${name} happened`), { name, ...extra });

describe('the classifier', () => {
  it.each([
    [{ code: 75, signal: null }, 'transient'],
    [{ code: 1, signal: null, stderr: 'boom' }, 'permanent'],
    [{ code: 2, signal: null }, 'permanent'],
    [{ code: 126, signal: null }, 'permanent'],
    [{ code: 127, signal: null, stderr: 'sh: 1: nope: not found' }, 'permanent'],
    [{ code: null, signal: 'SIGKILL' }, 'resource'],
    [{ code: 137, signal: null, stderr: 'Killed' }, 'resource'],
    [{ code: null, signal: 'SIGTERM' }, 'transient'],
    [{ code: null, signal: 'SIGSEGV' }, 'transient'],
    [{ code: null, signal: 'SIGKILL', timedOut: true }, 'timeout'],
  ] as const)('a command that ended %o is %s, from the command', (end, type) => {
    expect(classifyProcessEnd(end)).toMatchObject({ type, source: 'command' });
  });

  it('says nothing of a command that exited 0, and keeps the tail of stderr as the message', () => {
    expect(classifyProcessEnd({ code: 0, signal: null })).toBeUndefined();
    expect(classifyProcessEnd({ code: 3, signal: null, stderr: '  no such file\n' })?.message).toBe('no such file');
  });

  it.each([
    ['transient', 'transient', 'layer'],
    ['dependency', 'dependency', 'layer'],
    ['validation', 'validation', 'layer'],
    ['States.Timeout', 'timeout', 'layer'],
    ['States.HeartbeatTimeout', 'timeout', 'layer'],
    ['States.DataLimitExceeded', 'resource', 'layer'],
    ['States.Permissions', 'permanent', 'layer'],
    ['States.Runtime', 'permanent', 'layer'],
    ['States.TaskFailed', 'transient', 'layer'],
    ['Lambda.ServiceException', 'transient', 'aws'],
    ['Lambda.TooManyRequestsException', 'transient', 'aws'],
    ['Lambda.Unknown', 'transient', 'aws'],
    ['Lambda.ResourceNotFoundException', 'dependency', 'aws'],
    ['SQS.AmazonSQSException', 'transient', 'aws'],
    [undefined, 'transient', 'layer'],
  ] as const)('a Step Functions error %s is %s, from %s', (name, type, source) => {
    expect(classifyStatesError(name, 'cause')).toMatchObject({ type, source, message: 'cause' });
  });

  it.each([
    [aws('ThrottlingException'), 'transient'],
    [aws('ProvisionedThroughputExceededException'), 'transient'],
    [aws('TooManyRequestsException'), 'transient'],
    [aws('SlowDown'), 'transient'],
    [aws('InternalServerError', { $metadata: { httpStatusCode: 500 } }), 'transient'],
    [aws('ServiceUnavailable', { $metadata: { httpStatusCode: 503 } }), 'transient'],
    [aws('Whatever', { $retryable: {} }), 'transient'],
    [aws('TimeoutError'), 'transient'],
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'transient'],
    [aws('AccessDeniedException', { $metadata: { httpStatusCode: 400 } }), 'permanent'],
    [aws('AccessDenied', { $metadata: { httpStatusCode: 403 } }), 'permanent'],
    [aws('UnrecognizedClientException'), 'permanent'],
    [aws('ExpiredTokenException'), 'permanent'],
    [aws('ResourceNotFoundException'), 'dependency'],
    [aws('QueueDoesNotExist'), 'dependency'],
    [aws('NoSuchKey', { $metadata: { httpStatusCode: 404 } }), 'dependency'],
    [aws('ValidationException', { $metadata: { httpStatusCode: 400 } }), 'permanent'],
    [aws('SomethingNew', { $metadata: { httpStatusCode: 418 } }), 'permanent'],
  ] as const)('an AWS SDK error %s is %s, from aws', (err, type) => {
    expect(classifyAwsError(err)).toMatchObject({ type, source: 'aws' });
  });

  it.each([
    [401, 'permanent'],
    [403, 'permanent'],
    [429, 'transient'],
    [408, 'transient'],
    [413, 'resource'],
    [500, 'dependency'],
    [503, 'dependency'],
    [529, 'dependency'],
    [400, 'validation'],
  ] as const)('the model API answering %i is %s, from model-api', (status, type) => {
    expect(classifyModelApiStatus(status)).toMatchObject({ type, source: 'model-api' });
  });

  it.each([
    ['API Error: 529 {"type":"error","error":{"type":"overloaded_error"}}', 'dependency'],
    ['API Error: 429 rate_limit_error', 'transient'],
    ['API Error: 401 authentication_error: invalid x-api-key', 'permanent'],
    ['Overloaded', 'dependency'],
    ['Invalid API key · Please run /login', 'permanent'],
    ['rate limit reached', 'transient'],
  ] as const)('the CLI saying %j is a %s failure of the model API', (text, type) => {
    expect(classifyModelApiText(text)).toMatchObject({ type, source: 'model-api' });
  });

  it('leaves error text that names no model API error to the caller', () => {
    expect(classifyModelApiText('TypeError: undefined is not a function')).toBeUndefined();
  });

  it.each([
    ['clone', 'fatal: Authentication failed for \'https://git.example.com/a/b.git/\'', 'permanent'],
    ['clone', 'fatal: could not read Username for \'https://git.example.com\': terminal prompts disabled', 'permanent'],
    ['clone', 'remote: Repository not found.\nfatal: repository \'https://git.example.com/a/b.git/\' not found', 'permanent'],
    ['clone', 'fatal: repository \'/tmp/nope\' does not exist', 'permanent'],
    ['clone', 'warning: Could not find remote branch nope to clone.\nfatal: Remote branch nope not found in upstream origin', 'permanent'],
    ['clone', 'fatal: unable to access \'https://git.example.com/a.git/\': Could not resolve host: git.example.com', 'dependency'],
    ['clone', 'fatal: unable to access \'https://git.example.com/a.git/\': Failed to connect to git.example.com port 443: Connection refused', 'dependency'],
    ['clone', 'error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502', 'dependency'],
    ['fetch', 'fatal: the remote end hung up unexpectedly', 'dependency'],
    ['push', ' ! [rejected]        main -> main (fetch first)\nerror: failed to push some refs', 'transient'],
    ['push', 'remote: Permission to a/b.git denied to bot.\nfatal: unable to access: The requested URL returned error: 403', 'permanent'],
    ['push', 'fatal: unable to access: Could not resolve host: git.example.com', 'dependency'],
    ['push', 'something odd', 'dependency'],
    ['clone', 'something odd', 'permanent'],
  ] as const)('git %s failing with %j is %s, from git', (phase, stderr, type) => {
    expect(classifyGit(phase, stderr)).toMatchObject({ type, source: 'git' });
  });

  it('counts a git host that does not answer in time as a dependency failure', () => {
    expect(classifyGit('clone', '', { timedOut: true })).toMatchObject({ type: 'dependency', source: 'git', message: 'the clone timed out' });
  });

  it('makes the API\'s refusals failures from the api, and its 5xx failures of the layer', () => {
    expect(classifyApiError({ type: 'validation', status: 400, message: 'invalid plan' })).toEqual({ type: 'validation', source: 'api', message: 'invalid plan' });
    expect(classifyApiError({ type: 'transient', status: 503, message: 'the workflow could not be started' })).toEqual({ type: 'transient', source: 'layer', message: 'the workflow could not be started' });
  });

  it.each([
    [aws('ThrottlingException', { $metadata: { httpStatusCode: 400 } }), 'transient', 'aws'],
    [aws('NoSuchKey', { $metadata: { httpStatusCode: 404 } }), 'dependency', 'aws'],
    [Object.assign(new Error('write failed'), { code: 'ENOSPC' }), 'resource', 'agent'],
    [new Error('something broke'), 'transient', 'agent'],
  ] as const)('the agent failing around a run with %s is %s, from %s', (err, type, source) => {
    expect(classifyAgentError(err, 'the agent could not run the task')).toMatchObject({ type, source, message: expect.stringMatching(/^the agent could not run the task: /) });
  });
});
