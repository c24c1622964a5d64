import { ConditionalCheckFailedException, InternalServerError, ProvisionedThroughputExceededException, ResourceNotFoundException } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { stepError, stepErrorName } from '#core/step-errors.ts';
import { STATUS_CHANGE, statusChangeOf } from '#core/execution-events.ts';

const sdk = <T extends object>(Ctor: new (o: { message: string; $metadata: object }) => T, status: number, extra: object = {}) =>
  Object.assign(new Ctor({ message: 'm', $metadata: { httpStatusCode: status } }), extra);

describe('the names a step\'s errors get for the state machine\'s Retry', () => {
  it('calls throttling, server errors and lost connections transient, from the SDK\'s fields', () => {
    expect(stepErrorName(sdk(ProvisionedThroughputExceededException, 400))).toBe('transient');
    expect(stepErrorName(sdk(InternalServerError, 500))).toBe('transient');
    expect(stepErrorName(Object.assign(new Error('x'), { name: 'SomethingNew', $metadata: { httpStatusCode: 503 } }))).toBe('transient');
    expect(stepErrorName(Object.assign(new Error('x'), { name: 'SomethingNew', $retryable: { throttling: true }, $metadata: { httpStatusCode: 400 } }))).toBe('transient');
    expect(stepErrorName(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBe('transient');
    expect(stepErrorName(Object.assign(new Error('x'), { name: 'TimeoutError' }))).toBe('transient');
  });

  it('calls client errors, missing resources and the layer\'s own bugs permanent', () => {
    expect(stepErrorName(sdk(ResourceNotFoundException, 400))).toBe('permanent');
    expect(stepErrorName(sdk(ConditionalCheckFailedException, 400))).toBe('permanent');
    expect(stepErrorName(Object.assign(new Error('denied'), { name: 'AccessDeniedException', $fault: 'client', $metadata: { httpStatusCode: 403 } }))).toBe('permanent');
    expect(stepErrorName(new TypeError('cannot read properties of undefined'))).toBe('permanent');
    expect(stepErrorName('a string')).toBe('permanent');
  });

  it('keeps a name the core already gave, and says which step failed and with what', () => {
    expect(stepErrorName(Object.assign(new Error('no record'), { name: 'permanent' }))).toBe('permanent');
    const e = stepError('gate', sdk(ProvisionedThroughputExceededException, 400));
    expect(e.name).toBe('transient');
    expect(e.message).toBe('gate: ProvisionedThroughputExceededException: m');
  });
});

describe('dead letters of the execution-events function', () => {
  const event = { 'detail-type': STATUS_CHANGE, source: 'aws.states', detail: { name: 'x1', status: 'FAILED', error: 'E', cause: 'C' } };

  it('read as the event EventBridge could not deliver, or as Lambda\'s invocation record of a failed one', () => {
    expect(statusChangeOf(JSON.stringify(event))).toEqual(event.detail);
    const record = { version: '1.0', requestContext: { condition: 'RetriesExhausted' }, requestPayload: event, responsePayload: { errorMessage: 'boom' } };
    expect(statusChangeOf(JSON.stringify(record))).toEqual(event.detail);
  });

  it('are nothing to record when they are not status changes (a failed reconcile round, a stray message)', () => {
    expect(statusChangeOf(JSON.stringify({ requestPayload: { reconcile: true } }))).toBeUndefined();
    expect(statusChangeOf('not json')).toBeUndefined();
    expect(statusChangeOf(JSON.stringify({ 'detail-type': STATUS_CHANGE, detail: {} }))).toBeUndefined();
  });
});
