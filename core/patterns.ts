// The semantics of the three execution patterns (CONTRACT.md, "Semantics"), free of AWS:
// how a plan is cut into batches for the state machines, and how task results become the
// execution's status and result.
import { ERROR_TYPES } from './errors.ts';
import type { Pattern } from './plan.ts';
import type { ExecutionRecord, ExecutionStatus, StageLayout, TaskRecord } from './records.ts';
import { MAX_BREAKER_WAITS, recoveryStrategy } from './recovery.ts';

/**
 * Most tasks per TaskBatch child execution, whatever their history: the Map's result and the
 * batch's state stay small, and a failed batch costs little to run again.
 */
export const BATCH_SIZE = 250;

/**
 * History events of a TaskBatch execution (AWS fails an execution at its 25,000th event; inline
 * Map iterations write into their parent's history). Measured by running the synthesized TaskBatch
 * ASL on the local Step Functions service (local/stepfunctions, whose GetExecutionHistory writes
 * the events AWS writes per state) with stand-in steps and agents:
 * test/integration/batch-history.test.ts measures them again and fails if these fall below it.
 */
export const HISTORY_EVENTS = {
  /** AWS's cap on one execution's history. */
  limit: 25_000,
  /** ExecutionStarted, Indexes (2), Tasks (MapStateEntered, MapStateStarted, MapStateSucceeded, MapStateExited), ExecutionSucceeded. */
  batch: 8,
  /**
   * A task's first round, ended either way: MapIterationStarted/Succeeded (2), Gate (TaskStateEntered,
   * LambdaFunctionScheduled/Started/Succeeded, TaskStateExited: 5), Skip? (2), Dispatch (TaskStateEntered,
   * TaskScheduled, TaskStarted, TaskSubmitted, TaskSucceeded|TaskFailed, TaskStateExited: 6), then
   * Reported (2: 17 in all) or Recover (5), Retry? (2), Settled (2): 24 in all.
   */
  task: 24,
  /** Each retry: Backoff (2), Gate (5), Skip? (2), Dispatch (6), Recover (5), Retry? (2). */
  retry: 22,
  /**
   * Left free under the cap for what no task record bounds: the steps' own Lambda retries (3 events
   * each: LambdaFunctionScheduled, LambdaFunctionStarted, LambdaFunctionFailed; about 800 per batch),
   * Recover's caught failures, and re-dispatches of tasks whose dispatch timed out unclaimed.
   */
  margin: 2_500,
} as const;

/**
 * Loops back to Gate a task may take in all: each error type's retries (each type has its own
 * budget, core/recovery.ts), one more run on a fallback agent type, and waits for an open breaker
 * (`onOpen: "wait"`, a shorter loop without Dispatch, counted as a whole one).
 */
export function retryBudget(task: Pick<TaskRecord, 'recovery'>): number {
  const strategies = ERROR_TYPES.map((type) => recoveryStrategy(task, type));
  const retries = strategies.reduce((sum, s) => sum + s.maxRetries, 0);
  const fallback = strategies.some((s) => s.fallback?.action === 'agent-type') ? 1 : 0;
  const waits = recoveryStrategy(task, 'dependency').onOpen === 'wait' ? MAX_BREAKER_WAITS : 0;
  return retries + fallback + waits;
}

/** A task's history events if it uses every retry its recovery allows. */
export function worstCaseTaskEvents(task: Pick<TaskRecord, 'recovery'>): number {
  return HISTORY_EVENTS.task + HISTORY_EVENTS.retry * retryBudget(task);
}

/** What a batch's tasks may write together: the cap less the batch's own events and the margin. */
export const BATCH_TASK_EVENT_BUDGET = HISTORY_EVENTS.limit - HISTORY_EVENTS.batch - HISTORY_EVENTS.margin;
/** Step Functions runs at most 40 inline Map iterations at once. */
export const MAP_CONCURRENCY_CAP = 40;

export interface Batch {
  executionId: string;
  from: number;
  to: number;
  concurrency: number;
}

/**
 * Consecutive batches of [from, to): each as long as its tasks' worst-case history fits
 * BATCH_TASK_EVENT_BUDGET, at most BATCH_SIZE tasks (one task alone always fits: 20 retries of each
 * of the six types come to 2,664 events).
 */
function cutBatches(executionId: string, from: number, to: number, concurrency: number, cost: (index: number) => number): Batch[] {
  const out: Batch[] = [];
  let start = from;
  while (start < to) {
    let end = start;
    let events = 0;
    while (end < to && end - start < BATCH_SIZE && (end === start || events + cost(end) <= BATCH_TASK_EVENT_BUDGET)) {
      events += cost(end);
      end++;
    }
    out.push({ executionId, from: start, to: end, concurrency: Math.max(1, Math.min(concurrency, end - start)) });
    start = end;
  }
  return out;
}

export type PreparedExecution =
  | { executionId: string; batches: Batch[]; batchConcurrency: number }
  | { executionId: string; stages: { name: string; batches: Batch[] }[] };

/**
 * The batches a pattern machine runs. Parallel plans split maxConcurrency across batches that run
 * at once so that the sum never exceeds it; sequential ones run one batch at a time, one task at a
 * time; a pipeline stage runs all its tasks at once. A batch's length follows its tasks' worst-case
 * history (`tasks`: the task records, for their recovery overrides; a missing one counts with the
 * defaults).
 */
export function prepareBatches(
  execution: Pick<ExecutionRecord, 'executionId' | 'pattern' | 'maxConcurrency' | 'stages' | 'taskCount'>,
  tasks: readonly Pick<TaskRecord, 'index' | 'recovery'>[] = [],
): PreparedExecution {
  const { executionId } = execution;
  const byIndex = new Map(tasks.map((t) => [t.index, worstCaseTaskEvents(t)]));
  const defaultCost = worstCaseTaskEvents({});
  const cut = (from: number, to: number, concurrency: number) =>
    cutBatches(executionId, from, to, concurrency, (i) => byIndex.get(i) ?? defaultCost);
  switch (execution.pattern) {
    case 'sequential':
      return { executionId, batches: cut(0, execution.taskCount, 1), batchConcurrency: 1 };
    case 'parallel': {
      const limit = execution.maxConcurrency;
      const batches = cut(0, execution.taskCount, limit);
      const batchConcurrency = Math.max(1, Math.min(batches.length, Math.ceil(limit / MAP_CONCURRENCY_CAP)));
      const perBatch = Math.max(1, Math.floor(limit / batchConcurrency));
      for (const b of batches) b.concurrency = Math.max(1, Math.min(perBatch, b.to - b.from));
      return { executionId, batches, batchConcurrency };
    }
    case 'pipeline':
      return {
        executionId,
        stages: execution.stages.map((s) => ({ name: s.name, batches: cut(s.from, s.to, s.to - s.from) })),
      };
  }
}

/** Stage layout of a plan: task index ranges per stage. */
export function stageLayout(pattern: Pattern, stages: { name: string; count: number }[]): StageLayout[] {
  let from = 0;
  return stages.map((s) => {
    const layout = { name: pattern === 'pipeline' ? s.name : '', from, to: from + s.count };
    from += s.count;
    return layout;
  });
}

/** Shallow merge of the plan input with outputs of completed tasks, in task order. */
export function mergeOutputs(
  input: Record<string, unknown>,
  outputs: (Record<string, unknown> | undefined)[],
): Record<string, unknown> {
  let data = { ...input };
  for (const out of outputs) if (out) data = { ...data, ...out };
  return data;
}

export interface Outcome {
  status: Extract<ExecutionStatus, 'SUCCEEDED' | 'FAILED'>;
  /** Pipelines: the stage whose "stop" task failed. */
  result?: { status: 'completed' | 'failed'; stage?: string };
}

/** SUCCEEDED when no "stop" task failed, else FAILED; pipelines also name the failed stage. */
export function deriveOutcome(
  execution: Pick<ExecutionRecord, 'pattern' | 'stages'> & Partial<Pick<ExecutionRecord, 'stopping'>>,
  tasks: (Pick<TaskRecord, 'status' | 'failureStrategy' | 'stage'> & Partial<Pick<TaskRecord, 'taskId'>>)[],
): Outcome {
  // A task whose escalation said fail-execution ends the execution as a "stop" task would, whatever its failureStrategy.
  const escalated = execution.stopping?.escalated ? tasks.find((t) => t.taskId === execution.stopping!.taskId && t.status === 'failed') : undefined;
  const stopper = escalated ?? tasks.find((t) => t.status === 'failed' && t.failureStrategy === 'stop');
  const incomplete = tasks.find((t) => t.status !== 'completed' && t.status !== 'failed' && t.status !== 'skipped');
  const failed = stopper !== undefined || incomplete !== undefined;
  if (execution.pattern !== 'pipeline') return { status: failed ? 'FAILED' : 'SUCCEEDED' };
  if (!failed) return { status: 'SUCCEEDED', result: { status: 'completed' } };
  const stageIndex = (stopper ?? incomplete)!.stage;
  return { status: 'FAILED', result: { status: 'failed', stage: execution.stages[stageIndex]?.name } };
}

/** Indexes of the stages whose outputs make up `data`: all, or up to and including the failed one. */
export function stagesInData(execution: Pick<ExecutionRecord, 'stages' | 'result'>): number {
  if (execution.result?.status === 'failed' && execution.result.stage !== undefined) {
    return execution.stages.findIndex((s) => s.name === execution.result!.stage) + 1;
  }
  return execution.stages.length;
}
