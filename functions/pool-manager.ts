// Scheduled: sizes each agent type's pool to its queued work and to the plans just submitted (their
// demand hints), within its bounds, and replaces dead agents; then fails the tasks whose dispatches
// reached a dead-letter queue (core/dead-letters.ts).
import { recentDemand } from '#core/demand.ts';
import { deadLetters, executionStore, logger, poolManager, queueBacklog } from './lib/deps.ts';
import { lambdaHandler } from './lib/observability.ts';

export const handler = lambdaHandler(async () => {
  const backlog = queueBacklog();
  // Plans just submitted: agents for their tasks start now, not once the tasks are queued. A hint
  // that cannot be read leaves the round to the backlog alone.
  const demand = await recentDemand(executionStore(), Date.now()).catch((err: unknown) => {
    logger.warn('could not read the demand hints; sizing by the backlog alone', { error: err as Error });
    return {};
  });
  const result = await poolManager().reconcile((type) => backlog.of(type), demand);
  if (result.started.length || result.replaced.length || result.drained.length || result.yielded.length) logger.info('pool reconciled', { ...result });
  // The pool's work is done either way: a sweep that fails is logged and runs again next round.
  const swept = await deadLetters()
    .sweep()
    .catch((err: unknown) => {
      logger.warn('dead-letter sweep failed; next round tries again', { error: err as Error });
      return { failed: [], read: 0 };
    });
  if (swept.failed.length) logger.info('dead letters swept', { ...swept });
  return { ...result, deadLettered: swept.failed };
});
