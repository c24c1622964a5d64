// Records the ends that no state sees: a workflow that failed, timed out or was stopped.
// EventBridge delivers "Step Functions Execution Status Change" here (the local layer does too).
import middy from '@middy/core';
import type { EventBridgeEvent } from 'aws-lambda';
import { type StatusChange, recordWorkflowStatus } from '#core/workflow-status.ts';
import { executionStore, logger } from './lib/deps.ts';

export type { StatusChange };

async function run(event: EventBridgeEvent<'Step Functions Execution Status Change', StatusChange>): Promise<void> {
  const outcome = await recordWorkflowStatus(executionStore(), event.detail);
  if (outcome.kind === 'superseded') logger.info('status of a superseded workflow run ignored', { ...outcome, status: event.detail.status });
  if (outcome.kind === 'ended') logger.warn('execution ended by its workflow', { executionId: outcome.executionId, status: outcome.status, reason: outcome.message });
}

export const handler = middy(run);
