// The agent pool manager and health monitor of the design document. Both run on a schedule
// (Lambda on AWS, a timer locally) and act on agents only through the AgentRuntime port.
import { randomUUID } from 'node:crypto';
import { AGENT_TYPES, type AgentType } from './agent-types.ts';
import type { AgentStore } from './aws/agent-store.ts';
import { agentBreakerKey, type CircuitBreaker } from './breakers.ts';
import { type EventSink, noEvents } from './events.ts';
import { METRIC, METRIC_DIMENSION, type MetricsSink } from './metrics.ts';
import type { AgentRecord, AgentStatus, ArrivalEstimate, PoolBounds } from './records.ts';
import type { AgentRuntime } from './runtime.ts';
import { DEFAULT_POOL_IDLE_SECONDS } from './config.ts';

const LIVE: AgentRecord['status'][] = ['starting', 'idle', 'busy'];

export interface PoolDeps {
  agents: AgentStore;
  runtime: AgentRuntime;
  heartbeatSeconds: number;
  /** How long a started agent may take to send its first heartbeat (Fargate: about a minute). */
  startAllowanceSeconds: number;
  defaults?: Partial<Record<AgentType, { min: number; max: number }>>;
  /** Tasks one agent of a type runs at once (XL_MAX_CONCURRENT_TASKS); 1 when unsaid. */
  slots?: Partial<Record<AgentType, number>>;
  /** An agent idle this long may be drained when the backlog no longer needs it (default 120). */
  idleSeconds?: number;
  /**
   * Room kept for the tasks expected within this many seconds at the smoothed arrival rate: about
   * twice an agent's start plus a round (bench/pool-sim.ts measured it). Unset: backlog only.
   */
  reactionSeconds?: number;
  /**
   * How long an agent takes to start: the room is net of the tasks expected to end within it, and
   * idle agents are held by the arrival rate (SizingPolicy.startSeconds). Unset: held idleSeconds.
   */
  startSeconds?: number;
  /**
   * Escalation: each agent replaced for being unhealthy counts as a failure of its type's breaker,
   * so a type whose agents keep dying (a broken image, a crash loop) stops being dispatched to.
   */
  breaker?: Pick<CircuitBreaker, 'recordFailure'>;
  /** Sends what is left in a dead agent's direct queue back to the type queues (core/aws/direct-queues.ts). */
  directQueues?: { reclaim(url: string): Promise<number> };
  /** agent.unhealthy (the monitor), agent.started and agent.replaced (the manager). */
  events?: EventSink;
  now?: () => number;
}

/** The work queued for an agent type: messages waiting, and messages being worked on. */
export interface Backlog {
  visible: number;
  inFlight: number;
  /** Of the waiting messages, those on the high-priority queue. */
  high?: number;
}


/**
 * The design's dynamic sizing: enough agents for the queued and running tasks, at their slots
 * each, within the type's bounds.
 */
export function desiredAgents(bounds: { min: number; max: number }, backlog: Backlog, slots: number): number {
  const needed = Math.ceil((backlog.visible + backlog.inFlight) / Math.max(1, slots));
  return Math.min(bounds.max, Math.max(bounds.min, needed));
}

/** The arrival rate's smoothing half-life (bench/pool-sim.ts: 120 s held fewer idle agents after a burst than 300 s at the same waits). */
export const DEFAULT_RATE_HALF_LIFE_SECONDS = 120;

/** The half-life of the mean task duration's estimate: task durations of a type change slowly. */
export const DURATION_HALF_LIFE_SECONDS = 1800;

/** What the sizing of one agent type looks at: a pure snapshot, so the simulator can drive it. */
export interface SizingInput {
  bounds: { min: number; max: number };
  slots: number;
  /** The type's live agents (starting, idle, busy). */
  agents: Pick<AgentRecord, 'agentId' | 'status' | 'idleSince' | 'lastHeartbeatAt' | 'preemptible' | 'yieldRequestedAt'>[];
  /** Without one (no backlog reader), the bounds alone apply. */
  backlog?: Backlog;
  /** Tasks of plans just submitted that have not reached a queue yet (core/demand.ts). */
  demandHint?: number;
  /** Tasks the type's agents have finished so far (their records' counts): with the backlog, arrivals. */
  finished?: number;
  /** The previous round's estimate (the pool manager keeps it between rounds). */
  estimate?: ArrivalEstimate;
}

/** A smoothed arrival rate of one type's tasks, carried from round to round. */
export type { ArrivalEstimate } from './records.ts';

export interface SizingPolicy {
  /** An idle agent is drained only after this long, unless the pool is above max (with startSeconds: at most this long). */
  idleSeconds: number;
  /** A yield request is pending for two heartbeat spans. */
  heartbeatSeconds: number;
  /**
   * How long a new agent takes to be of use (its start plus a round): the pool keeps room for the
   * tasks expected to arrive meanwhile, at the smoothed arrival rate. 0: backlog only.
   */
  reactionSeconds?: number;
  /** Half-life of the arrival-rate smoothing. */
  rateHalfLifeSeconds?: number;
  /**
   * How long an agent takes to start (Fargate: about 60 s). When set, what a start costs is weighed:
   * the room is net of the running tasks expected to end within a start, and an idle agent is held
   * only while the next arrival is expected within a start (bench/pool-sim.ts measured both).
   */
  startSeconds?: number;
}

export interface SizingDecision {
  desired: number;
  /** Agents to start. */
  start: number;
  /** Idle agents to drain, longest idle first. */
  drain: string[];
  /** Busy agents asked to hand back their low-priority work. */
  yield: string[];
  /** This round's arrival estimate, for the next round (only with a backlog and `finished`). */
  estimate?: ArrivalEstimate;
}

/**
 * The smoothed arrival rate: tasks that appeared since the last round (growth of queued + running +
 * finished), per second, averaged exponentially so one burst neither vanishes nor dominates. With
 * `work` (the finished and running counts), also the busy time and completions behind the mean
 * task duration (meanTaskSeconds).
 */
export function nextEstimate(
  previous: ArrivalEstimate | undefined,
  seen: number,
  now: number,
  halfLifeSeconds: number,
  work?: { finished: number; inFlight: number },
): ArrivalEstimate {
  const counts = work ? { finished: work.finished, inFlight: work.inFlight } : {};
  const kept = previous?.busySeconds !== undefined ? { busySeconds: previous.busySeconds, completions: previous.completions ?? 0 } : {};
  if (!previous || now <= previous.at) return { at: now, seen, ratePerSecond: previous?.ratePerSecond ?? 0, ...counts, ...kept };
  const dt = (now - previous.at) / 1000;
  // Fewer seen than before: records went away (an agent's counts); no arrivals can be told.
  const rate = Math.max(0, seen - previous.seen) / dt;
  const alpha = 1 - 2 ** (-dt / halfLifeSeconds);
  const next: ArrivalEstimate = { at: now, seen, ratePerSecond: previous.ratePerSecond + alpha * (rate - previous.ratePerSecond), ...counts };
  if (work && previous.finished !== undefined && previous.inFlight !== undefined) {
    // Little's law: task-seconds run (the running count, averaged over the span) over tasks finished.
    const decay = 2 ** (-dt / DURATION_HALF_LIFE_SECONDS);
    next.busySeconds = (previous.busySeconds ?? 0) * decay + ((previous.inFlight + work.inFlight) / 2) * dt;
    next.completions = (previous.completions ?? 0) * decay + Math.max(0, work.finished - previous.finished);
  }
  return next;
}

/** The type's mean task duration in seconds, once a task has finished: undefined before. */
export function meanTaskSeconds(estimate: ArrivalEstimate | undefined): number | undefined {
  if (!estimate?.busySeconds || !estimate.completions || estimate.completions < 1) return undefined;
  return estimate.busySeconds / estimate.completions;
}

/**
 * Running tasks expected to end within `seconds` (their slots then take queued work): each ends at
 * the rate 1/mean duration, as if durations were memoryless; rounded down so a start is not skipped
 * for a fraction of a task.
 */
export function expectedEnds(inFlight: number, meanSeconds: number | undefined, seconds: number): number {
  if (!meanSeconds || inFlight <= 0) return 0;
  return Math.floor(inFlight * (1 - Math.exp(-seconds / meanSeconds)));
}

/**
 * The pool manager's decision for one type, a pure function of its state and the time: what
 * reconcile acts on and bench/pool-sim.ts measures.
 */
export function sizeType(input: SizingInput, now: number, policy: SizingPolicy): SizingDecision {
  const { bounds, slots, agents: live, backlog: queued } = input;
  let desired = queued ? desiredAgents(bounds, queued, slots) : Math.min(bounds.max, Math.max(bounds.min, live.length));
  let estimate: ArrivalEstimate | undefined;
  // With startSeconds: how many idle agents the expected arrivals are worth holding.
  let holdIdle: number | undefined;
  if (queued && input.finished !== undefined) {
    const start = policy.startSeconds;
    estimate = nextEstimate(
      input.estimate,
      queued.visible + queued.inFlight + input.finished,
      now,
      policy.rateHalfLifeSeconds ?? DEFAULT_RATE_HALF_LIFE_SECONDS,
      start !== undefined ? { finished: input.finished, inFlight: queued.inFlight } : undefined,
    );
    // Room for what arrives before a new agent could take it (rounded: a rate decaying towards
    // zero must not hold an agent for ever).
    const expected = Math.round(estimate.ratePerSecond * (policy.reactionSeconds ?? 0));
    if (start === undefined) {
      desired = Math.max(desired, desiredAgents(bounds, { visible: queued.visible + expected, inFlight: queued.inFlight }, slots));
    } else {
      // A running task that ends within a start frees its slot before a new agent would be up: the
      // waiting work and the room are what those slots cannot take (after a burst, most of it).
      const ends = expectedEnds(queued.inFlight, meanTaskSeconds(estimate), start);
      desired = desiredAgents(bounds, { visible: Math.max(0, queued.visible + expected - ends), inFlight: queued.inFlight }, slots);
      // The j-th idle agent is next wanted in about j / rate seconds: worth holding while that is
      // shorter than a start (holding costs less than starting one again), drained at once beyond.
      holdIdle = Math.max(0, Math.ceil((estimate.ratePerSecond * start) / Math.max(1, slots)) - 1);
    }
  }
  // A plan's known tasks ask for agents before they reach a queue (a cold start takes a minute on
  // Fargate); once queued, the backlog counts them instead, so the larger of the two, not the sum.
  if (input.demandHint) desired = Math.max(desired, Math.min(bounds.max, Math.ceil(input.demandHint / Math.max(1, slots))));
  const out: SizingDecision = { desired, start: 0, drain: [], yield: [], ...(estimate ? { estimate } : {}) };
  // Preemption: high-priority work waits and no agent can be added, so agents running
  // low-priority tasks are asked to hand them back (checkpointed, to resume later).
  // Only when no agent has a free slot: one that has will take the high-priority task itself.
  const saturated = queued !== undefined && queued.inFlight >= live.length * slots;
  if (queued?.high && live.length >= bounds.max && saturated) {
    const asked = (a: SizingInput['agents'][number]) =>
      a.yieldRequestedAt !== undefined && now - Date.parse(a.yieldRequestedAt) < 2 * policy.heartbeatSeconds * 1000;
    const pending = live.filter(asked).length;
    out.yield = live
      .filter((a) => a.status === 'busy' && a.preemptible === true && !asked(a))
      .slice(0, Math.max(0, queued.high - pending))
      .map((a) => a.agentId);
  }
  const idleFor = (a: SizingInput['agents'][number]) => now - Date.parse(a.idleSince ?? a.lastHeartbeatAt);
  const idle = live.filter((a) => a.status === 'idle').sort((a, b) => idleFor(b) - idleFor(a));
  if (live.length < desired) {
    out.start = desired - live.length;
  } else if (holdIdle !== undefined) {
    // Kept: what the backlog and room want, or the working agents plus the idle ones worth holding
    // (the most recently idle); never above max, and none idle longer than idleSeconds beyond desired.
    const keep = Math.min(bounds.max, Math.max(desired, live.length - idle.length + holdIdle));
    const beyond = Math.max(0, live.length - keep);
    const stale = idle.slice(beyond).filter((a) => idleFor(a) >= policy.idleSeconds * 1000).slice(0, Math.max(0, keep - desired));
    out.drain = [...idle.slice(0, beyond), ...stale].map((a) => a.agentId);
  } else if (live.length > desired) {
    // Down to max, any idle agent goes; below that, only agents idle long enough that the next
    // task is not likely to want them back (a cold start costs more than a little idling).
    const overMax = Math.max(0, live.length - bounds.max);
    out.drain = idle
      .filter((a, i) => i < overMax || idleFor(a) >= policy.idleSeconds * 1000)
      .slice(0, live.length - desired)
      .map((a) => a.agentId);
  }
  return out;
}

/** XL_POOL: `tester=2..8,coder=0..4`; unknown types and malformed entries are errors. */
export function parsePoolSpec(spec: string | undefined): Partial<Record<AgentType, { min: number; max: number }>> {
  return parsePerType('XL_POOL', spec, '<min>..<max>', (type, value) => {
    const m = /^(\d+)\.\.(\d+)$/.exec(value);
    if (!m) return undefined;
    const [min, max] = [Number(m[1]), Number(m[2])];
    if (min > max) throw new Error(`XL_POOL: ${type} min ${min} is above max ${max}`);
    return { min, max };
  });
}

/**
 * XL_MAX_CONCURRENT_TASKS: `tester=2,monitor=4`: how many tasks one agent of a type runs at once
 * (the design's maxConcurrentTasks; 1 for a type it does not name).
 */
export function parseConcurrencySpec(spec: string | undefined): Partial<Record<AgentType, number>> {
  return parsePerType('XL_MAX_CONCURRENT_TASKS', spec, '<n> (1..64)', (_type, value) => {
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    return n >= 1 && n <= 64 ? n : undefined;
  });
}

/** `<type>=<value>,...`; `parse` answers undefined for a malformed value. */
function parsePerType<T>(variable: string, spec: string | undefined, shape: string, parse: (type: AgentType, value: string) => T | undefined): Partial<Record<AgentType, T>> {
  const out: Partial<Record<AgentType, T>> = {};
  if (!spec?.trim()) return out;
  for (const part of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([a-z]+)=(.*)$/.exec(part);
    if (!m) throw new Error(`${variable}: "${part}" is not <agentType>=${shape}`);
    const [, type, value] = m as unknown as [string, string, string];
    if (!(AGENT_TYPES as readonly string[]).includes(type)) throw new Error(`${variable}: unknown agent type "${type}"`);
    const parsed = parse(type as AgentType, value);
    if (parsed === undefined) throw new Error(`${variable}: "${part}" is not <agentType>=${shape}`);
    out[type as AgentType] = parsed;
  }
  return out;
}

/** Health checks in a row that may find an agent unhealthy before it is replaced (the design's retryCount). */
export const DEFAULT_HEALTH_RETRY_COUNT = 3;

export class HealthMonitor {
  constructor(
    private readonly deps: Omit<PoolDeps, 'runtime' | 'defaults'> & {
      retryCount?: number;
      /** Agents by status and breakers open, as gauges after each check (core/metrics.ts). */
      metrics?: MetricsSink;
      /** What the BreakersOpen gauge counts (read only when there is a metrics sink). */
      breakers?: Pick<CircuitBreaker, 'list'>;
    },
  ) {}

  /**
   * The heartbeat check: an agent silent for a whole heartbeat span is unhealthy (dead). The
   * capability, performance and resource checks are the agent's own (core/health.ts); one that
   * reports itself unhealthy for retryCount checks in a row is escalated to unhealthy. Unhealthy
   * agents are the pool manager's to replace.
   */
  async check(): Promise<{ unhealthy: string[] }> {
    const now = (this.deps.now ?? Date.now)();
    const retryCount = this.deps.retryCount ?? DEFAULT_HEALTH_RETRY_COUNT;
    const unhealthy: string[] = [];
    const markUnhealthy = async (agent: AgentRecord, reason: string) => {
      if (await this.deps.agents.setStatus(agent.agentId, 'unhealthy', { from: [agent.status], reason })) {
        unhealthy.push(agent.agentId);
        await (this.deps.events ?? noEvents).emit({ kind: 'agent.unhealthy', agentId: agent.agentId, agentType: agent.agentType, reason });
      }
    };
    const agents = await this.deps.agents.list();
    for (const agent of agents) {
      if (!LIVE.includes(agent.status) && agent.status !== 'draining') continue;
      const silentMs = now - Date.parse(agent.lastHeartbeatAt);
      const allowance = (agent.status === 'starting' ? this.deps.startAllowanceSeconds : this.deps.heartbeatSeconds) * 1000;
      if (silentMs > allowance) {
        await markUnhealthy(agent, `heartbeat: silent for ${Math.round(silentMs / 1000)} s`);
        continue;
      }
      const strikes = agent.health.overall === 'unhealthy' ? (agent.healthStrikes ?? 0) + 1 : 0;
      if (strikes >= retryCount) {
        const critical = (agent.health.issues ?? []).filter((i) => i.severity === 'critical').map((i) => `${i.check}: ${i.message}`);
        await markUnhealthy(agent, `unhealthy for ${strikes} checks in a row${critical.length ? ` (${critical.join('; ')})` : ''}`);
      } else if (strikes !== (agent.healthStrikes ?? 0)) {
        await this.deps.agents.setHealthStrikes(agent.agentId, strikes);
      }
    }
    if (this.deps.metrics) await this.gauges(this.deps.metrics, agents, unhealthy);
    return { unhealthy };
  }

  /** Every status but terminated, zeros included, so a gauge falls back when agents recover or go. */
  private async gauges(metrics: MetricsSink, agents: AgentRecord[], markedUnhealthy: string[]): Promise<void> {
    const counts: Record<Exclude<AgentStatus, 'terminated'>, number> = { starting: 0, idle: 0, busy: 0, draining: 0, unhealthy: 0 };
    for (const agent of agents) {
      const status = markedUnhealthy.includes(agent.agentId) ? 'unhealthy' : agent.status;
      if (status !== 'terminated') counts[status]++;
    }
    for (const [status, n] of Object.entries(counts)) metrics.add(METRIC.agents, 'Count', n, { [METRIC_DIMENSION.status]: status });
    if (this.deps.breakers) {
      // A breaker table that cannot be read leaves the gauge without a point, not the check failed.
      const breakers = await this.deps.breakers.list().catch(() => undefined);
      if (breakers) metrics.add(METRIC.breakersOpen, 'Count', breakers.filter((b) => b.state === 'open').length);
    }
  }
}

export interface PoolRow extends PoolBounds {
  desired: number;
  running: number;
  backlog: number;
}

export class PoolManager {
  constructor(private readonly deps: PoolDeps) {}

  bounds(): Promise<PoolBounds[]> {
    return this.deps.agents.poolBounds(this.deps.defaults);
  }

  /**
   * Replaces dead agents and sizes each type to its backlog within its bounds: below what the
   * backlog needs (and at least min), start agents; above it, drain agents that have been idle for
   * idleSeconds (at once above max). Without a backlog reader, the bounds alone apply.
   */
  async reconcile(
    backlog?: (type: AgentType) => Promise<Backlog>,
    demand?: Partial<Record<AgentType, number>>,
  ): Promise<{ started: string[]; replaced: string[]; drained: string[]; yielded: string[] }> {
    const started: string[] = [];
    const replaced: string[] = [];
    const drained: string[] = [];
    const yielded: string[] = [];
    const now = (this.deps.now ?? Date.now)();
    const agents = await this.deps.agents.list();
    for (const agent of agents.filter((a) => a.status === 'unhealthy')) {
      await this.deps.runtime.stop(agent, false).catch(() => undefined);
      if (await this.deps.agents.setStatus(agent.agentId, 'terminated', { from: ['unhealthy'] })) {
        replaced.push(agent.agentId);
        // Tasks Gate sent to the dead agent go back to its type's queues now, not at their timeout.
        if (agent.directQueueUrl) await this.deps.directQueues?.reclaim(agent.directQueueUrl).catch(() => undefined);
        await (this.deps.events ?? noEvents).emit({ kind: 'agent.replaced', agentId: agent.agentId, agentType: agent.agentType });
        await this.deps.breaker?.recordFailure(agentBreakerKey(agent.agentType));
      }
    }
    const estimates = backlog && this.deps.reactionSeconds ? await this.deps.agents.poolEstimates() : {};
    for (const bounds of await this.bounds()) {
      const type = bounds.agentType;
      const live = agents.filter((a) => a.agentType === type && LIVE.includes(a.status));
      const queued = backlog ? await backlog(type) : undefined;
      // Tasks finished by the type's agents (terminated ones' records included): with the backlog's
      // growth, how many tasks arrived since the last round.
      const finished = agents.filter((a) => a.agentType === type).reduce((n, a) => n + (a.tasksCompleted ?? 0) + (a.tasksFailed ?? 0), 0);
      const estimate = estimates[type];
      const decision = sizeType(
        {
          bounds,
          slots: this.slots(type),
          agents: live,
          ...(queued ? { backlog: queued } : {}),
          demandHint: demand?.[type] ?? 0,
          ...(this.deps.reactionSeconds ? { finished, ...(estimate ? { estimate } : {}) } : {}),
        },
        now,
        {
          idleSeconds: this.deps.idleSeconds ?? DEFAULT_POOL_IDLE_SECONDS,
          heartbeatSeconds: this.deps.heartbeatSeconds,
          reactionSeconds: this.deps.reactionSeconds ?? 0,
          ...(this.deps.startSeconds !== undefined ? { startSeconds: this.deps.startSeconds } : {}),
        },
      );
      // A type with no arrivals and no rate left has nothing to remember: no write for it.
      const quiet = estimate && decision.estimate?.seen === estimate.seen && estimate.ratePerSecond === 0;
      if (decision.estimate && !quiet) await this.deps.agents.putPoolEstimate(type, decision.estimate);
      for (const agentId of decision.yield) {
        if (await this.deps.agents.requestYield(agentId, new Date(now).toISOString())) yielded.push(agentId);
      }
      if (decision.start > 0) started.push(...(await this.startAgents(type, decision.start)));
      for (const agentId of decision.drain) {
        await this.stopAgent(live.find((a) => a.agentId === agentId)!, true);
        drained.push(agentId);
      }
    }
    return { started, replaced, drained, yielded };
  }

  /** Tasks one agent of the type runs at once. */
  slots(type: AgentType): number {
    return this.deps.slots?.[type] ?? 1;
  }

  /** Starts agents and records them as starting, so the next round counts them. */
  async startAgents(agentType: AgentType, count: number): Promise<string[]> {
    const requestedAt = new Date((this.deps.now ?? Date.now)()).toISOString();
    const refs = await this.deps.runtime.start(agentType, count);
    const now = new Date((this.deps.now ?? Date.now)()).toISOString();
    for (const ref of refs) {
      // The worker overwrites this record when it registers; until then it is "starting".
      await this.deps.agents.put({
        agentId: ref.agentId,
        agentType,
        status: 'starting',
        startedAt: now,
        lastHeartbeatAt: now,
        runtime: ref.runtime,
        health: { overall: 'unknown', metrics: { cpu: 0, memory: 0, responseTime: 0, errorRate: 0, taskSuccessRate: 1 }, lastCheck: now },
      });
      await (this.deps.events ?? noEvents).emit({ kind: 'agent.started', agentId: ref.agentId, agentType, requestedAt });
    }
    return refs.map((r) => r.agentId);
  }

  async stopAgent(agent: AgentRecord, graceful: boolean): Promise<void> {
    await this.deps.agents.setStatus(agent.agentId, graceful ? 'draining' : 'terminated');
    await this.deps.runtime.stop(agent, graceful);
  }

  /** Per type: bounds, what the backlog needs, live agents and waiting messages. */
  async rows(backlog: (type: AgentType) => Promise<Backlog>): Promise<PoolRow[]> {
    const agents = await this.deps.agents.list();
    return Promise.all(
      (await this.bounds()).map(async (b) => {
        const running = agents.filter((a) => a.agentType === b.agentType && LIVE.includes(a.status)).length;
        const queued = await backlog(b.agentType);
        return { ...b, desired: desiredAgents(b, queued, this.slots(b.agentType)), running, backlog: queued.visible };
      }),
    );
  }
}

export const newAgentId = (type: AgentType) => `${type}-${randomUUID().slice(0, 8)}`;
