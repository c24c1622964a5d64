// bench/chain.ts: a sequential chain's link from one task's end to the next one's claim, split into
// phases from the task records, the TaskBatch history and the agents' "task finished" lines.
import { describe, expect, it } from 'vitest';
import { chainFigures, finishedLines, stateTimes, type ChainEvent, type FinishedLine } from '../../bench/chain.ts';

const T0 = Date.parse('2026-12-07T00:00:00Z');
const at = (ms: number) => new Date(T0 + ms);
const iso = (ms: number) => at(ms).toISOString();

/** One Map iteration of the task fragment: Gate from `gate` (3 ms), Dispatch from gate + 4 until `exit`. */
function iteration(index: number, gate: number, exit: number): ChainEvent[] {
  return [
    { type: 'MapIterationStarted', timestamp: at(gate), mapIterationStartedEventDetails: { index } },
    { type: 'TaskStateEntered', timestamp: at(gate), stateEnteredEventDetails: { name: 'Gate' } },
    { type: 'TaskStateExited', timestamp: at(gate + 3), stateExitedEventDetails: { name: 'Gate' } },
    { type: 'ChoiceStateEntered', timestamp: at(gate + 3), stateEnteredEventDetails: { name: 'Skip?' } },
    { type: 'ChoiceStateExited', timestamp: at(gate + 4), stateExitedEventDetails: { name: 'Skip?' } },
    { type: 'TaskStateEntered', timestamp: at(gate + 4), stateEnteredEventDetails: { name: 'Dispatch' } },
    { type: 'TaskStateExited', timestamp: at(exit), stateExitedEventDetails: { name: 'Dispatch' } },
    { type: 'MapIterationSucceeded', timestamp: at(exit) },
  ];
}

const line = (index: number, claim: number, record: number): FinishedLine => ({
  executionId: 'ex-1',
  index,
  durationMs: 10,
  phasesMs: { claim, prepare: 1, run: 2, cleanup: 0, record, callback: 1, delete: 0 },
});

describe('the chain trace', () => {
  it('splits each link into phases that add up to the time from a task\'s end to the next claim\'s end', () => {
    // Task 0 ends at 20; its Dispatch exits at 25; task 1's Gate at 26..29, Dispatch at 30, sent at 31, claimed from 33 (2 ms).
    const events = [...iteration(0, 0, 25), ...iteration(1, 26, 60)];
    const tasks = [
      { index: 0, dispatchedAt: T0 + 5, startedAt: iso(6), finishedAt: iso(20) },
      { index: 1, dispatchedAt: T0 + 31, startedAt: iso(33), finishedAt: iso(50) },
    ];
    const figures = chainFigures(tasks, events, [line(0, 1, 3), line(1, 2, 3)]);
    expect(figures.links).toBe(1);
    expect(figures.p50).toMatchObject({ record: 3, callback: 2, nextIteration: 1, gate: 3, choice: 1, sendMessage: 1, delivery: 2, claim: 2, total: 15 });
    const { total, prepare: _p, run: _r, cleanup: _c, ...phases } = figures.p50;
    expect(Object.values(phases).reduce((a, b) => a + b, 0)).toBe(total);
  });

  it('leaves out a link whose timestamps are not all known (a task without its agent\'s line)', () => {
    const events = [...iteration(0, 0, 25), ...iteration(1, 26, 60)];
    const tasks = [
      { index: 0, startedAt: iso(6), finishedAt: iso(20) },
      { index: 1, dispatchedAt: T0 + 31, startedAt: iso(33), finishedAt: iso(50) },
    ];
    expect(chainFigures(tasks, events, [line(1, 2, 3)]).links).toBe(0);
  });

  it('numbers a batch\'s iterations from its first task', () => {
    expect([...stateTimes(iteration(0, 0, 25), 250).keys()]).toEqual([250]);
  });

  it('reads the execution\'s "task finished" lines from an agents.log, skipping others and lines cut short', () => {
    const log = [
      JSON.stringify({ msg: 'task finished', ...line(0, 1, 3) }),
      JSON.stringify({ msg: 'task finished', ...line(1, 1, 3), executionId: 'ex-2' }),
      JSON.stringify({ msg: 'agent started', executionId: 'ex-1' }),
      '{"msg":"task finished","executionId":"ex-1","ind',
    ].join('\n');
    expect(finishedLines(log, 'ex-1').map((l) => l.index)).toEqual([0]);
  });
});
