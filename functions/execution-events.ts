// Records the ends that no state sees: a workflow that failed, timed out or was stopped.
// EventBridge delivers "Step Functions Execution Status Change" here (the local layer does too).
import middy from '@middy/core';
import type { EventBridgeEvent } from 'aws-lambda';
import type { ExecutionStatus } from '#core/records.ts';
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
  // Only pattern executions are named after an execution id; batch children end through their parent.
  const execution = await executions.getExecution(name);
  if (!execution) return;
  const message =
    status === 'ABORTED'
      ? (execution.message ?? 'the workflow was stopped')
      : `${error ?? status}: ${causeMessage({ Error: error ?? undefined, Cause: cause ?? undefined })}`;
  const changed = await executions.setStatus(name, status as ExecutionStatus, {
    from: ['PENDING', 'RUNNING'],
    stoppedAt: new Date(stopDate ?? Date.now()).toISOString(),
    message,
  });
  if (changed || status === 'ABORTED') await executions.cancelTasks(name, message);
  if (changed) logger.warn('execution ended by its workflow', { executionId: name, status, reason: message });
}

export const handler = middy(run);
