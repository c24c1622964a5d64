// The pool's sizing decision as a pure function (core/pool.ts sizeType): the arrival-rate estimate,
// the room it keeps, and the demand hint of a plan just submitted (core/demand.ts).
import { describe, expect, it } from 'vitest';
import { DEMAND_HINT_SECONDS, planDemand, recentDemand } from '#core/demand.ts';
import { parsePlan } from '#core/plan.ts';
import { type SizingInput, expectedEnds, meanTaskSeconds, nextEstimate, sizeType } from '#core/pool.ts';

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

describe('the mean task duration', () => {
  it('is unknown until a task has finished, then the task-seconds run over the tasks finished (Little\'s law)', () => {
    const first = nextEstimate(undefined, 4, NOW, 120, { finished: 0, inFlight: 4 });
    expect(first).toMatchObject({ finished: 0, inFlight: 4 });
    expect(meanTaskSeconds(first)).toBeUndefined();
    // Four running for a minute, two of them finished meanwhile and two others started: 240 task-seconds for 2 tasks.
    const next = nextEstimate(first, 6, NOW + 60_000, 120, { finished: 2, inFlight: 4 });
    expect(next).toMatchObject({ finished: 2, inFlight: 4, busySeconds: 240, completions: 2 });
    expect(meanTaskSeconds(next)).toBe(120);
  });

  it('forgets old durations slowly, with a half-life of 30 minutes', () => {
    const old = { at: NOW, seen: 100, ratePerSecond: 0, finished: 96, inFlight: 4, busySeconds: 6000, completions: 10 };
    const next = nextEstimate(old, 100, NOW + 1_800_000, 120, { finished: 96, inFlight: 4 });
    expect(next.completions).toBeCloseTo(5, 10);
    expect(next.busySeconds).toBeCloseTo(3000 + 4 * 1800, 6);
  });

  it('counts the running tasks expected to end within a span, rounded down, none without a duration', () => {
    expect(expectedEnds(10, 60, 60)).toBe(6); // 10 × (1 − e^−1) = 6.3
    expect(expectedEnds(4, 600, 60)).toBe(0); // 0.38 of a task: no start is skipped for it
    expect(expectedEnds(10, undefined, 60)).toBe(0);
    expect(expectedEnds(0, 60, 60)).toBe(0);
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

describe('sizing one type with the start time weighed (startSeconds)', () => {
  const weighed = { ...policy, reactionSeconds: 0, startSeconds: 60 };
  const idle = (n: number, idleSeconds: number) =>
    Array.from({ length: n }, (_, i) => ({ agentId: `i${i}`, status: 'idle' as const, idleSince: new Date(NOW - idleSeconds * 1000 - i).toISOString(), lastHeartbeatAt: new Date(NOW).toISOString() }));
  // Four tasks of a minute running, no arrivals lately: the estimate one round ago.
  const minuteTasks = { at: NOW - 60_000, seen: 19, ratePerSecond: 0, finished: 10, inFlight: 4, busySeconds: 360, completions: 6 };

  it('starts no agent for a queued task that a running one will take within a start', () => {
    const input: SizingInput = { bounds: { min: 0, max: 40 }, slots: 1, agents: busy(4), backlog: { visible: 1, inFlight: 4 }, finished: 14, estimate: minuteTasks };
    // Of the four running one-minute tasks, two are expected to end within the 60 s a new agent takes.
    expect(sizeType(input, NOW, weighed)).toMatchObject({ desired: 4, start: 0 });
    expect(sizeType({ ...input, backlog: { visible: 3, inFlight: 4 }, finished: 12 }, NOW, weighed)).toMatchObject({ desired: 5, start: 1 });
    // Without the start weighed, the backlog alone: an agent for the queued task.
    expect(sizeType(input, NOW, { ...policy, reactionSeconds: 0 })).toMatchObject({ desired: 5, start: 1 });
  });

  it('without a finished task to tell the duration, starts an agent for each queued task, as before', () => {
    const input: SizingInput = { bounds: { min: 0, max: 40 }, slots: 1, agents: busy(4), backlog: { visible: 2, inFlight: 4 }, finished: 0 };
    expect(sizeType(input, NOW, weighed)).toMatchObject({ desired: 6, start: 2 });
  });

  it('holds an idle agent only while the next task for it is expected within a start, and drains the others at once', () => {
    const quiet: SizingInput = { bounds: { min: 0, max: 40 }, slots: 1, agents: idle(4, 10), backlog: { visible: 0, inFlight: 0 }, finished: 50 };
    // 3 tasks a minute: the first idle agent is wanted in 20 s, the second in 40 s, the third in a minute (not shorter than a start).
    const busyHour = sizeType({ ...quiet, estimate: { at: NOW, seen: 50, ratePerSecond: 0.05 } }, NOW, weighed);
    expect(busyHour).toMatchObject({ desired: 0, start: 0 });
    expect(busyHour.drain).toEqual(['i3', 'i2']); // the longest idle go
    // One task every two minutes: none is worth a minute of idling; all go now, not after idleSeconds.
    expect(sizeType({ ...quiet, estimate: { at: NOW, seen: 50, ratePerSecond: 1 / 120 } }, NOW, weighed).drain).toHaveLength(4);
    // The fixed hold keeps them all (idle for 10 s of 120).
    expect(sizeType({ ...quiet, estimate: { at: NOW, seen: 50, ratePerSecond: 1 / 120 } }, NOW, { ...policy, reactionSeconds: 0 }).drain).toEqual([]);
  });

  it('drains a held agent once idle for idleSeconds, and never below min', () => {
    const input: SizingInput = { bounds: { min: 1, max: 40 }, slots: 1, agents: idle(3, 600), backlog: { visible: 0, inFlight: 0 }, finished: 50, estimate: { at: NOW, seen: 50, ratePerSecond: 0.05 } };
    expect(sizeType(input, NOW, weighed).drain).toEqual(['i2', 'i1']);
  });

  it('keeps room for the arrivals expected within the reaction time, net of the running tasks that end within a start', () => {
    // 0.1 tasks a second over 100 s: 10 expected; of the 4 running one-minute tasks, 2 end within a start.
    const input: SizingInput = { bounds: { min: 0, max: 40 }, slots: 1, agents: busy(4), backlog: { visible: 0, inFlight: 4 }, finished: 10, estimate: { ...minuteTasks, at: NOW, seen: 14, ratePerSecond: 0.1 } };
    expect(sizeType(input, NOW, { ...weighed, reactionSeconds: 100 })).toMatchObject({ desired: 12, start: 8 });
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
