// The agent's SQS batching (agent/sqs-batcher.ts): what coalesces, and the error paths of a batch.
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { batchingEnabled, SqsBatcher } from '../../agent/sqs-batcher.ts';

const sqs = mockClient(SQSClient);
const URL = 'http://q/xl_coder-normal';

beforeEach(() => sqs.reset());

describe('SqsBatcher', () => {
  it('sends deletes that come within the window as one DeleteMessageBatch', async () => {
    sqs.on(DeleteMessageBatchCommand).resolves({ Successful: [{ Id: '0' }, { Id: '1' }, { Id: '2' }], Failed: [] });
    const batcher = new SqsBatcher(new SQSClient({}), 5);
    await Promise.all(['r0', 'r1', 'r2'].map((r) => batcher.delete(URL, r)));
    expect(sqs.commandCalls(DeleteMessageBatchCommand)).toHaveLength(1);
    expect(sqs.commandCalls(DeleteMessageBatchCommand)[0]!.args[0].input.Entries!.map((e) => e.ReceiptHandle)).toEqual(['r0', 'r1', 'r2']);
    expect(sqs.commandCalls(DeleteMessageCommand)).toHaveLength(0);
  });

  it('sends at ten entries without waiting for the window', async () => {
    sqs.on(DeleteMessageBatchCommand).resolves({ Successful: [], Failed: [] });
    const batcher = new SqsBatcher(new SQSClient({}), 60_000);
    await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.delete(URL, `r${i}`)));
    expect(sqs.commandCalls(DeleteMessageBatchCommand)).toHaveLength(1);
  });

  it('retries an entry that failed on the service\'s side alone, and rejects one the sender got wrong', async () => {
    sqs.on(ChangeMessageVisibilityBatchCommand).resolves({
      Successful: [],
      Failed: [
        { Id: '0', SenderFault: false, Code: 'InternalError', Message: 'try again' },
        { Id: '1', SenderFault: true, Code: 'ReceiptHandleIsInvalid', Message: 'stale' },
      ],
    });
    const batcher = new SqsBatcher(new SQSClient({}), 5);
    const [retried, stale] = await Promise.allSettled([batcher.changeVisibility(URL, 'r0', 30), batcher.changeVisibility(URL, 'r1', 30)]);
    expect(retried.status).toBe('fulfilled');
    expect(stale).toMatchObject({ status: 'rejected', reason: { name: 'ReceiptHandleIsInvalid' } });
  });

  it('rejects every entry of a batch call that failed as a whole', async () => {
    sqs.on(DeleteMessageBatchCommand).rejects(Object.assign(new Error('throttled'), { name: 'RequestThrottled' }));
    const batcher = new SqsBatcher(new SQSClient({}), 5);
    const results = await Promise.allSettled([batcher.delete(URL, 'a'), batcher.delete(URL, 'b')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });

  it('is on unless XL_BATCH says 0 or false', () => {
    expect(batchingEnabled(undefined)).toBe(true);
    expect(batchingEnabled('1')).toBe(true);
    expect(batchingEnabled('0')).toBe(false);
    expect(batchingEnabled('false')).toBe(false);
  });
});
