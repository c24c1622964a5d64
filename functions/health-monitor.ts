// Scheduled: marks agents whose heartbeats stopped as unhealthy, for the pool manager to replace.
import middy from '@middy/core';
import { healthMonitor, logger } from './lib/deps.ts';

export const handler = middy(async () => {
  const result = await healthMonitor().check();
  if (result.unhealthy.length) logger.warn('agents stopped heartbeating', { ...result });
  return result;
});
