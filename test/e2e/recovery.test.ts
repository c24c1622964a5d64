// End-to-end: a task's RecoveryStrategy carried out by the synthesized state machines on the local
// layer, with worker processes: retries, the fallbacks and an escalation that ends the execution.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, ROOT, removeStateDir, startLayer, waitForEnd } from './harness.ts';

let layer: Layer;

beforeAll(async () => {
  layer = await startLayer({ env: { XL_POOL: 'coder=2..2,reviewer=1..1,architect=0..1,performance=0..1', XL_HEARTBEAT_SECONDS: '6' } });
});
afterAll(async () => {
  await layer?.stop();
  if (layer) await removeStateDir(layer.stateDir);
});

async function run(plan: object): Promise<any> {
  const res = await layer.request('POST', '/executions', plan);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return waitForEnd(layer, res.body.executionId, 90_000);
}

describe('recovery on the local layer', () => {
  it('runs examples/recovery.json to SUCCEEDED: a retry, another agent type, a default output and a skip', async () => {
    const plan = JSON.parse(readFileSync(join(ROOT, 'examples/recovery.json'), 'utf8'));
    const ex = await run({ ...plan, name: undefined });
    expect(ex.status).toBe('SUCCEEDED');
    const [flaky, design, lint, benchmark, report] = ex.tasks;
    expect(flaky).toMatchObject({ status: 'completed', attempts: 2, output: { flaky: 'passed on attempt 2' } });
    expect(flaky.attemptLog).toEqual([
      expect.objectContaining({ attempt: 1, status: 'failed', errorType: 'transient', source: 'command', message: 'the registry is busy', next: 'retry', delaySeconds: 1 }),
      expect.objectContaining({ attempt: 2, status: 'completed' }),
    ]);
    expect(design).toMatchObject({ status: 'completed', attempts: 2, fallbackFrom: 'coder', output: { designedBy: 'the fallback agent type' } });
    expect(design.attemptLog.map((e: any) => [e.agentType, e.status])).toEqual([['coder', 'failed'], ['architect', 'completed']]);
    expect(design.agentId).toMatch(/architect/);
    expect(lint).toMatchObject({ status: 'completed', output: { lint: 'not run' }, recoveredBy: { action: 'default-output', error: { type: 'permanent', source: 'command', message: 'the linter crashed' } } });
    expect(benchmark).toMatchObject({ status: 'skipped', skipReason: 'benchmarks are best effort', recoveredBy: { action: 'skip' } });
    expect(report).toMatchObject({ status: 'completed', output: { report: 'done' } });
  });

  it('ends the whole execution at once when a failed task escalates to fail-execution, whatever its failureStrategy', async () => {
    const started = Date.now();
    const ex = await run({
      pattern: 'parallel',
      maxConcurrency: 2,
      tasks: [
        { id: 'slow', agentType: 'coder', command: 'sleep 60; echo finished' },
        { id: 'broken', agentType: 'coder', command: 'sleep 1; exit 3', failureStrategy: 'continue', recovery: { permanent: { escalation: 'fail-execution' } } },
        { id: 'later', agentType: 'coder', command: 'echo never' },
      ],
    });
    expect(ex.status).toBe('FAILED');
    expect(ex.tasks.map((t: any) => [t.taskId, t.status])).toEqual([['slow', 'failed'], ['broken', 'failed'], ['later', 'skipped']]);
    expect(ex.tasks[0].error.message).toMatch(/fail-execution/);
    // The slow task was killed, not waited for (it sleeps 60 s).
    expect(Date.now() - started).toBeLessThan(45_000);
  });
});
