// A discrete-event simulation of one agent type's pool (issue 10, "Pool policy in simulation"): a
// virtual clock, tasks arriving by a trace, agents that take a while to start, and a pool policy
// asked for a decision every round. The layer's own policy is the real sizing code (core/pool.ts
// sizeType, as the pool manager calls it); the others are what it is measured against. Nothing here
// sleeps or reads the wall clock: the same trace and policy give the same figures.
import { type ArrivalEstimate, type Backlog, type SizingInput, type SizingPolicy, desiredAgents, sizeType } from '../core/pool.ts';
import { DEFAULT_POOL_IDLE_SECONDS, DEFAULT_POOL_REACTION_SECONDS } from '../core/config.ts';
import { seededRandom } from '../test/reliability/random.ts';

/** One task of a trace: when it reaches the queue and how long it runs, in seconds. */
export interface SimTask {
  arrival: number;
  duration: number;
}

export interface Trace {
  name: string;
  description: string;
  /** Sorted by arrival. */
  tasks: SimTask[];
  /** Simulated span in seconds (the pool is measured until then, or until the last task ends). */
  horizon: number;
  /** Plans submitted: at `at`, `tasks` known tasks that reach the queue over the next seconds (the demand hint). */
  hints?: { at: number; tasks: number; until: number }[];
}

/** Where agents run: how long one takes to start and how often the pool manager decides. */
export interface Platform {
  name: string;
  startSeconds: number;
  roundSeconds: number;
}

export const FARGATE: Platform = { name: 'fargate', startSeconds: 60, roundSeconds: 60 };
export const LOCAL: Platform = { name: 'local', startSeconds: 2, roundSeconds: 20 };

interface SimAgent {
  agentId: string;
  requestedAt: number;
  readyAt: number;
  running: number;
  idleSince: number;
  stoppedAt?: number;
}

/** What a policy sees at a round: the real pool manager's input, plus the time. */
export interface Policy {
  name: string;
  /** A fixed pool of this many agents, up before the first task (no decisions). */
  fixed?: number;
  decide?(input: SizingInput, now: number): { start: number; drain: string[] };
}

/**
 * The layer's policy: core/pool.ts sizeType, as reconcile calls it, configured as on the platform:
 * room for arrivals within 2.5 times a start plus a round, starts weighed against the start time.
 */
export const layerPolicy = (platform: Platform, tuning: Partial<SizingPolicy> = {}, name = 'layer'): Policy => {
  let estimate: ArrivalEstimate | undefined;
  return {
    name,
    decide(input, now) {
      const decision = sizeType({ ...input, ...(estimate ? { estimate } : {}) }, now, {
          idleSeconds: DEFAULT_POOL_IDLE_SECONDS,
          heartbeatSeconds: 60,
          reactionSeconds: platform === FARGATE ? DEFAULT_POOL_REACTION_SECONDS : Math.ceil(2.5 * (platform.startSeconds + platform.roundSeconds)),
          startSeconds: platform.startSeconds,
          ...tuning,
        });
      estimate = decision.estimate;
      return decision;
    },
  };
};

/** Backlog only: as many agents as queued and running tasks need, idle ones drained at once. */
export const reactivePolicy: Policy = {
  name: 'reactive',
  decide(input) {
    const desired = desiredAgents(input.bounds, input.backlog ?? { visible: 0, inFlight: 0 }, input.slots);
    const live = input.agents.length;
    if (live < desired) return { start: desired - live, drain: [] };
    const idle = input.agents.filter((a) => a.status === 'idle').map((a) => a.agentId);
    return { start: 0, drain: idle.slice(0, live - desired) };
  },
};

export const staticPolicy = (size: number): Policy => ({ name: 'static', fixed: size });

export interface SimOptions {
  platform: Platform;
  bounds: { min: number; max: number };
  slots: number;
  /** Record pool size and backlog at each round (for the plot). */
  series?: boolean;
}

export interface SimResult {
  policy: string;
  tasks: number;
  waitP50Seconds: number;
  waitP95Seconds: number;
  waitMaxSeconds: number;
  /** From each agent's start request to its stop: Fargate bills the start-up too. */
  agentMinutes: number;
  /** Agent-minutes with nothing to run (start-up excluded). */
  idleAgentMinutes: number;
  starts: number;
  /** When the last task ended (seconds). */
  makespanSeconds: number;
  series?: { t: number; agents: number; backlog: number }[];
}

/** A binary heap of timed events; equal times keep insertion order, so runs are deterministic. */
class EventQueue<T> {
  private heap: { t: number; seq: number; value: T }[] = [];
  private seq = 0;
  get size() {
    return this.heap.length;
  }
  push(t: number, value: T): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, value });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  peekTime(): number {
    return this.heap[0]?.t ?? Infinity;
  }
  pop(): { t: number; value: T } {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return { t: top.t, value: top.value };
  }
  private less(a: { t: number; seq: number }, b: { t: number; seq: number }) {
    return a.t < b.t || (a.t === b.t && a.seq < b.seq);
  }
}

type SimEvent = { kind: 'ready'; agent: SimAgent } | { kind: 'done'; agent: SimAgent } | { kind: 'round' };

export function percentile(values: number[], p: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/** Runs one trace under one policy. Agents take tasks first come, first served, as they poll. */
export function simulate(trace: Trace, policy: Policy, opts: SimOptions): SimResult {
  const { platform, bounds, slots } = opts;
  const agents: SimAgent[] = [];
  const events = new EventQueue<SimEvent>();
  const queue: SimTask[] = [];
  let queueHead = 0;
  const waits: number[] = [];
  const series: SimResult['series'] = [];
  let n = 0;
  let starts = 0;
  let idleSeconds = 0;
  let lastEnd = 0;
  let done = 0;

  const startAgent = (t: number, readyAt: number) => {
    const agent: SimAgent = { agentId: `a${++n}`, requestedAt: t, readyAt, running: 0, idleSince: readyAt };
    agents.push(agent);
    starts++;
    events.push(readyAt, { kind: 'ready', agent });
  };
  const stopAgent = (agent: SimAgent, t: number) => {
    agent.stoppedAt = t;
    if (agent.running === 0 && t > agent.idleSince) idleSeconds += t - agent.idleSince;
  };
  const live = () => agents.filter((a) => a.stoppedAt === undefined);
  const dispatch = (t: number) => {
    while (queueHead < queue.length) {
      // The least-loaded ready agent takes the next task (ties: the oldest agent).
      let best: SimAgent | undefined;
      for (const a of agents) {
        if (a.stoppedAt !== undefined || a.readyAt > t || a.running >= slots) continue;
        if (!best || a.running < best.running) best = a;
      }
      if (!best) return;
      const task = queue[queueHead++]!;
      if (best.running === 0) idleSeconds += t - best.idleSince;
      best.running++;
      waits.push(t - task.arrival);
      events.push(t + task.duration, { kind: 'done', agent: best });
    }
  };

  if (policy.fixed !== undefined) for (let i = 0; i < policy.fixed; i++) startAgent(0, 0);
  else {
    for (let i = 0; i < bounds.min; i++) startAgent(0, 0);
    events.push(0, { kind: 'round' });
  }

  let next = 0;
  for (;;) {
    const tArrival = trace.tasks[next]?.arrival ?? Infinity;
    const tEvent = events.peekTime();
    const t = Math.min(tArrival, tEvent);
    // Stop once every task has ended and the horizon is reached (rounds would go on for ever).
    if (t === Infinity || (done === trace.tasks.length && t > trace.horizon)) break;
    if (tArrival <= tEvent) {
      queue.push(trace.tasks[next++]!);
      dispatch(t);
      continue;
    }
    const { value: ev } = events.pop();
    if (ev.kind === 'ready') {
      if (ev.agent.stoppedAt === undefined) dispatch(t);
    } else if (ev.kind === 'done') {
      ev.agent.running--;
      done++;
      lastEnd = t;
      if (ev.agent.running === 0) ev.agent.idleSince = t;
      dispatch(t);
    } else {
      const pool = live();
      const waiting = queue.length - queueHead;
      const inFlight = pool.reduce((s, a) => s + a.running, 0);
      const backlog: Backlog = { visible: waiting, inFlight };
      const hint = (trace.hints ?? []).filter((h) => h.at <= t && t < h.until).reduce((s, h) => s + h.tasks, 0);
      const input: SizingInput = {
        bounds,
        slots,
        backlog,
        ...(hint ? { demandHint: hint } : {}),
        finished: done,
        agents: pool.map((a) => ({
          agentId: a.agentId,
          status: a.readyAt > t ? 'starting' : a.running > 0 ? 'busy' : 'idle',
          idleSince: iso(a.idleSince),
          lastHeartbeatAt: iso(t),
        })),
      };
      const decision = policy.decide!(input, t * 1000);
      for (const id of decision.drain) {
        const agent = pool.find((a) => a.agentId === id);
        if (agent && agent.running === 0 && agent.readyAt <= t) stopAgent(agent, t);
      }
      for (let i = 0; i < decision.start; i++) startAgent(t, t + platform.startSeconds);
      if (opts.series) series.push({ t, agents: live().length, backlog: waiting });
      events.push(t + platform.roundSeconds, { kind: 'round' });
    }
  }
  const stopAt = Math.max(trace.horizon, lastEnd);
  for (const a of live()) stopAgent(a, stopAt);
  const agentSeconds = agents.reduce((s, a) => s + (a.stoppedAt! - a.requestedAt), 0);
  return {
    policy: policy.name,
    tasks: waits.length,
    waitP50Seconds: round(percentile(waits, 50)),
    waitP95Seconds: round(percentile(waits, 95)),
    waitMaxSeconds: round(Math.max(0, ...waits)),
    agentMinutes: round(agentSeconds / 60),
    idleAgentMinutes: round(idleSeconds / 60),
    starts,
    makespanSeconds: round(lastEnd),
    ...(opts.series ? { series } : {}),
  };
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

// ---- traces -------------------------------------------------------------------------------------

/** A seeded generator (mulberry32, the fault suite's), so a seed names a trace. */
const rng = seededRandom;

/** Task durations: log-normal around `mean` seconds (agent tasks are mostly short, some long). */
function durations(random: () => number, mean: number, sigma = 0.6): () => number {
  const mu = Math.log(mean) - (sigma * sigma) / 2;
  return () => {
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    return Math.max(5, Math.exp(mu + sigma * z));
  };
}

/** Poisson arrivals at `rate(t)` per second (thinning against `peak`), from `from` to `to`. */
function poisson(random: () => number, from: number, to: number, rate: (t: number) => number, peak: number): number[] {
  const out: number[] = [];
  for (let t = from; ; ) {
    t += -Math.log(1 - random()) / peak;
    if (t >= to) return out;
    if (random() < rate(t) / peak) out.push(t);
  }
}

const HOUR = 3600;

/** The four traces of the issue, from one seed. Durations: minutes, as Claude Code tasks take. */
export function traces(seed: number): Trace[] {
  const steady = (() => {
    const r = rng(seed);
    const d = durations(r, 240);
    const tasks = poisson(r, 0, 6 * HOUR, () => 2 / 60, 2 / 60).map((arrival) => ({ arrival, duration: d() }));
    return { name: 'steady', description: '2 tasks a minute for 6 h (tasks ~4 min)', tasks, horizon: 6 * HOUR };
  })();
  const spikes = (() => {
    const r = rng(seed + 1);
    const d = durations(r, 180);
    const arrivals = poisson(r, 0, 6 * HOUR, () => 0.2 / 60, 0.2 / 60);
    // A burst of 20 to 60 tasks within a minute, every 20 to 60 minutes (a CI fan-out, a batch of reviews).
    for (let t = 10 * 60; t < 6 * HOUR; t += (20 + 40 * r()) * 60) {
      const size = 20 + Math.floor(40 * r());
      for (let i = 0; i < size; i++) arrivals.push(t + 60 * r());
    }
    const tasks = arrivals.sort((a, b) => a - b).map((arrival) => ({ arrival, duration: d() }));
    return { name: 'spikes', description: 'bursts of 20-60 tasks every 20-60 min over a trickle, 6 h (tasks ~3 min)', tasks, horizon: 6 * HOUR };
  })();
  const wave = (() => {
    const r = rng(seed + 2);
    const d = durations(r, 300);
    // Working hours: near nothing at night, 4 a minute at the day's peak.
    const rate = (t: number) => (4 / 60) * Math.max(0.02, Math.sin((Math.PI * ((t / HOUR) % 24 - 6)) / 14)) ** 2;
    const tasks = poisson(r, 0, 24 * HOUR, (t) => ((t / HOUR) % 24 >= 6 && (t / HOUR) % 24 <= 20 ? rate(t) : (4 / 60) * 0.0004), 4 / 60).map((arrival) => ({
      arrival,
      duration: d(),
    }));
    return { name: 'daily-wave', description: 'a working day: 0 to 4 tasks a minute and back over 24 h (tasks ~5 min)', tasks, horizon: 24 * HOUR };
  })();
  const plan = (() => {
    const r = rng(seed + 3);
    const d = durations(r, 60);
    // A parallel plan of 10,000 one-minute tasks submitted at 30 min; the workflow puts them on the
    // queue at about 50 a second (a Distributed Map's child runs), the demand hint knows them at once.
    const at = 30 * 60;
    const tasks = Array.from({ length: 10_000 }, (_, i) => ({ arrival: at + 5 + i / 50, duration: d() }));
    return {
      name: 'plan-10k',
      description: 'one plan of 10,000 tasks (~1 min each), 3 h',
      tasks,
      horizon: 3 * HOUR,
      hints: [{ at, tasks: 10_000, until: at + 120 }],
    };
  })();
  return [steady, spikes, wave, plan];
}

/**
 * The peak-sized pool: enough agents for the busiest 15 minutes' offered load (task-seconds arriving
 * in the window / its length), the usual capacity-planning peak; the dynamic policies get it as max.
 */
export function peakSize(trace: Trace, slots: number, windowSeconds = 15 * 60): number {
  let peak = 0;
  let load = 0;
  let from = 0;
  for (const task of trace.tasks) {
    load += task.duration;
    while (trace.tasks[from]!.arrival < task.arrival - windowSeconds) load -= trace.tasks[from++]!.duration;
    peak = Math.max(peak, load / windowSeconds);
  }
  return Math.max(1, Math.ceil(peak / slots));
}
