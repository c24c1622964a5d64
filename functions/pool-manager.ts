// Scheduled: sizes each agent type's pool to its queued work, within its bounds, and replaces dead
// agents; then fails the tasks whose dispatches reached a dead-letter queue (core/dead-letters.ts).
import { deadLetters, logger, poolManager, queueBacklog } from './lib/deps.ts';
import { tracedHandler } from './lib/observability.ts';

export const handler = tracedHandler(async () => {
  const backlog = queueBacklog();
  const result = await poolManager().reconcile((type) => backlog.of(type));
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
