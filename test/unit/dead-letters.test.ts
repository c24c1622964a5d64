// The rules of dead letters and message custody, with the clock as a number.
import type { SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { MessageCustody, SQS_VISIBILITY_CAP_SECONDS } from '../../agent/custody.ts';
import { deadLetterCause, waitsFor } from '../../core/dead-letters.ts';
import type { DispatchMessage, TaskRecord } from '../../core/records.ts';

const NOW = 1_700_000_000_000;
const msg: DispatchMessage = { executionId: 'ex-1', taskIndex: 0, dispatchSeq: 3, dispatchTimeoutSeconds: 120, taskToken: 't' };
const task = (over: Partial<TaskRecord>): TaskRecord =>
  ({ executionId: 'ex-1', index: 0, taskId: 'build', status: 'queued', dispatchSeq: 3, attempts: 0, retries: {}, ...over }) as TaskRecord;

describe('a task waits for a dead-lettered dispatch', () => {
  const cases: [string, Partial<TaskRecord>, boolean][] = [
    ['queued for that dispatch', {}, true],
    ['running under a lease that ran out', { status: 'running', leaseExpiresAt: NOW - 1 }, true],
    ['not while an agent holds a live lease', { status: 'running', leaseExpiresAt: NOW + 1000 }, false],
    ['not once dispatched again', { dispatchSeq: 4 }, false],
    ['not once finished', { status: 'completed' }, false],
    ['not while pending a retry', { status: 'pending' }, false],
    ['not once the sweep reported that dispatch', { deadLetter: { dispatchSeq: 3, queue: 'coder-normal', messageId: 'm', receiveCount: 5, at: '' } }, false],
    ['again for a later dispatch than the one reported', { deadLetter: { dispatchSeq: 2, queue: 'coder-normal', messageId: 'm', receiveCount: 5, at: '' } }, true],
  ];
  for (const [name, over, expected] of cases) {
    it(`${expected ? 'yes' : 'no'}: ${name}`, () => expect(waitsFor(task(over), msg, NOW)).toBe(expected));
  }

  it('the failure names the DLQ, the queue, the receives and what they mean', () => {
    const cause = deadLetterCause({ queue: 'coder-normal', dlq: 'coder-normal-dlq', receives: 5, maxReceiveCount: 5, taskId: 'build' });
    expect(cause).toMatch(/^the dispatch of task build reached the dead-letter queue coder-normal-dlq \(from coder-normal\) after its message was received 5 times/);
    expect(cause).toContain('kept dying on it or could not handle it');
  });
});

describe('message custody', () => {
  const custody = new MessageCustody({} as SQSClient, 600);
  const held = { queueUrl: 'q', receipt: 'r', body: '{}', receivedAt: NOW };

  it('extends visibility while the extension stays within the cap from the receive', () => {
    expect(custody.passesCap(held, NOW + 590_000, 10)).toBe(false);
    expect(custody.passesCap(held, NOW + 590_001, 10)).toBe(true);
  });

  it('refuses a cap beyond SQS\'s 12 hours, or none', () => {
    expect(() => new MessageCustody({} as SQSClient, SQS_VISIBILITY_CAP_SECONDS + 1)).toThrow(/within 1\.\.43200 seconds, got 43201/);
    expect(() => new MessageCustody({} as SQSClient, 0)).toThrow(/got 0/);
  });
});
