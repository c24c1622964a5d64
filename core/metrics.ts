// The layer's CloudWatch metrics: one namespace per stack, the names each emitter uses and the
// dashboard and alarms read (infra/constructs/observability.ts). Emitters write them as EMF through
// Powertools Metrics, which adds a `service` dimension (POWERTOOLS_SERVICE_NAME) to every metric.

/** The namespace of a stack's metrics (POWERTOOLS_METRICS_NAMESPACE on functions and agents). */
export function metricsNamespace(stackName: string): string {
  return `XL/${stackName}`;
}

/** Metric names, and who knows the fact each one counts. */
export const METRIC = {
  /** Worker: a task run began (Count). */
  tasksStarted: 'TasksStarted',
  /** Worker: a task run succeeded (Count). */
  tasksCompleted: 'TasksCompleted',
  /** Worker: a task run failed (Count), dimension errorType (TaskError.type). */
  tasksFailed: 'TasksFailed',
  /** Recover step: a task was sent back for another attempt (Count). */
  retries: 'TaskRetries',
  /** Worker: from dispatch to claim (Milliseconds). */
  queueWait: 'QueueWait',
  /** Worker: a task run's wall time (Milliseconds). */
  taskDuration: 'TaskDuration',
  /** Worker: a task run's model cost (None; US dollars, as DriverResult's cost). */
  taskCost: 'TaskCost',
  /** Health monitor: agents per status (Count, a gauge per run), dimension status (AgentStatus). */
  agents: 'Agents',
  /** Health monitor: breakers open now (Count, a gauge per run). */
  breakersOpen: 'BreakersOpen',
  /** Gate or worker: a task completed from the result cache, with no run (Count). */
  cacheHits: 'CacheHits',
} as const;

/** Dimension names beside Powertools' `service`. */
export const METRIC_DIMENSION = {
  errorType: 'errorType',
  status: 'status',
} as const;

/** POWERTOOLS_SERVICE_NAME of the emitters whose metrics the alarms read by exact dimensions. */
export const METRIC_SERVICE = {
  steps: 'xl-steps',
  healthMonitor: 'xl-health-monitor',
  poolManager: 'xl-pool-manager',
  /** Agents are `xl-agent-<type>`: the dashboard sums them with a SEARCH expression. */
  agentPrefix: 'xl-agent-',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];
export type MetricUnit = 'Count' | 'Milliseconds' | 'None';

/**
 * Where emitters put their metrics: core/aws/cloudwatch-metrics.ts (Powertools Metrics, EMF, each
 * metric published as it comes, since a worker has no invocation end to flush at). The agents' EMF
 * lines go to stdout and the awslogs driver: CloudWatch Logs extracts EMF from PutLogEvents without
 * the `x-amzn-logs-format: json/emf` header (CloudWatch user guide, "Using the PutLogEvents API to
 * send manually-created embedded metric format logs").
 */
export interface MetricsSink {
  /** Never throws: a metric that cannot be written must not fail the work it counts. */
  add(name: MetricName, unit: MetricUnit, value: number, dimensions?: Readonly<Record<string, string>>): void;
}

/** Metrics dropped on the floor. */
export const noMetrics: MetricsSink = { add() {} };
