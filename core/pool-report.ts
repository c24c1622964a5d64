// The resource report (the design's identifyBottlenecks and predictResourceNeeds): per agent type,
// how long tasks waited for an agent over the last hour, how busy the agents are, how long they
// idled, how many agents would drain the backlog within a target, and the bottleneck in a sentence.
// GET /pool/report and `xl pool --report`. The arithmetic here is pure; reading is the caller's.
import type { AgentType } from './agent-types.ts';
import type { Backlog } from './pool.ts';
import type { ReportTaskFields } from './aws/execution-store.ts';
import type { AgentRecord } from './records.ts';

export const REPORT_WINDOW_MINUTES = 60;
export const DEFAULT_TARGET_MINUTES = 10;
/** A type with no task finished in the window: its tasks are taken to run this long. */
export const ASSUMED_TASK_SECONDS = 300;

/** What the report reads of a task record. */
export type ReportTask = ReportTaskFields;

export interface ReportType {
  agentType: AgentType;
  bounds: { min: number; max: number };
  slots: number;
  backlog: Backlog;
}

export interface TypeReport {
  agentType: AgentType;
  min: number;
  max: number;
  agents: { starting: number; idle: number; busy: number };
  /** Tasks waiting in the queues, and being worked on. */
  waiting: number;
  running: number;
  /** Dispatch to claim, over the window: tasks claimed in it, and those still waiting (so far). */
  queueWait: { samples: number; p50Seconds: number; p95Seconds: number };
  busySlots: number;
  slots: number;
  /** busySlots / slots; 1 when tasks wait and no agent has a slot. */
  saturation: number;
  /** Minutes the type's agents were up with nothing to run, over the window. */
  idleAgentMinutes: number;
  /** Mean run time of the tasks that finished in the window (or ASSUMED_TASK_SECONDS: durationObserved false). */
  taskSeconds: number;
  durationObserved: boolean;
  /** Agents that would finish the waiting and running tasks within the target, at the observed run time. */
  agentsNeeded: number;
}

export interface PoolReport {
  generatedAt: string;
  windowMinutes: number;
  targetMinutes: number;
  types: TypeReport[];
  bottleneck: string;
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const LIVE = new Set(['starting', 'idle', 'busy']);
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Total length of the union of [from, to) intervals, within [lo, hi). */
export function coveredMs(intervals: [number, number][], lo: number, hi: number): number {
  const clipped = intervals
    .map(([a, b]): [number, number] => [Math.max(a, lo), Math.min(b, hi)])
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of clipped) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

/**
 * Agents needed to finish `tasks` within `targetMinutes` at `taskSeconds` each and `slots` per
 * agent: each slot runs target/duration tasks in that time, but at least one (a task longer than
 * the target cannot be sped up by more agents, only started at once).
 */
export function agentsToDrain(tasks: number, taskSeconds: number, slots: number, targetMinutes: number): number {
  if (tasks <= 0) return 0;
  const perSlot = Math.max(1, (targetMinutes * 60) / Math.max(1, taskSeconds));
  return Math.ceil(tasks / (perSlot * Math.max(1, slots)));
}

export function buildReport(input: {
  now: number;
  targetMinutes: number;
  types: ReportType[];
  agents: AgentRecord[];
  tasks: ReportTask[];
  windowMinutes?: number;
}): PoolReport {
  const { now, targetMinutes } = input;
  const windowMinutes = input.windowMinutes ?? REPORT_WINDOW_MINUTES;
  const from = now - windowMinutes * 60_000;
  const types = input.types.map((t): TypeReport => {
    const agents = input.agents.filter((a) => a.agentType === t.agentType);
    const tasks = input.tasks.filter((x) => x.agentType === t.agentType);
    const live = agents.filter((a) => LIVE.has(a.status));
    const count = (s: string) => live.filter((a) => a.status === s).length;

    const waits: number[] = [];
    for (const task of tasks) {
      if (task.dispatchedAt === undefined) continue;
      const claimed = task.startedAt ? Date.parse(task.startedAt) : undefined;
      if (claimed !== undefined && claimed >= task.dispatchedAt && claimed >= from) waits.push(claimed - task.dispatchedAt);
      // Still waiting: its wait so far counts, or a queue nobody takes from would look fine.
      else if (task.status === 'queued') waits.push(Math.max(0, now - task.dispatchedAt));
    }

    const finished = tasks.filter((x) => x.durationMs !== undefined && x.finishedAt && Date.parse(x.finishedAt) >= from);
    const durationObserved = finished.length > 0;
    const taskSeconds = durationObserved ? finished.reduce((s, x) => s + x.durationMs!, 0) / finished.length / 1000 : ASSUMED_TASK_SECONDS;

    // Idle: up (not starting) and running nothing, by the task records' run intervals.
    let idleMs = 0;
    for (const agent of agents) {
      if (agent.status === 'starting') continue;
      const up = Date.parse(agent.startedAt);
      const down = LIVE.has(agent.status) ? now : Date.parse(agent.lastHeartbeatAt);
      const runs = tasks
        .filter((x) => x.agentId === agent.agentId && x.startedAt)
        .map((x): [number, number] => [Date.parse(x.startedAt!), x.finishedAt && x.status !== 'running' ? Date.parse(x.finishedAt) : now]);
      idleMs += coveredMs([[up, down]], from, now) - coveredMs(runs.map(([a, b]) => [Math.max(a, up), Math.min(b, down)]), from, now);
    }

    const slots = (count('idle') + count('busy')) * t.slots;
    const busySlots = Math.min(slots, t.backlog.inFlight);
    const saturation = slots > 0 ? busySlots / slots : t.backlog.visible > 0 ? 1 : 0;
    return {
      agentType: t.agentType,
      min: t.bounds.min,
      max: t.bounds.max,
      agents: { starting: count('starting'), idle: count('idle'), busy: count('busy') },
      waiting: t.backlog.visible,
      running: t.backlog.inFlight,
      queueWait: { samples: waits.length, p50Seconds: round(percentile(waits, 50) / 1000), p95Seconds: round(percentile(waits, 95) / 1000) },
      busySlots,
      slots,
      saturation: round(saturation, 2),
      idleAgentMinutes: round(idleMs / 60_000),
      taskSeconds: round(taskSeconds),
      durationObserved,
      agentsNeeded: agentsToDrain(t.backlog.visible + t.backlog.inFlight, taskSeconds, t.slots, targetMinutes),
    };
  });
  return { generatedAt: new Date(now).toISOString(), windowMinutes, targetMinutes, types, bottleneck: bottleneck(types, targetMinutes) };
}

const minutes = (seconds: number) => (seconds < 120 ? `${Math.round(seconds)} s` : `${round(seconds / 60)} min`);
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The type that holds work up the most, in one sentence: the most saturated with tasks waiting. */
export function bottleneck(types: TypeReport[], targetMinutes: number): string {
  const waiting = types.filter((t) => t.waiting > 0).sort((a, b) => b.saturation - a.saturation || b.waiting - a.waiting || b.queueWait.p95Seconds - a.queueWait.p95Seconds);
  const worst = waiting[0];
  if (!worst) {
    const idle = [...types].sort((a, b) => b.idleAgentMinutes - a.idleAgentMinutes)[0];
    return idle && idle.idleAgentMinutes > 0
      ? `No bottleneck: no task is waiting; ${idle.agentType} agents idled the most (${idle.idleAgentMinutes} agent-minutes in the last hour).`
      : 'No bottleneck: no task is waiting.';
  }
  const live = worst.agents.idle + worst.agents.busy + worst.agents.starting;
  const wait = `${plural(worst.waiting, 'task')} waiting (p95 wait ${minutes(worst.queueWait.p95Seconds)})`;
  const need = `${plural(worst.agentsNeeded, 'agent')} would drain them within ${targetMinutes} min`;
  if (worst.saturation >= 1 && live >= worst.max) {
    const advice = worst.agentsNeeded > worst.max ? `: raise its max above ${worst.max}` : '';
    const busy = worst.slots === 1 ? 'the one slot of its one agent (its max) is busy' : `all ${worst.slots} slots of its ${plural(live, 'agent')} (its max) are busy`;
    return `${worst.agentType} is the bottleneck: ${busy} with ${wait}; ${need}${advice}.`;
  }
  if (worst.agents.starting > 0) {
    return `${worst.agentType} is the bottleneck: ${wait} while ${plural(worst.agents.starting, 'agent')} ${worst.agents.starting === 1 ? 'starts' : 'start'}; ${need}.`;
  }
  return `${worst.agentType} is the bottleneck: ${wait}, ${Math.round(worst.saturation * 100)}% of its slots busy; ${need}.`;
}

/** How far back the report looks for executions that may still have run in the window. */
export const REPORT_LOOKBACK_HOURS = 24;

/** Reads what the report needs (agents, backlog, recent task records) and builds it. */
export async function readPoolReport(
  deps: {
    bounds: () => Promise<{ agentType: AgentType; min: number; max: number }[]>;
    slots: (type: AgentType) => number;
    agents: { list(): Promise<AgentRecord[]> };
    executions: { recentTasks(startedSinceIso: string, activeSinceIso: string): Promise<ReportTask[]> };
    backlog: (type: AgentType) => Promise<Backlog>;
  },
  opts: { now: number; targetMinutes: number },
): Promise<PoolReport> {
  const from = opts.now - REPORT_WINDOW_MINUTES * 60_000;
  const [bounds, agents, tasks] = await Promise.all([
    deps.bounds(),
    deps.agents.list(),
    deps.executions.recentTasks(new Date(opts.now - REPORT_LOOKBACK_HOURS * 3_600_000).toISOString(), new Date(from).toISOString()),
  ]);
  const types = await Promise.all(
    bounds.map(async (b) => ({ agentType: b.agentType, bounds: { min: b.min, max: b.max }, slots: deps.slots(b.agentType), backlog: await deps.backlog(b.agentType) })),
  );
  return buildReport({ now: opts.now, targetMinutes: opts.targetMinutes, types, agents, tasks });
}

/** `?targetMinutes=`: a positive number of minutes up to a day; absent, DEFAULT_TARGET_MINUTES. */
export function parseTargetMinutes(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return DEFAULT_TARGET_MINUTES;
  const n = Number(raw);
  return Number.isFinite(n) && n > 0 && n <= 1440 ? n : undefined;
}
