// MetricsSink over CloudWatch: EMF lines through Powertools Metrics, each metric published as it
// comes (singleMetric), since a worker has no invocation end to flush at. Lambda's and the agents'
// log drivers carry the lines to CloudWatch Logs, which extracts the metrics. Namespace:
// POWERTOOLS_METRICS_NAMESPACE (set per stack by the CDK app); POWERTOOLS_METRICS_DISABLED turns it
// off (the local layer does: it has no CloudWatch, and the lines would only fill its log).
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { type MetricsSink, type MetricUnit as Unit, noMetrics } from '../metrics.ts';

const UNITS: Record<Unit, (typeof MetricUnit)[keyof typeof MetricUnit]> = {
  Count: MetricUnit.Count,
  Milliseconds: MetricUnit.Milliseconds,
  None: MetricUnit.NoUnit,
};

export function cloudWatchMetricsSink(serviceName: string, onError: (err: unknown) => void = () => {}): MetricsSink {
  // No namespace, no stack to publish for (a worker or handler started by hand, a test).
  if (!process.env.POWERTOOLS_METRICS_NAMESPACE) return noMetrics;
  const metrics = new Metrics({ serviceName });
  return {
    add(name, unit, value, dimensions = {}) {
      try {
        const single = metrics.singleMetric();
        for (const [key, v] of Object.entries(dimensions)) single.addDimension(key, v);
        single.addMetric(name, UNITS[unit], value);
      } catch (err) {
        onError(err); // never fails the work it counts
      }
    },
  };
}
