// The Lambda behind the state machines' Prepare, Gate, Recover and Finalize states.
import { stepError } from '#core/step-errors.ts';
import type { RecoverResult, TaskRef } from '#core/steps.ts';
import { executionSteps, logger } from './lib/deps.ts';
import { lambdaHandler } from './lib/observability.ts';

export type StepEvent =
  | { step: 'prepare'; executionId: string }
  | ({ step: 'gate' } & TaskRef)
  | ({ step: 'recover'; state?: Record<string, unknown> } & TaskRef)
  | { step: 'finalize'; executionId: string; runName?: string };

async function run(event: StepEvent): Promise<unknown> {
  try {
    return await runStep(event);
  } catch (err) {
    // Named `transient` or `permanent` for the state machine's Retry and Catch (core/step-errors.ts).
    const named = stepError(event.step ?? 'step', err);
    // The ids on the line itself: the local layer runs concurrent invocations on one logger.
    const ids = { executionId: event.executionId, ...('taskIndex' in event ? { taskIndex: event.taskIndex } : {}) };
    logger.warn('step failed', { step: event.step, ...ids, error: named.name, message: named.message });
    throw named;
  }
}

async function runStep(event: StepEvent): Promise<unknown> {
  const steps = executionSteps();
  switch (event.step) {
    case 'prepare':
      return steps.prepare(event);
    case 'gate':
      return steps.gate(event);
    case 'recover': {
      // The state machine passes its whole iteration state (ids, gate result, caught failure).
      const state = { ...(event.state as object | undefined), executionId: event.executionId, taskIndex: event.taskIndex };
      const result: RecoverResult = await steps.recover(state);
      if (result.action === 'done') logger.debug('task finished after recovery', { ...result });
      return result;
    }
    case 'finalize':
      return steps.finalize(event);
    default:
      throw Object.assign(new Error(`unknown step ${(event as { step?: string }).step}`), { name: 'permanent' });
  }
}

export const handler = lambdaHandler(run);
