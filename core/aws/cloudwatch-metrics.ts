// MetricsSink over CloudWatch: one embedded metric format (EMF) line per metric, written as it comes,
// since a worker has no invocation end to flush at. Lambda's and the agents' log drivers carry the
// lines to CloudWatch Logs, which extracts the metrics. Namespace: POWERTOOLS_METRICS_NAMESPACE (set
// per stack by the CDK app); POWERTOOLS_METRICS_DISABLED turns it off (the local layer does: it has
// no CloudWatch, and the lines would only fill its log).
//
// The lines are those Powertools Metrics' singleMetric() wrote before (same keys, same order, same
// settings read from the same variables), written here in a few lines: the library was about 10 KB of
// each Lambda bundle that counts something. EMF: CloudWatch user guide, "Specification: Embedded
// metric format" (a root `_aws` with Timestamp in epoch milliseconds and one CloudWatchMetrics
// directive; at most 30 dimensions in a set; the values as top-level members).
import { type MetricsSink, type MetricUnit, noMetrics } from '../metrics.ts';

/** The dimension every metric carries, as Powertools named it (the alarms and dashboard read it). */
const SERVICE_DIMENSION = 'service';
/** EMF allows 30 dimensions in a set: `service` and 29 more. */
const MAX_DIMENSIONS = 29;

/** A boolean variable as Powertools read it (1/y/yes/t/true/on, 0/n/no/f/false/off); undefined when unset. */
function booleanEnv(name: string): boolean | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = raw.trim().toLowerCase();
  if (['1', 'y', 'yes', 't', 'true', 'on'].includes(value)) return true;
  if (['0', 'n', 'no', 'f', 'false', 'off'].includes(value)) return false;
  throw new Error(`${name} must be a boolean (true or false), got "${raw}"`);
}

/** Off by POWERTOOLS_METRICS_DISABLED, or, when that is unset, by POWERTOOLS_DEV (Powertools' rule). */
function metricsDisabled(): boolean {
  return booleanEnv('POWERTOOLS_METRICS_DISABLED') ?? booleanEnv('POWERTOOLS_DEV') ?? false;
}

export function cloudWatchMetricsSink(serviceName: string, onError: (err: unknown) => void = () => {}): MetricsSink {
  const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE;
  // No namespace, no stack to publish for (a worker or handler started by hand, a test).
  if (!namespace || metricsDisabled()) return noMetrics;
  return {
    add(name, unit: MetricUnit, value, dimensions = {}) {
      try {
        const extra = Object.entries(dimensions).filter(([, v]) => typeof v === 'string' && v !== '');
        if (extra.length > MAX_DIMENSIONS) throw new RangeError(`${name}: at most ${MAX_DIMENSIONS} dimensions besides ${SERVICE_DIMENSION}, got ${extra.length}`);
        const set = { [SERVICE_DIMENSION]: serviceName, ...Object.fromEntries(extra) };
        const line = {
          _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [Object.keys(set)], Metrics: [{ Name: name, Unit: unit }] }] },
          ...set,
          [name]: value,
        };
        // Straight to stdout, as Powertools did: Lambda's console would wrap the line in its JSON log format.
        process.stdout.write(`${JSON.stringify(line)}\n`);
      } catch (err) {
        onError(err); // never fails the work it counts
      }
    },
  };
}
