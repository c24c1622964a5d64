// What a workflow's end that no state sees (a failure, a timeout, a stop) does to its execution.
// Only the execution's current workflow run counts: a run superseded by a resume or a redrive (the
// local service reports the run that died with the layer as Local.LayerStopped) is ignored.
import type { ExecutionStore } from './aws/execution-store.ts';
import { type ExecutionRecord, type ExecutionStatus, parseWorkflowRunName } from './records.ts';
import { causeMessage } from './steps.ts';

/** The detail of a "Step Functions Execution Status Change" event, as far as it matters here. */
export interface StatusChange {
  executionArn: string;
  name: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
  stopDate?: number | null;
  error?: string | null;
  cause?: string | null;
}

export type StatusOutcome =
  | { kind: 'not-an-end' | 'not-an-execution' }
  | { kind: 'superseded'; executionId: string; run: number; current: number }
  | { kind: 'ended' | 'already-ended'; executionId: string; status: ExecutionStatus; message: string };

export async function recordWorkflowStatus(executions: ExecutionStore, change: StatusChange): Promise<StatusOutcome> {
  const { status, name, error, cause, stopDate } = change;
  if (status === 'RUNNING' || status === 'SUCCEEDED') return { kind: 'not-an-end' }; // Prepare and Finalize record those
  // Only pattern executions are named after an execution id (and run); batch children end through their parent.
  const found = await workflowRunOf(executions, name);
  if (!found) return { kind: 'not-an-execution' };
  const { execution, run } = found;
  const { executionId } = execution;
  const current = execution.workflowRun ?? 0;
  if (current !== run) return { kind: 'superseded', executionId, run, current };
  const message =
    status === 'ABORTED'
      ? (execution.message ?? 'the workflow was stopped')
      : `${error ?? status}: ${causeMessage({ Error: error ?? undefined, Cause: cause ?? undefined })}`;
  // Conditional on the run too: a resume or a redrive between the read and this write wins.
  const changed = await executions.setStatus(executionId, status, {
    from: ['PENDING', 'RUNNING'],
    stoppedAt: new Date(stopDate ?? Date.now()).toISOString(),
    message,
    run,
  });
  if (changed || status === 'ABORTED') await executions.cancelTasks(executionId, message);
  return { kind: changed ? 'ended' : 'already-ended', executionId, status, message };
}

/** The execution a workflow run's name belongs to: `<executionId>` is run 0, `<executionId>-r<n>` run n. */
async function workflowRunOf(executions: ExecutionStore, name: string): Promise<{ execution: ExecutionRecord; run: number } | undefined> {
  const first = await executions.getExecution(name);
  if (first) return { execution: first, run: 0 };
  const parsed = parseWorkflowRunName(name);
  const execution = parsed && (await executions.getExecution(parsed.executionId));
  return execution ? { execution, run: parsed!.run } : undefined;
}
