// Records the ends that no state sees: a workflow that failed, timed out or was stopped.
// EventBridge delivers "Step Functions Execution Status Change" here (the local layer does too); an
// event this function fails to handle goes to its dead-letter queue. On a schedule (`{ reconcile:
// true }`) it drains that queue through the same logic and ends executions whose run has ended
// unrecorded (core/execution-events.ts).
import type { EventBridgeEvent } from 'aws-lambda';
import { recordWorkflowEnd, type StatusChange } from '#core/execution-events.ts';
import { eventLog, events, executionReconciler, executionStore, logger } from './lib/deps.ts';
import { lambdaHandler } from './lib/observability.ts';

export type { StatusChange };

export type ExecutionEventsInput = EventBridgeEvent<'Step Functions Execution Status Change', StatusChange> | { reconcile: true };

async function run(event: ExecutionEventsInput): Promise<unknown> {
  if ('reconcile' in event) {
    const result = await executionReconciler().reconcile();
    if (result.drained || result.kept || result.ended.length) logger.warn('reconciled execution ends', { ...result });
    return result;
  }
  await recordWorkflowEnd(executionStore(), event.detail, eventLog, events());
  return undefined;
}

export const handler = lambdaHandler(run);
