// The semantics of the three execution patterns (CONTRACT.md, "Semantics"), free of AWS:
// how a plan is cut into batches for the state machines, and how task results become the
// execution's status and result.
import type { Pattern } from './plan.ts';
import type { ExecutionRecord, ExecutionStatus, StageLayout, TaskRecord } from './records.ts';

/**
 * Tasks per TaskBatch child execution. A task costs about 14 history events, and each retry about
 * 15 more; 250 tasks leave room for every task to retry several times under the 25,000-event cap.
 */
export const BATCH_SIZE = 250;
/** Step Functions runs at most 40 inline Map iterations at once. */
export const MAP_CONCURRENCY_CAP = 40;

export interface Batch {
  executionId: string;
  from: number;
  to: number;
  concurrency: number;
}

function cut(executionId: string, from: number, to: number, concurrency: number): Batch[] {
  const out: Batch[] = [];
  for (let start = from; start < to; start += BATCH_SIZE) {
    const end = Math.min(to, start + BATCH_SIZE);
    out.push({ executionId, from: start, to: end, concurrency: Math.max(1, Math.min(concurrency, end - start)) });
  }
  return out;
}

export type PreparedExecution =
  | { executionId: string; batches: Batch[]; batchConcurrency: number }
  | { executionId: string; stages: { name: string; batches: Batch[] }[] };

/**
 * The batches a pattern machine runs. Parallel plans split maxConcurrency across batches that run
 * at once so that the sum never exceeds it; sequential ones run one batch at a time, one task at a
 * time; a pipeline stage runs all its tasks at once.
 */
export function prepareBatches(execution: Pick<ExecutionRecord, 'executionId' | 'pattern' | 'maxConcurrency' | 'stages' | 'taskCount'>): PreparedExecution {
  const { executionId } = execution;
  switch (execution.pattern) {
    case 'sequential':
      return { executionId, batches: cut(executionId, 0, execution.taskCount, 1), batchConcurrency: 1 };
    case 'parallel': {
      const limit = execution.maxConcurrency;
      const batches = cut(executionId, 0, execution.taskCount, limit);
      const batchConcurrency = Math.max(1, Math.min(batches.length, Math.ceil(limit / MAP_CONCURRENCY_CAP)));
      const perBatch = Math.max(1, Math.floor(limit / batchConcurrency));
      for (const b of batches) b.concurrency = Math.max(1, Math.min(perBatch, b.to - b.from));
      return { executionId, batches, batchConcurrency };
    }
    case 'pipeline':
      return {
        executionId,
        stages: execution.stages.map((s) => ({ name: s.name, batches: cut(executionId, s.from, s.to, s.to - s.from) })),
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
