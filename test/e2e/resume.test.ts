// End-to-end: the local layer stopped mid-plan (SIGKILL or SIGTERM) and started again on the same
// state dir resumes its executions; a failed execution is redriven. Each command appends its task id
// to a side-effect file, so that runs are counted outside the layer's own records.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { type Layer, ROOT, isAlive, removeStateDir, runCounts, scratchDir, startLayer, waitFor, waitForEnd } from './harness.ts';

/** Two layer starts (synth included), a crash and the rest of the plan. */
const TIMEOUT = 180_000;
const env = { XL_POOL: 'coder=2..2,tester=0..1,reviewer=0..1', XL_HEARTBEAT_SECONDS: '3' };

/** A command task that records each run; `hang` makes its first attempt run until it is killed. */
function task(dir: string, id: string, opts: { hang?: boolean; output?: string } = {}) {
  const hang = opts.hang ? `if [ "$XL_ATTEMPT" = 1 ]; then sleep 300 & echo $! > ${dir}/${id}.sleeper; wait; fi; ` : '';
  return { id, agentType: 'coder', command: `echo ${id} >> ${dir}/runs; ${hang}${opts.output ?? `echo '{"${id}":true}'`}` };
}

const stateDirs: string[] = [];
afterAll(async () => {
  for (const dir of stateDirs) await removeStateDir(dir);
});

/** Submits the plan, waits until `hung` tasks hang (and the tasks before them have run), stops the layer as told, and starts it again. */
async function interrupt(plan: object, dir: string, hung: string[], how: 'kill' | 'stop'): Promise<{ layer: Layer; executionId: string; sleepers: number[] }> {
  const stateDir = mkdtempSync(join(tmpdir(), 'xl-resume-'));
  stateDirs.push(stateDir);
  let layer = await startLayer({ stateDir, env });
  const res = await layer.request('POST', '/executions', plan);
  expect(res.status).toBe(202);
  const sleepers = await waitFor(`${hung.join(', ')} to hang`, async () => {
    const pids = hung.map((id) => (existsSync(join(dir, `${id}.sleeper`)) ? Number(readFileSync(join(dir, `${id}.sleeper`), 'utf8').trim()) : 0));
    return pids.every((p) => p > 0) ? pids : undefined;
  });
  if (how === 'kill') await layer.kill();
  else expect((await layer.stop()).code).toBe(0);
  layer = await startLayer({ stateDir, env });
  return { layer, executionId: res.body.executionId, sleepers };
}

describe('the local layer killed mid-plan and started again', () => {
  it('finishes a sequential plan, running again only the task that was running', async () => {
    const dir = scratchDir('xl-resume-seq-');
    const plan = { pattern: 'sequential', tasks: [task(dir, 's0'), task(dir, 's1'), task(dir, 's2', { hang: true }), task(dir, 's3')] };
    const { layer, executionId, sleepers } = await interrupt(plan, dir, ['s2'], 'kill');
    try {
      const ex = await waitForEnd(layer, executionId, 60_000);
      expect(ex.status).toBe('SUCCEEDED');
      expect(ex.tasks.map((t: any) => [t.taskId, t.status])).toEqual([['s0', 'completed'], ['s1', 'completed'], ['s2', 'completed'], ['s3', 'completed']]);
      expect(ex.tasks.map((t: any) => t.output)).toEqual([{ s0: true }, { s1: true }, { s2: true }, { s3: true }]);
      expect(runCounts(join(dir, 'runs'))).toEqual({ s0: 1, s1: 1, s2: 2, s3: 1 });
      expect(ex.tasks[2].attempts).toBe(2);
      expect(ex).toMatchObject({ workflowRun: 1, resumedAt: expect.any(String) });
      // The earlier run's command did not outlive it.
      expect(isAlive(sleepers[0]!)).toBe(false);
    } finally {
      await layer.stop();
    }
  }, TIMEOUT);

  it('finishes a parallel plan, running again only the tasks that were running', async () => {
    const dir = scratchDir('xl-resume-par-');
    const ids = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];
    const plan = { pattern: 'parallel', maxConcurrency: 2, tasks: ids.map((id) => task(dir, id, { hang: id === 'p2' || id === 'p3' })) };
    const { layer, executionId } = await interrupt(plan, dir, ['p2', 'p3'], 'kill');
    try {
      const ex = await waitForEnd(layer, executionId, 60_000);
      expect(ex.status).toBe('SUCCEEDED');
      expect(ex.tasks.every((t: any) => t.status === 'completed')).toBe(true);
      expect(runCounts(join(dir, 'runs'))).toEqual({ p0: 1, p1: 1, p2: 2, p3: 2, p4: 1, p5: 1 });
    } finally {
      await layer.stop();
    }
  }, TIMEOUT);

  it('finishes a pipeline plan with the earlier stages\' recorded outputs as its data', async () => {
    const dir = scratchDir('xl-resume-pipe-');
    const plan = {
      pattern: 'pipeline',
      input: { base: 1 },
      stages: [
        { name: 'first', tasks: [task(dir, 'a', { output: `echo '{"x":1}'` })] },
        { name: 'second', tasks: [task(dir, 'b', { hang: true, output: `echo '{"y":2}'` })] },
        { name: 'third', tasks: [task(dir, 'c', { output: `printf '{"seen":%s}\\n' "$XL_INPUT"` })] },
      ],
    };
    const { layer, executionId } = await interrupt(plan, dir, ['b'], 'kill');
    try {
      const ex = await waitForEnd(layer, executionId, 60_000);
      expect(ex.status).toBe('SUCCEEDED');
      expect(ex.tasks[2].output.seen).toMatchObject({ base: 1, x: 1, y: 2 });
      expect(ex.result).toMatchObject({ status: 'completed', data: { base: 1, x: 1, y: 2 } });
      expect(runCounts(join(dir, 'runs'))).toEqual({ a: 1, b: 2, c: 1 });
    } finally {
      await layer.stop();
    }
  }, TIMEOUT);
});

// The reliability suite's large case (a 200-task parallel plan killed mid-run): XL_E2E_RESUME_TASKS=200.
const MANY = Number(process.env.XL_E2E_RESUME_TASKS ?? 0);
describe.skipIf(!MANY)(`a parallel plan of ${MANY} tasks killed mid-run`, () => {
  it('finishes with every task run, and none that had completed run again', async () => {
    const dir = scratchDir('xl-resume-many-');
    const stateDir = mkdtempSync(join(tmpdir(), 'xl-resume-many-state-'));
    stateDirs.push(stateDir);
    const many = { ...env, XL_POOL: 'coder=2..2,tester=0..1,reviewer=0..1', XL_MAX_CONCURRENT_TASKS: 'coder=4' };
    let layer = await startLayer({ stateDir, env: many });
    const ids = Array.from({ length: MANY }, (_, i) => `m${i}`);
    const plan = { pattern: 'parallel', maxConcurrency: 8, tasks: ids.map((id) => ({ id, agentType: 'coder', command: `echo ${id} >> ${dir}/runs; sleep 0.2; echo '{}'` })) };
    const res = await layer.request('POST', '/executions', plan);
    await waitFor('a third of the tasks to run', async () => Object.keys(runCounts(join(dir, 'runs'))).length >= MANY / 3, 120_000);
    const before = (await layer.request('GET', `/executions/${res.body.executionId}`)).body;
    const completed = before.tasks.filter((t: any) => t.status === 'completed').map((t: any) => t.taskId);
    await layer.kill();
    layer = await startLayer({ stateDir, env: many });
    try {
      const ex = await waitForEnd(layer, res.body.executionId, 300_000);
      expect(ex.status).toBe('SUCCEEDED');
      const counts = runCounts(join(dir, 'runs'));
      expect(ids.filter((id) => !counts[id])).toEqual([]); // none lost
      expect(completed.filter((id: string) => counts[id] !== 1)).toEqual([]); // none that had completed run again
      // Only tasks that were running (at most maxConcurrency) run twice; never more.
      const twice = ids.filter((id) => counts[id]! > 1);
      expect(twice.length).toBeLessThanOrEqual(8);
      expect(ids.filter((id) => counts[id]! > 2)).toEqual([]);
    } finally {
      await layer.stop();
    }
  }, 600_000);
});

describe('the local layer stopped cleanly mid-plan and started again', () => {
  it('finishes the plan; the task that was handed back runs once more', async () => {
    const dir = scratchDir('xl-resume-term-');
    const plan = { pattern: 'sequential', tasks: [task(dir, 't0'), task(dir, 't1', { hang: true }), task(dir, 't2')] };
    const { layer, executionId } = await interrupt(plan, dir, ['t1'], 'stop');
    try {
      const ex = await waitForEnd(layer, executionId, 60_000);
      expect(ex.status).toBe('SUCCEEDED');
      expect(ex.message).toBeUndefined();
      expect(runCounts(join(dir, 'runs'))).toEqual({ t0: 1, t1: 2, t2: 1 });
    } finally {
      await layer.stop();
    }
  }, TIMEOUT);
});

describe('redrive', () => {
  it('re-runs only the failed and skipped tasks of a FAILED plan, and it succeeds once they pass', async () => {
    const dir = scratchDir('xl-redrive-');
    const stateDir = mkdtempSync(join(tmpdir(), 'xl-redrive-state-'));
    stateDirs.push(stateDir);
    const layer = await startLayer({ stateDir, env });
    try {
      const plan = {
        pattern: 'sequential',
        tasks: [task(dir, 'r0'), task(dir, 'r1', { output: `if [ ! -f ${dir}/fixed ]; then echo 'not yet' >&2; exit 1; fi; echo '{"r1":true}'` }), task(dir, 'r2')],
      };
      const res = await layer.request('POST', '/executions', plan);
      const failed = await waitForEnd(layer, res.body.executionId);
      expect(failed.status).toBe('FAILED');
      expect(failed.tasks.map((t: any) => t.status)).toEqual(['completed', 'failed', 'skipped']);

      writeFileSync(join(dir, 'fixed'), '');
      const redriven = await layer.request('POST', `/executions/${res.body.executionId}/redrive`);
      expect(redriven).toMatchObject({ status: 202, body: { executionId: res.body.executionId, status: 'RUNNING', workflowRun: 1, tasks: 2 } });
      // A second redrive while the first runs is refused.
      const again = await layer.request('POST', `/executions/${res.body.executionId}/redrive`);
      expect(again.status).toBe(409);
      expect(again.body.error.message).toMatch(/is RUNNING|is being redriven/); // before or after its run's Prepare

      const ex = await waitForEnd(layer, res.body.executionId);
      expect(ex).toMatchObject({ status: 'SUCCEEDED', workflowRun: 1, redrivenAt: expect.any(String) });
      expect(ex.tasks.map((t: any) => [t.taskId, t.status, t.attempts])).toEqual([['r0', 'completed', 1], ['r1', 'completed', 2], ['r2', 'completed', 1]]);
      expect(runCounts(join(dir, 'runs'))).toEqual({ r0: 1, r1: 2, r2: 1 });

      // Through the xl command: a SUCCEEDED execution is refused, with the reason.
      const xl = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/xl.ts'), 'redrive', res.body.executionId, '--endpoint', layer.url], { cwd: ROOT }).then(
        () => ({ code: 0, out: '' }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
      );
      expect(xl.code).toBe(1);
      expect(xl.out).toMatch(/409.*is SUCCEEDED: only a FAILED, TIMED_OUT, ABORTED execution can be redriven/s);
      expect((await layer.request('POST', '/executions/ex-nope/redrive')).status).toBe(404);
    } finally {
      await layer.stop();
    }
  }, TIMEOUT);
});
