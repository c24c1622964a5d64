// History events of TaskBatch, measured on the local Step Functions service with stand-in steps and
// agents (test/support/task-batch-history.ts says how).
import { describe, expect, it } from 'vitest';
import { ERROR_TYPES } from '../../core/errors.ts';
import { HISTORY_EVENTS, prepareBatches, retryBudget, stageLayout } from '../../core/patterns.ts';
import { type BatchRun, runBatch } from '../support/task-batch-history.ts';

const events = async (run: BatchRun) => {
  const r = await runBatch(run);
  expect(r.status).toBe('SUCCEEDED');
  return r.types.length;
};

describe('TaskBatch history, measured on the local Step Functions service', () => {
  it('writes AWS\'s events for each state of a task that succeeds at once', async () => {
    const { status, types } = await runBatch({ count: 1 });
    expect(status).toBe('SUCCEEDED');
    // Per state, the events of AWS's GetExecutionHistory examples: a Lambda Task (function ARN)
    // Entered/LambdaFunctionScheduled/Started/Succeeded/Exited; a waitForTaskToken Task adds
    // TaskSubmitted; a Map writes MapStateStarted/Succeeded around MapIteration events.
    expect(types).toEqual([
      'ExecutionStarted',
      'PassStateEntered', 'PassStateExited',
      'MapStateEntered', 'MapStateStarted',
      'MapIterationStarted',
      'TaskStateEntered', 'LambdaFunctionScheduled', 'LambdaFunctionStarted', 'LambdaFunctionSucceeded', 'TaskStateExited',
      'ChoiceStateEntered', 'ChoiceStateExited',
      'TaskStateEntered', 'TaskScheduled', 'TaskStarted', 'TaskSubmitted', 'TaskSucceeded', 'TaskStateExited',
      'SucceedStateEntered', 'SucceedStateExited',
      'MapIterationSucceeded',
      'MapStateSucceeded', 'MapStateExited',
      'ExecutionSucceeded',
    ]);
  });

  it('measures no more events per batch, per task and per retry than core/patterns.ts HISTORY_EVENTS says', async () => {
    const one = await events({ count: 1 });
    const two = await events({ count: 2 });
    const perSucceededTask = two - one;
    const batch = one - perSucceededTask;
    const failedOnce = await events({ count: 1, fails: () => true });
    const failedAfterThree = await events({ count: 1, fails: () => true, retries: () => 3 });
    const perFailedTask = failedOnce - batch;
    const perRetry = (failedAfterThree - failedOnce) / 3;
    const measured = { batch, perSucceededTask, perFailedTask, perRetry };
    // Printed so that a change is seen, not only a failure.
    console.log('TaskBatch history events, measured:', JSON.stringify(measured));
    expect(Math.min(batch, perSucceededTask, perFailedTask, perRetry)).toBeGreaterThan(0);
    expect(HISTORY_EVENTS.batch).toBeGreaterThanOrEqual(batch);
    expect(HISTORY_EVENTS.task).toBeGreaterThanOrEqual(Math.max(perSucceededTask, perFailedTask));
    expect(HISTORY_EVENTS.retry).toBeGreaterThanOrEqual(perRetry);
  });

  it('counts 3 events for each retry of a step\'s Lambda (what HISTORY_EVENTS.margin is kept for)', async () => {
    const plain = await events({ count: 1 });
    const retried = await events({ count: 1, gateThrows: 1 });
    expect(retried - plain).toBe(3);
  });

  const allRetries = (maxRetries: number) => Object.fromEntries(ERROR_TYPES.map((t) => [t, { maxRetries }]));
  const largestBatch = (recovery?: ReturnType<typeof allRetries>) => {
    const tasks = Array.from({ length: 1000 }, (_, index) => ({ index, recovery }));
    const p = prepareBatches({ executionId: 'e1', pattern: 'parallel', maxConcurrency: 40, taskCount: 1000, stages: stageLayout('parallel', [{ name: '', count: 1000 }]) }, tasks);
    if (!('batches' in p)) throw new Error('expected batches');
    return Math.max(...p.batches.map((b) => b.to - b.from));
  };

  it('stays under 25,000 events for the largest batch Prepare makes of default tasks, every task using all its retries', async () => {
    const size = largestBatch();
    const retries = retryBudget({}); // the defaults: 3 transient + 1 timeout + 2 resource + 2 dependency
    expect(retries).toBe(8);
    expect(size).toBeGreaterThan(100);
    const total = await events({ count: size, fails: () => true, retries: () => retries });
    console.log(`default tasks: ${size} a batch, ${total} events with every retry used`);
    expect(total).toBeLessThan(HISTORY_EVENTS.limit - HISTORY_EVENTS.margin);
  }, 120_000);

  it('stays under 25,000 events for the largest batch Prepare makes of tasks allowed 20 retries of every type, all used', async () => {
    const size = largestBatch(allRetries(20));
    const total = await events({ count: size, fails: () => true, retries: () => 20 * ERROR_TYPES.length });
    console.log(`tasks with 120 retries: ${size} a batch, ${total} events with every retry used`);
    expect(total).toBeLessThan(HISTORY_EVENTS.limit - HISTORY_EVENTS.margin);
  }, 120_000);

  it('runs 250 tasks in one batch when each may retry twice, all retries used, under 25,000 events', async () => {
    expect(largestBatch(allRetries(0))).toBe(250);
    const twoRetries = { transient: { maxRetries: 2 }, timeout: { maxRetries: 0 }, resource: { maxRetries: 0 }, dependency: { maxRetries: 0 } };
    const tasks = Array.from({ length: 250 }, (_, index) => ({ index, recovery: twoRetries }));
    const p = prepareBatches({ executionId: 'e1', pattern: 'parallel', maxConcurrency: 40, taskCount: 250, stages: stageLayout('parallel', [{ name: '', count: 250 }]) }, tasks);
    expect('batches' in p && p.batches.map((b) => b.to - b.from)).toEqual([250]);
    const total = await events({ count: 250, fails: () => true, retries: () => 2 });
    expect(total).toBeLessThan(HISTORY_EVENTS.limit);
  }, 120_000);
});
