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

  it('writes the line Powertools Metrics wrote, key for key (the dashboard and alarms read it)', () => {
    vi.useFakeTimers({ now: 1_796_600_000_000 });
    try {
      vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'XL/test-stack');
      vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
      const lines = captureStdout();
      cloudWatchMetricsSink('xl-steps').add(METRIC.tasksFailed, 'Count', 1, { errorType: 'transient', agentType: 'coder', empty: '' });
      expect(lines).toEqual([
        '{"_aws":{"Timestamp":1796600000000,"CloudWatchMetrics":[{"Namespace":"XL/test-stack","Dimensions":[["service","errorType","agentType"]],' +
          '"Metrics":[{"Name":"TasksFailed","Unit":"Count"}]}]},"service":"xl-steps","errorType":"transient","agentType":"coder","TasksFailed":1}\n',
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('hands a metric it cannot write to onError instead of throwing (EMF: 30 dimensions at most)', () => {
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'XL/test-stack');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    const lines = captureStdout();
    const errors: unknown[] = [];
    const dimensions = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`d${i}`, 'x']));
    cloudWatchMetricsSink('xl-steps', (err) => errors.push(err)).add(METRIC.agents, 'Count', 1, dimensions);
    expect(lines).toEqual([]);
    expect(String(errors[0])).toContain('Agents: at most 29 dimensions besides service, got 30');
  });

  it('is off in Powertools\' development mode unless POWERTOOLS_METRICS_DISABLED says otherwise', () => {
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'XL/test-stack');
    vi.stubEnv('POWERTOOLS_DEV', 'true');
    const lines = captureStdout();
    cloudWatchMetricsSink('xl-steps').add(METRIC.tasksStarted, 'Count', 1);
    expect(lines).toEqual([]);
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'no');
    cloudWatchMetricsSink('xl-steps').add(METRIC.tasksStarted, 'Count', 1);
    expect(lines).toHaveLength(1);
  });

  it('refuses a POWERTOOLS_METRICS_DISABLED that is not a boolean, naming it', () => {
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'XL/test-stack');
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'maybe');
    expect(() => cloudWatchMetricsSink('xl-steps')).toThrow('POWERTOOLS_METRICS_DISABLED must be a boolean (true or false), got "maybe"');
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
