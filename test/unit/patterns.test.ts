import { describe, expect, it } from 'vitest';
import { ERROR_TYPES } from '#core/errors.ts';
import { BATCH_SIZE, BATCH_TASK_EVENT_BUDGET, HISTORY_EVENTS, deriveOutcome, mergeOutputs, prepareBatches, stageLayout, worstCaseTaskEvents } from '#core/patterns.ts';

const exec = (pattern: 'sequential' | 'parallel' | 'pipeline', taskCount: number, maxConcurrency = 10) => ({
  executionId: 'e',
  pattern,
  maxConcurrency,
  taskCount,
  stages: stageLayout(pattern, [{ name: 's', count: taskCount }]),
});

/** Task records whose recovery allows `maxRetries` retries of every error type. */
const withRetries = (count: number, maxRetries: number) =>
  Array.from({ length: count }, (_, index) => ({ index, recovery: Object.fromEntries(ERROR_TYPES.map((t) => [t, { maxRetries }])) }));

describe('pattern semantics', () => {
  it('runs a sequential plan one task at a time, in batches, in order', () => {
    const p = prepareBatches(exec('sequential', 600), withRetries(600, 0));
    if (!('batches' in p)) throw new Error('expected batches');
    expect(p.batchConcurrency).toBe(1);
    expect(p.batches.map((b) => [b.from, b.to, b.concurrency])).toEqual([[0, 250, 1], [250, 500, 1], [500, 600, 1]]);
  });

  it('never lets parallel batches together exceed maxConcurrency', () => {
    for (const [tasks, limit] of [[200, 8], [10_000, 8], [10_000, 100], [5, 100], [1000, 41]] as const) {
      const p = prepareBatches(exec('parallel', tasks, limit));
      if (!('batches' in p)) throw new Error('expected batches');
      const widest = [...p.batches].sort((a, b) => b.concurrency - a.concurrency).slice(0, p.batchConcurrency);
      expect(widest.reduce((s, b) => s + b.concurrency, 0)).toBeLessThanOrEqual(limit);
      expect(p.batches.every((b) => b.to - b.from <= BATCH_SIZE && b.concurrency <= 40)).toBe(true);
      expect(p.batches.at(-1)!.to).toBe(tasks);
    }
  });

  it('sizes each batch so that its tasks, each using every retry its recovery allows, stay under 25,000 history events', () => {
    const batchesOf = (tasks: ReturnType<typeof withRetries> | [], count = 1000) => {
      const p = prepareBatches(exec('parallel', count, 40), tasks);
      if (!('batches' in p)) throw new Error('expected batches');
      return p.batches;
    };
    // The contract's defaults: 3 + 1 + 2 + 2 retries, 24 + 22 × 8 = 200 events a task.
    expect(worstCaseTaskEvents({})).toBe(200);
    expect(batchesOf([]).map((b) => b.to - b.from).slice(0, 2)).toEqual([112, 112]);
    // 20 retries of each of the six types: 2,664 events a task.
    expect(batchesOf(withRetries(1000, 20))[0]!.to).toBe(8);
    for (const [tasks, count] of [[[], 1000], [withRetries(1000, 20), 1000], [withRetries(1000, 0), 1000], [withRetries(300, 5), 300]] as const) {
      const batches = batchesOf(tasks as ReturnType<typeof withRetries>, count);
      expect(batches.at(-1)!.to).toBe(count);
      for (const b of batches) {
        const events = HISTORY_EVENTS.batch + (b.to - b.from) * worstCaseTaskEvents((tasks as ReturnType<typeof withRetries>)[b.from] ?? {});
        expect(events).toBeLessThanOrEqual(HISTORY_EVENTS.limit - HISTORY_EVENTS.margin);
        expect(b.to - b.from).toBeLessThanOrEqual(BATCH_SIZE);
      }
    }
    expect(BATCH_TASK_EVENT_BUDGET).toBe(25_000 - HISTORY_EVENTS.batch - HISTORY_EVENTS.margin);
  });

  it('cuts a batch where a task with a large retry budget would overflow it', () => {
    const tasks = [...withRetries(100, 0), ...withRetries(20, 20).map((t, i) => ({ ...t, index: 100 + i }))];
    const p = prepareBatches(exec('sequential', 120), tasks);
    if (!('batches' in p)) throw new Error('expected batches');
    // 100 × 24 = 2,400 events, then 7 tasks of 2,664 fit under 22,492 and the eighth does not.
    expect(p.batches.map((b) => [b.from, b.to])).toEqual([[0, 107], [107, 115], [115, 120]]);
  });

  it('runs each pipeline stage as its own batches, all tasks of a stage at once', () => {
    const stages = stageLayout('pipeline', [{ name: 'build', count: 2 }, { name: 'test', count: 3 }]);
    const p = prepareBatches({ executionId: 'e', pattern: 'pipeline', maxConcurrency: 1, taskCount: 5, stages });
    expect(p).toEqual({
      executionId: 'e',
      stages: [
        { name: 'build', batches: [{ executionId: 'e', from: 0, to: 2, concurrency: 2 }] },
        { name: 'test', batches: [{ executionId: 'e', from: 2, to: 5, concurrency: 3 }] },
      ],
    });
  });

  it('merges outputs shallowly, later tasks winning', () => {
    expect(mergeOutputs({ a: 1, b: { x: 1 } }, [{ b: { y: 2 } }, undefined, { c: 3, a: 2 }])).toEqual({ a: 2, b: { y: 2 }, c: 3 });
  });

  it('fails an execution only for a failed "stop" task', () => {
    const layout = { pattern: 'sequential' as const, stages: stageLayout('sequential', [{ name: '', count: 2 }]) };
    expect(deriveOutcome(layout, [{ status: 'failed', failureStrategy: 'continue', stage: 0 }, { status: 'completed', failureStrategy: 'stop', stage: 0 }])).toEqual({ status: 'SUCCEEDED' });
    expect(deriveOutcome(layout, [{ status: 'failed', failureStrategy: 'stop', stage: 0 }, { status: 'skipped', failureStrategy: 'stop', stage: 0 }])).toEqual({ status: 'FAILED' });
  });

  it('names the failed stage of a pipeline', () => {
    const layout = { pattern: 'pipeline' as const, stages: stageLayout('pipeline', [{ name: 'a', count: 1 }, { name: 'b', count: 1 }]) };
    expect(deriveOutcome(layout, [{ status: 'completed', failureStrategy: 'stop', stage: 0 }, { status: 'failed', failureStrategy: 'stop', stage: 1 }])).toEqual({
      status: 'FAILED',
      result: { status: 'failed', stage: 'b' },
    });
  });
});
