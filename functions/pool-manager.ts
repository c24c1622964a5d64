// Scheduled: keeps each agent type between its pool bounds and replaces dead agents.
import middy from '@middy/core';
import { logger, poolManager } from './lib/deps.ts';

export const handler = middy(async () => {
  const result = await poolManager().reconcile();
  if (result.started.length || result.replaced.length || result.drained.length) logger.info('pool reconciled', { ...result });
  return result;
});
