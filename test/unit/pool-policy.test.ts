// The pool's sizing decision as a pure function (core/pool.ts sizeType): the arrival-rate estimate,
// the room it keeps, and the demand hint of a plan just submitted (core/demand.ts).
import { describe, expect, it } from 'vitest';
import { DEMAND_HINT_SECONDS, planDemand, recentDemand } from '#core/demand.ts';
import { parsePlan } from '#core/plan.ts';
import { type SizingInput, nextEstimate, sizeType } from '#core/pool.ts';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const policy = { idleSeconds: 120, heartbeatSeconds: 60, reactionSeconds: 240, rateHalfLifeSeconds: 120 };
const busy = (n: number) => Array.from({ length: n }, (_, i) => ({ agentId: `a${i}`, status: 'busy' as const, lastHeartbeatAt: new Date(NOW).toISOString() }));

describe('the arrival-rate estimate', () => {
  it('starts at zero, then moves towards the rate seen since the last round by the half-life', () => {
    const first = nextEstimate(undefined, 10, NOW, 120);
    expect(first).toEqual({ at: NOW, seen: 10, ratePerSecond: 0 });
    // 12 more tasks in 120 s (0.1/s), one half-life: half way.
    expect(nextEstimate(first, 22, NOW + 120_000, 120).ratePerSecond).toBeCloseTo(0.05, 10);
  });

  it('sees no arrivals when fewer tasks are counted than before (records gone)', () => {
    expect(nextEstimate({ at: NOW, seen: 50, ratePerSecond: 0.2 }, 40, NOW + 120_000, 120).ratePerSecond).toBeCloseTo(0.1, 10);
  });
});

describe('sizing one type', () => {
  const base: SizingInput = { bounds: { min: 0, max: 40 }, slots: 1, agents: busy(4), backlog: { visible: 0, inFlight: 4 } };

  it('keeps room for the tasks expected before a new agent could take them', () => {
    // The rate goes half way from 0.05/s to the 0.1/s just seen: 0.075/s over a 240 s reaction, 18 expected beside the 4 running.
    const d = sizeType({ ...base, finished: 40, estimate: { at: NOW - 120_000, seen: 32, ratePerSecond: 0.05 } }, NOW, policy);
    expect(d.estimate?.at).toBe(NOW);
    expect(d.estimate?.seen).toBe(44);
    expect(d.estimate?.ratePerSecond).toBeCloseTo(0.075, 10);
    expect(d).toMatchObject({ desired: 22, start: 18 });
  });

  it('keeps no room once arrivals have stopped long enough for the rate to round to nothing', () => {
    const d = sizeType({ ...base, finished: 40, estimate: { at: NOW - 1_200_000, seen: 44, ratePerSecond: 0.05 } }, NOW, policy);
    expect(d).toMatchObject({ desired: 4, start: 0 });
  });

  it('without the finished count (or a reaction time), sizes by the backlog alone, as before', () => {
    expect(sizeType(base, NOW, policy)).toEqual({ desired: 4, start: 0, drain: [], yield: [] });
    expect(sizeType({ ...base, finished: 40, estimate: { at: NOW - 120_000, seen: 0, ratePerSecond: 1 } }, NOW, { ...policy, reactionSeconds: 0 })).toMatchObject({ desired: 4 });
  });

  it('starts agents for a plan\'s known tasks before they are queued, within max, and does not count them twice once queued', () => {
    const empty: SizingInput = { bounds: { min: 0, max: 8 }, slots: 1, agents: [], backlog: { visible: 0, inFlight: 0 } };
    expect(sizeType({ ...empty, demandHint: 40 }, NOW, policy)).toMatchObject({ desired: 8, start: 8 });
    expect(sizeType({ ...empty, demandHint: 3, backlog: { visible: 3, inFlight: 0 } }, NOW, policy)).toMatchObject({ desired: 3 });
    expect(sizeType({ ...empty, demandHint: 6 }, NOW, { ...policy }).desired).toBe(6);
    expect(sizeType({ ...empty, slots: 4, demandHint: 6 }, NOW, policy).desired).toBe(2);
  });
});

describe('the demand hint', () => {
  const task = (id: string, agentType: string) => ({ id, agentType, command: 'true' });

  it('is what the workflow dispatches at once: a parallel plan up to its maxConcurrency, a sequential plan\'s first task, a pipeline\'s first stage', () => {
    const testers = Array.from({ length: 40 }, (_, i) => task(`t${i}`, 'tester'));
    expect(planDemand(parsePlan({ pattern: 'parallel', maxConcurrency: 50, tasks: testers }))).toEqual({ tester: 40 });
    expect(planDemand(parsePlan({ pattern: 'parallel', tasks: [...testers, task('c', 'coder')] }))).toEqual({ tester: 10, coder: 1 });
    expect(planDemand(parsePlan({ pattern: 'sequential', tasks: [task('a', 'coder'), task('b', 'tester')] }))).toEqual({ coder: 1 });
    const pipeline = parsePlan({ pattern: 'pipeline', stages: [{ name: 's1', tasks: [task('a', 'coder'), task('b', 'coder')] }, { name: 's2', tasks: [task('c', 'tester')] }] });
    expect(planDemand(pipeline)).toEqual({ coder: 2 });
  });

  it('sums the hints of the executions submitted within the hint\'s span', async () => {
    let since = '';
    const demand = await recentDemand({ recentDemands: async (s) => ((since = s), [{ tester: 40 }, { tester: 2, coder: 1 }]) }, NOW);
    expect(demand).toEqual({ tester: 42, coder: 1 });
    expect(since).toBe(new Date(NOW - DEMAND_HINT_SECONDS * 1000).toISOString());
  });
});
