// End-to-end: the pool follows the work (the design's dynamic sizing). A type with no agents at
// rest gets agents when its tasks are queued, up to its max, and gives them back once idle; under a
// burst, the resource report (GET /pool/report, xl pool --report) names it as the bottleneck.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Layer, ROOT, peakOverlap, removeStateDir, startLayer, waitFor, waitForEnd } from './harness.ts';

let layer: Layer;

beforeAll(async () => {
  layer = await startLayer({
    env: {
      XL_POOL: 'documenter=0..3,coder=0..0,tester=0..0,reviewer=0..0',
      XL_HEARTBEAT_SECONDS: '3', // a pool round each second
      XL_POOL_IDLE_SECONDS: '2',
    },
  });
});
afterAll(async () => {
  await layer?.stop();
  if (layer) await removeStateDir(layer.stateDir);
});

const liveDocumenters = async () =>
  ((await layer.request('GET', '/agents')).body.items as { agentType: string; status: string }[]).filter(
    (a) => a.agentType === 'documenter' && ['starting', 'idle', 'busy'].includes(a.status),
  ).length;

it('starts agents for queued tasks up to max, runs them in parallel, and drains the idle ones afterwards', async () => {
  expect(await liveDocumenters()).toBe(0);
  const res = await layer.request('POST', '/executions', {
    pattern: 'parallel',
    maxConcurrency: 6,
    tasks: Array.from({ length: 6 }, (_, i) => ({ id: `d${i}`, agentType: 'documenter', command: `sleep 1.5; echo '{"i":${i}}'` })),
  });
  expect(res.status).toBe(202);
  const ex = await waitForEnd(layer, res.body.executionId, 90_000);
  expect(ex.status).toBe('SUCCEEDED');
  // Three agents (max), one task each at a time: never more than three tasks at once, and three did overlap.
  const intervals = ex.tasks.map((t: any) => ({ start: Date.parse(t.startedAt), end: Date.parse(t.finishedAt) }));
  expect(peakOverlap(intervals)).toBe(3);
  expect(new Set(ex.tasks.map((t: any) => t.agentId)).size).toBe(3);

  // Idle for XL_POOL_IDLE_SECONDS, then drained back to min (0).
  await waitFor('the documenters to be drained', async () => ((await liveDocumenters()) === 0 ? true : undefined), 30_000);
  const pool = (await layer.request('GET', '/pool')).body.items.find((r: any) => r.agentType === 'documenter');
  expect(pool).toMatchObject({ min: 0, max: 3, desired: 0, running: 0, backlog: 0 });
});

it("reports each agent's resources in its health, the commands it runs included, with a short history", async () => {
  const res = await layer.request('POST', '/executions', {
    pattern: 'sequential',
    tasks: [{ id: 'hold', agentType: 'documenter', command: `python3 -c "b = bytearray(96 * 2 ** 20); import time; time.sleep(8)"; echo '{}'` }],
  });
  expect(res.status).toBe(202);
  // While the task runs, its agent's memory counts the command's 96 MB.
  const agent = await waitFor('a documenter reporting the command\'s memory', async () => {
    const items = (await layer.request('GET', '/agents')).body.items as any[];
    return items.find((a) => a.agentType === 'documenter' && a.status === 'busy' && a.health.resources?.memoryBytes > 96 * 2 ** 20 && a.health.history?.length >= 2);
  }, 60_000);
  expect(agent.health.resources).toMatchObject({ source: 'proc', cpuPercent: expect.any(Number), memoryLimitBytes: expect.any(Number), disk: expect.any(Object) });
  expect(agent.health.metrics.memory).toBeGreaterThan(0);
  const ex = await waitForEnd(layer, res.body.executionId, 60_000);
  expect(ex.status).toBe('SUCCEEDED');
});

it('xl pool --report names the saturated type under a burst: its agents all busy at max, tasks waiting', async () => {
  const res = await layer.request('POST', '/executions', {
    pattern: 'parallel',
    maxConcurrency: 9,
    tasks: Array.from({ length: 9 }, (_, i) => ({ id: `burst${i}`, agentType: 'documenter', command: `sleep 5; echo '{"i":${i}}'` })),
  });
  expect(res.status).toBe(202);
  // The pool grows to its max (3); six tasks wait behind the three running.
  const saturated = await waitFor('the documenters to be all busy with tasks waiting', async () => {
    const report = (await layer.request('GET', '/pool/report')).body;
    const row = report.types.find((t: any) => t.agentType === 'documenter');
    return row.agents.busy === 3 && row.saturation === 1 && row.waiting > 0 ? report : undefined;
  }, 60_000);
  expect(saturated.bottleneck).toMatch(/^documenter is the bottleneck: all 3 slots of its 3 agents \(its max\) are busy with \d+ tasks? waiting/);

  const xl = await new Promise<{ code: number | null; stdout: string }>((ok) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/xl.ts'), 'pool', '--report', '--target', '5', '--endpoint', layer.url], { cwd: ROOT });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.once('exit', (code) => ok({ code, stdout }));
  });
  expect(xl.code).toBe(0);
  expect(xl.stdout).toMatch(/^documenter\s+3\s/m);
  expect(xl.stdout).toMatch(/needed \(5 min\)/);
  // The burst may have moved on between the two reads; the report still names the same type.
  expect(xl.stdout).toMatch(/^documenter is the bottleneck/m);

  const ex = await waitForEnd(layer, res.body.executionId, 90_000);
  expect(ex.status).toBe('SUCCEEDED');
  // The hour's waits are on record now: the queued tasks waited for an agent to free up.
  const after = (await layer.request('GET', '/pool/report')).body.types.find((t: any) => t.agentType === 'documenter');
  expect(after.queueWait.samples).toBeGreaterThanOrEqual(9);
  expect(after.queueWait.p95Seconds).toBeGreaterThan(4);
  expect(after).toMatchObject({ durationObserved: true, waiting: 0 });
});
