// The CloudWatch metrics sink writes one EMF document per metric, at once, in the stack's namespace.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cloudWatchMetricsSink } from '#core/aws/cloudwatch-metrics.ts';
import { METRIC } from '#core/metrics.ts';
import { localPowertools } from '../../local/layer.ts';

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

function captureStdout(): string[] {
  const lines: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  return lines;
}

describe('cloudWatchMetricsSink', () => {
  it('publishes each metric at once as EMF, with its dimensions and the service', () => {
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'XL/test-stack');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const lines = captureStdout();
    const sink = cloudWatchMetricsSink('xl-agent-coder');
    sink.add(METRIC.tasksFailed, 'Count', 1, { errorType: 'transient' });
    sink.add(METRIC.taskDuration, 'Milliseconds', 1234);
    const docs = lines.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(docs).toHaveLength(2);
    expect(docs[0]!._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: 'XL/test-stack', Metrics: [{ Name: 'TasksFailed', Unit: 'Count' }] });
    expect(docs[0]).toMatchObject({ TasksFailed: 1, errorType: 'transient', service: 'xl-agent-coder' });
    expect(docs[1]).toMatchObject({ TaskDuration: 1234, service: 'xl-agent-coder' });
    expect(docs[1]!._aws.CloudWatchMetrics[0].Metrics[0]).toEqual({ Name: 'TaskDuration', Unit: 'Milliseconds' });
  });

  it('writes nothing without a namespace (no stack to publish for)', () => {
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', '');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const lines = captureStdout();
    cloudWatchMetricsSink('xl-agent-coder').add(METRIC.tasksStarted, 'Count', 1);
    expect(lines.join('')).toBe('');
  });

  it('writes nothing when POWERTOOLS_METRICS_DISABLED is set (the local layer)', () => {
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'XL/test-stack');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    const lines = captureStdout();
    cloudWatchMetricsSink('xl-agent-coder').add(METRIC.tasksStarted, 'Count', 1);
    expect(lines.join('')).toBe('');
  });
});

describe('the local layer\'s Powertools settings', () => {
  it('keep metrics off unless asked for', () => {
    expect(localPowertools({})).toEqual({ POWERTOOLS_METRICS_DISABLED: 'true' });
    expect(localPowertools({ POWERTOOLS_METRICS_DISABLED: 'false' })).toEqual({ POWERTOOLS_METRICS_DISABLED: 'false' });
  });
});
