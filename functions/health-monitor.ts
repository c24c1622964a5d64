// Scheduled: marks agents whose heartbeats stopped, or that stay unhealthy by their own checks, as
// unhealthy, for the pool manager to replace.
import { healthMonitor, logger } from './lib/deps.ts';
import { lambdaHandler } from './lib/observability.ts';

export const handler = lambdaHandler(async () => {
  const result = await healthMonitor().check();
  if (result.unhealthy.length) logger.warn('agents found unhealthy', { ...result });
  return result;
});
