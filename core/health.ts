// Agent health as the design document grades it (HealthStatus: overall, metrics, issues), from what
// an agent knows of itself: its recent runs, its process, and what it found it can do at start.
// The health monitor acts on the grade (core/pool.ts HealthMonitor): an agent that stays
// unhealthy is replaced, and a type whose agents keep dying trips its circuit breaker.
import type { HealthIssue, HealthMetrics } from './records.ts';

export type { HealthCheckType, HealthIssue } from './records.ts';

export interface HealthThresholds {
  /** Error rate over the recent runs at which the agent is degraded. */
  errorRateWarning: number;
  /** Fewer runs than this say nothing about the error rate. */
  minRuns: number;
  /** Resident memory, percent of the machine's (the container's on Fargate). */
  memoryWarning: number;
  memoryCritical: number;
}

export const DEFAULT_HEALTH_THRESHOLDS: HealthThresholds = {
  errorRateWarning: 0.5,
  minRuns: 4,
  memoryWarning: 80,
  memoryCritical: 95,
};

/**
 * overall: unhealthy with a critical issue, degraded with a warning, else healthy. Capability
 * issues are found once, at start (what the agent cannot do); the rest come from the metrics.
 */
export function assessHealth(
  metrics: HealthMetrics,
  runs: number,
  capabilityIssues: readonly HealthIssue[] = [],
  t: HealthThresholds = DEFAULT_HEALTH_THRESHOLDS,
): { overall: 'healthy' | 'degraded' | 'unhealthy'; issues: HealthIssue[] } {
  const issues: HealthIssue[] = [...capabilityIssues];
  // Only ever a warning: most failures are the tasks' own (a failing test, a refused push), and
  // another agent would fail them too. Replacing agents is for what is wrong with the agent.
  if (runs >= t.minRuns && metrics.errorRate >= t.errorRateWarning) {
    issues.push({ check: 'performance', severity: 'warning', message: `${Math.round(metrics.errorRate * 100)}% of the last ${runs} tasks failed` });
  }
  if (metrics.memory >= t.memoryWarning) {
    issues.push({
      check: 'resource',
      severity: metrics.memory >= t.memoryCritical ? 'critical' : 'warning',
      message: `memory at ${metrics.memory}%`,
    });
  }
  const overall = issues.some((i) => i.severity === 'critical') ? 'unhealthy' : issues.length ? 'degraded' : 'healthy';
  return { overall, issues };
}
