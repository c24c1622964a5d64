// Latency along a chain (issue 12): for a sequential plan, the time from one task's end to the next
// task's claim, split into phases from what the layer already records: the task records
// (startedAt = the claim's start, dispatchedAt = the message's SentTimestamp, finishedAt = the run's
// end), the TaskBatch execution's history (state entered/exited timestamps) and the agents'
// "task finished" lines (phasesMs: the claim write, the finish write, the callback). Clocks are the
// same machine's, in ms.

/** A "task finished" line of an agent (agents.log), the fields read here. */
export interface FinishedLine {
  executionId: string;
  index: number;
  durationMs: number;
  phasesMs: { claim: number; prepare: number; run: number; cleanup: number; record: number; callback: number; delete: number };
}

export interface ChainTask {
  index: number;
  startedAt?: string;
  dispatchedAt?: number;
  finishedAt?: string;
}

export interface ChainEvent {
  type?: string;
  timestamp?: Date | number;
  stateEnteredEventDetails?: { name?: string };
  stateExitedEventDetails?: { name?: string };
  mapIterationStartedEventDetails?: { index?: number };
}

/**
 * The phases of one link, task i's end to task i+1's claim, in order; they add up to `total`.
 * - record: the agent's finish write (finishClaim) of task i
 * - callback: from that write to the service leaving task i's Dispatch state (SendTaskSuccess over
 *   HTTP and the interpreter settling the Task)
 * - nextIteration: Dispatch exited to the next Gate entered (Reported, the Map's next iteration)
 * - gate: the Gate step (the in-process steps Lambda: its DynamoDB calls)
 * - choice: Gate exited to Dispatch entered (the Skip? Choice)
 * - sendMessage: Dispatch entered to the message's SentTimestamp (Parameters, the token, SendMessage)
 * - delivery: SentTimestamp to the agent's claim starting (the long poll's answer, the handling)
 * - claim: the agent's claim write of task i+1
 */
export const CHAIN_PHASES = ['record', 'callback', 'nextIteration', 'gate', 'choice', 'sendMessage', 'delivery', 'claim'] as const;
export type ChainPhase = (typeof CHAIN_PHASES)[number];
/** The agent's own share of each task besides the chain: before the command, the command, after it. */
export const AGENT_PHASES = ['prepare', 'run', 'cleanup'] as const;

export interface ChainFigures {
  links: number;
  p50: Record<ChainPhase | 'total' | (typeof AGENT_PHASES)[number], number>;
  p90: Record<ChainPhase | 'total' | (typeof AGENT_PHASES)[number], number>;
}

const ms = (t: Date | number | undefined) => (t instanceof Date ? t.getTime() : (t ?? NaN));

/** Per Map iteration (the task index from `from`), when each state of the task fragment was entered and exited. */
export function stateTimes(events: ChainEvent[], from = 0): Map<number, Record<string, number>> {
  const out = new Map<number, Record<string, number>>();
  let current: Record<string, number> | undefined;
  for (const e of events) {
    if (e.type === 'MapIterationStarted') {
      const index = from + (e.mapIterationStartedEventDetails?.index ?? 0);
      current = {};
      out.set(index, current);
    } else if (current && e.type?.endsWith('StateEntered') && e.stateEnteredEventDetails?.name) {
      current[`${e.stateEnteredEventDetails.name}:entered`] ??= ms(e.timestamp);
    } else if (current && e.type?.endsWith('StateExited') && e.stateExitedEventDetails?.name) {
      current[`${e.stateExitedEventDetails.name}:exited`] = ms(e.timestamp);
    }
  }
  return out;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * The chain's phases over every link whose timestamps are all known: medians and p90s (each
 * phase's own, so the p50s add up to about the total's, the p90s do not).
 * A sequential plan runs in one TaskBatch while it has at most 250 tasks: `events` is its history.
 */
export function chainFigures(tasks: ChainTask[], events: ChainEvent[], lines: FinishedLine[], from = 0): ChainFigures {
  const byIndex = new Map(tasks.map((t) => [t.index, t]));
  const lineOf = new Map(lines.map((l) => [l.index, l]));
  const states = stateTimes(events, from);
  const phases: Record<string, number[]> = {};
  const add = (k: string, v: number) => (phases[k] ??= []).push(v);
  let links = 0;
  for (const [index, task] of byIndex) {
    const next = byIndex.get(index + 1);
    const line = lineOf.get(index);
    const nextLine = lineOf.get(index + 1);
    const here = states.get(index);
    const there = states.get(index + 1);
    if (!next || !line || !nextLine || !here || !there) continue;
    const finished = Date.parse(task.finishedAt ?? '');
    const claimStart = Date.parse(next.startedAt ?? '');
    const link: Record<ChainPhase, number> = {
      record: line.phasesMs.record,
      callback: here['Dispatch:exited']! - (finished + line.phasesMs.record),
      nextIteration: there['Gate:entered']! - here['Dispatch:exited']!,
      gate: there['Gate:exited']! - there['Gate:entered']!,
      choice: there['Dispatch:entered']! - there['Gate:exited']!,
      sendMessage: next.dispatchedAt! - there['Dispatch:entered']!,
      delivery: claimStart - next.dispatchedAt!,
      claim: nextLine.phasesMs.claim,
    };
    if (Object.values(link).some((v) => !Number.isFinite(v))) continue;
    links++;
    for (const [k, v] of Object.entries(link)) add(k, v);
    add('total', claimStart + nextLine.phasesMs.claim - finished);
  }
  for (const l of lines) for (const k of AGENT_PHASES) add(k, l.phasesMs[k]);
  const pick = (p: number) => Object.fromEntries([...CHAIN_PHASES, 'total', ...AGENT_PHASES].map((k) => [k, percentile(phases[k] ?? [], p)]));
  return { links, p50: pick(50) as ChainFigures['p50'], p90: pick(90) as ChainFigures['p90'] };
}

/** The "task finished" lines of an execution in an agents.log (one JSON object a line). */
export function finishedLines(log: string, executionId: string): FinishedLine[] {
  const out: FinishedLine[] = [];
  for (const text of log.split('\n')) {
    if (!text.includes('"task finished"') || !text.includes(executionId)) continue;
    try {
      const l = JSON.parse(text) as Partial<FinishedLine> & { msg?: string };
      if (l.msg === 'task finished' && l.executionId === executionId && typeof l.index === 'number' && l.phasesMs) out.push(l as FinishedLine);
    } catch {
      // a line cut short
    }
  }
  return out;
}
