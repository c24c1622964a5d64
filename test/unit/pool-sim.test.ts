// The pool simulator (bench/pool-sim.ts): a virtual clock, so its figures follow from the trace and
// the policy alone; and the layer's policy in it is core/pool.ts sizeType itself.
import { describe, expect, it } from 'vitest';
import { FARGATE, LOCAL, type Trace, layerPolicy, peakSize, reactivePolicy, simulate, staticPolicy, traces } from '../../bench/pool-sim.ts';
import { acrossSeeds, compare } from '../../bench/pool.ts';

const opts = { platform: FARGATE, bounds: { min: 0, max: 4 }, slots: 1 };

describe('the pool simulation', () => {
  it('gives the same figures for the same seed, and other figures for another seed', () => {
    const run = (seed: number) => traces(seed).map((t) => compare(t, FARGATE));
    const first = run(7);
    expect(run(7)).toEqual(first);
    expect(run(8)).not.toEqual(first);
  });

  it('makes the four traces of the issue, the plan one of 10,000 tasks with its demand hint', () => {
    const all = traces(1);
    expect(all.map((t) => t.name)).toEqual(['steady', 'spikes', 'daily-wave', 'plan-10k']);
    const plan = all[3]!;
    expect(plan.tasks).toHaveLength(10_000);
    expect(plan.hints).toEqual([{ at: 1800, tasks: 10_000, until: 1920 }]);
    for (const t of all) expect(t.tasks.every((x, i) => i === 0 || x.arrival >= t.tasks[i - 1]!.arrival)).toBe(true);
  });

  it('counts a static pool\'s agent-minutes over the whole horizon, and no wait while an agent is free', () => {
    const trace: Trace = { name: 't', description: '', horizon: 600, tasks: [{ arrival: 10, duration: 60 }, { arrival: 20, duration: 60 }] };
    const r = simulate(trace, staticPolicy(2), opts);
    expect(r).toMatchObject({ tasks: 2, waitP95Seconds: 0, agentMinutes: 20, starts: 2, makespanSeconds: 80 });
    // One agent: the second task waits for the first to end (at 70 s: 50 s).
    expect(simulate(trace, staticPolicy(1), opts)).toMatchObject({ waitP95Seconds: 50, waitMaxSeconds: 50, agentMinutes: 10 });
  });

  it('makes a task that finds no agent wait for a round and a start (60 s on Fargate, 2 s locally)', () => {
    const trace: Trace = { name: 't', description: '', horizon: 300, tasks: [{ arrival: 30, duration: 60 }] };
    // Rounds at 0, 60, 120 s: the task is seen at 60 s, its agent is up at 120 s.
    expect(simulate(trace, reactivePolicy, opts)).toMatchObject({ waitP95Seconds: 90, starts: 1 });
    expect(simulate(trace, reactivePolicy, { ...opts, platform: LOCAL })).toMatchObject({ waitP95Seconds: 12, starts: 1 });
  });

  it('drives the layer\'s own sizing: with no room for arrivals and no idle hold it is the reactive policy', () => {
    const trace = traces(3)[1]!;
    const size = peakSize(trace, 1);
    const o = { ...opts, bounds: { min: 0, max: size } };
    const bare = simulate(trace, layerPolicy(FARGATE, { reactionSeconds: 0, idleSeconds: 0, startSeconds: undefined }), o);
    expect({ ...bare, policy: 'reactive' }).toEqual(simulate(trace, reactivePolicy, o));
    // The layer as configured keeps room for arrivals: it waits less than the reactive policy.
    expect(simulate(trace, layerPolicy(FARGATE), o).waitP95Seconds).toBeLessThanOrEqual(bare.waitP95Seconds);
  });

  it('weighs a start against holding an agent: after the 10,000-task plan its agents go as they run out of work', () => {
    const trace = traces(1)[3]!;
    const o = { ...opts, bounds: { min: 0, max: peakSize(trace, 1) } };
    const fixedHold = simulate(trace, layerPolicy(FARGATE, { startSeconds: undefined }), o);
    const weighed = simulate(trace, layerPolicy(FARGATE), o);
    // The same starts and waits; the running tasks about to end count against the room, and idle agents
    // are held by the arrival rate rather than for two minutes each.
    expect(weighed).toMatchObject({ starts: fixedHold.starts, waitP95Seconds: fixedHold.waitP95Seconds });
    expect(weighed.agentMinutes).toBeLessThan(0.95 * fixedHold.agentMinutes);
  });

  it('sums up several seeds: the mean figures, and how many seeds met each aim', () => {
    const one = compare(traces(5)[1]!, FARGATE);
    const across = acrossSeeds(FARGATE, 5, 1)['spikes']!;
    expect(across.mean.layer).toEqual({ waitP95Seconds: Math.round(one.layer.waitP95Seconds), agentMinutes: Math.round(one.layer.agentMinutes) });
    expect(across.met.lowerWaitThanReactive).toBe(one.aim.lowerWaitThanReactive ? 1 : 0);
  });

  it('sizes the static pool for the busiest 15 minutes\' offered load', () => {
    const tasks = Array.from({ length: 30 }, (_, i) => ({ arrival: i * 30, duration: 300 })); // 300 s of work every 30 s: 10 agents
    expect(peakSize({ name: 't', description: '', horizon: 900, tasks }, 1)).toBe(10);
    expect(peakSize({ name: 't', description: '', horizon: 900, tasks }, 4)).toBe(3);
  });
});
