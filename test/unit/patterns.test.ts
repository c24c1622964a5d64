import { describe, expect, it } from 'vitest';
import { BATCH_SIZE, deriveOutcome, mergeOutputs, prepareBatches, stageLayout } from '#core/patterns.ts';

const exec = (pattern: 'sequential' | 'parallel' | 'pipeline', taskCount: number, maxConcurrency = 10) => ({
  executionId: 'e',
  pattern,
  maxConcurrency,
  taskCount,
  stages: stageLayout(pattern, [{ name: 's', count: taskCount }]),
});

describe('pattern semantics', () => {
  it('runs a sequential plan one task at a time, in batches, in order', () => {
    const p = prepareBatches(exec('sequential', 600));
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
