// Scheduled: sizes each agent type's pool to its queued work, within its bounds, and replaces dead agents.
import middy from '@middy/core';
import { logger, poolManager, queueBacklog } from './lib/deps.ts';

export const handler = middy(async () => {
  const backlog = queueBacklog();
  const result = await poolManager().reconcile((type) => backlog.of(type));
  if (result.started.length || result.replaced.length || result.drained.length || result.yielded.length) logger.info('pool reconciled', { ...result });
  return result;
});
