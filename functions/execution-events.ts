// Records the ends that no state sees: a workflow that failed, timed out or was stopped.
// EventBridge delivers "Step Functions Execution Status Change" here (the local layer does too).
// Only the execution's current workflow run counts: a run superseded by a resume or a redrive (the
// local service reports the run that died with the layer as Local.LayerStopped) is ignored.
import middy from '@middy/core';
import type { EventBridgeEvent } from 'aws-lambda';
import { type ExecutionRecord, type ExecutionStatus, parseWorkflowRunName } from '#core/records.ts';
import type { ExecutionStore } from '#core/aws/execution-store.ts';
import { causeMessage } from '#core/steps.ts';
import { executionStore, logger } from './lib/deps.ts';

export interface StatusChange {
  executionArn: string;
  name: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
  stopDate?: number | null;
  error?: string | null;
  cause?: string | null;
}

async function run(event: EventBridgeEvent<'Step Functions Execution Status Change', StatusChange>): Promise<void> {
  const { status, name, error, cause, stopDate } = event.detail;
  if (status === 'RUNNING' || status === 'SUCCEEDED') return; // Prepare and Finalize record those
  const executions = executionStore();
  // Only pattern executions are named after an execution id (and run); batch children end through their parent.
  const found = await workflowRun(executions, name);
  if (!found) return;
  const { execution, run } = found;
  if ((execution.workflowRun ?? 0) !== run) {
    logger.info('status of a superseded workflow run ignored', { executionId: execution.executionId, run, current: execution.workflowRun ?? 0, status });
    return;
  }
  const executionId = execution.executionId;
  const message =
    status === 'ABORTED'
      ? (execution.message ?? 'the workflow was stopped')
      : `${error ?? status}: ${causeMessage({ Error: error ?? undefined, Cause: cause ?? undefined })}`;
  const changed = await executions.setStatus(executionId, status as ExecutionStatus, {
    from: ['PENDING', 'RUNNING'],
    stoppedAt: new Date(stopDate ?? Date.now()).toISOString(),
    message,
    run,
  });
  if (changed || status === 'ABORTED') await executions.cancelTasks(executionId, message);
  if (changed) logger.warn('execution ended by its workflow', { executionId, status, reason: message });
}

/** The execution a workflow run's name belongs to: `<executionId>` is run 0, `<executionId>-r<n>` run n. */
async function workflowRun(executions: ExecutionStore, name: string): Promise<{ execution: ExecutionRecord; run: number } | undefined> {
  const first = await executions.getExecution(name);
  if (first) return { execution: first, run: 0 };
  const parsed = parseWorkflowRunName(name);
  const execution = parsed && (await executions.getExecution(parsed.executionId));
  return execution ? { execution, run: parsed!.run } : undefined;
}

export const handler = middy(run);
