// End-to-end: what happens when agents die, tasks wait, and the layer itself stops and starts.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, isAlive, removeStateDir, startLayer, waitFor, waitForEnd, scratchDir } from './harness.ts';

const HEARTBEAT_SECONDS = 3;

describe('agents and queues', () => {
  let layer: Layer;
  beforeAll(async () => {
    layer = await startLayer({ env: { XL_POOL: 'coder=0..4,tester=1..1,reviewer=1..1', XL_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) } });
  });
  afterAll(async () => {
    await layer?.stop();
    if (layer) await removeStateDir(layer.stateDir);
  });

  it('never fails a task for waiting in its queue longer than the heartbeat timeout', async () => {
    // One tester agent, three 2-second tasks at once: the last waits about 4 s, past the 3 s span.
    const res = await layer.request('POST', '/executions', {
      pattern: 'parallel',
      maxConcurrency: 3,
      tasks: [0, 1, 2].map((i) => ({ id: `w${i}`, agentType: 'tester', command: `sleep 2; echo '{"i":${i}}'` })),
    });
    const ex = await waitForEnd(layer, res.body.executionId);
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks.map((t: any) => t.attempts)).toEqual([1, 1, 1]);
    const starts = ex.tasks.map((t: any) => Date.parse(t.startedAt)).sort();
    expect(starts[2] - starts[0]).toBeGreaterThan(HEARTBEAT_SECONDS * 1000);
  });

  it('takes high-priority tasks before normal ones waiting longer', async () => {
    // One tester agent, kept busy by a blocker while normal, low and then high tasks queue up.
    const blocker = await layer.request('POST', '/executions', { pattern: 'sequential', tasks: [{ id: 'blocker', agentType: 'tester', command: 'sleep 2' }] });
    await waitFor('the blocker to run', async () => (await layer.request('GET', `/executions/${blocker.body.executionId}`)).body.tasks[0].status === 'running');
    const quick = (id: string, priority: string) => ({ id, agentType: 'tester', priority, command: `echo '{"id":"${id}"}'` });
    const res = await layer.request('POST', '/executions', {
      pattern: 'parallel',
      maxConcurrency: 10,
      tasks: [quick('n1', 'normal'), quick('l1', 'low'), quick('n2', 'normal'), quick('h1', 'high')],
    });
    const ex = await waitForEnd(layer, res.body.executionId);
    expect(ex.status).toBe('SUCCEEDED');
    const started = Object.fromEntries(ex.tasks.map((t: any) => [t.taskId, Date.parse(t.startedAt)]));
    const blockerEnd = Date.parse((await waitForEnd(layer, blocker.body.executionId)).tasks[0].finishedAt);
    expect(started.h1).toBeGreaterThanOrEqual(blockerEnd);
    expect(started.h1).toBeLessThan(Math.min(started.n1, started.n2));
    expect(Math.max(started.n1, started.n2)).toBeLessThan(started.l1);
  });

  it('finishes a killed agent\'s task on another agent and leaves no process of the first run', async () => {
    const dir = scratchDir('xl-death-');
    const command = `echo $$ >> ${dir}/shells; if [ "$XL_ATTEMPT" = 1 ]; then sleep 120 & echo $! > ${dir}/sleeper; wait; fi; echo '{"finished":true}'`;
    const res = await layer.request('POST', '/executions', { pattern: 'sequential', tasks: [{ id: 'victim', agentType: 'reviewer', command }] });
    const running = await waitFor('the task to run', async () => {
      const ex = (await layer.request('GET', `/executions/${res.body.executionId}`)).body;
      const t = ex.tasks[0];
      return t.status === 'running' && t.agentId ? t : undefined;
    });
    await waitFor('the sleeper', async () => { try { return readFileSync(join(dir, 'sleeper'), 'utf8').trim() || undefined; } catch { return undefined; } });
    const agent = (await layer.request('GET', '/agents')).body.items.find((a: any) => a.agentId === running.agentId);
    const firstShell = Number(readFileSync(join(dir, 'shells'), 'utf8').trim().split('\n')[0]);
    const sleeper = Number(readFileSync(join(dir, 'sleeper'), 'utf8').trim());
    process.kill(agent.runtime.pid, 'SIGKILL');

    const ex = await waitForEnd(layer, res.body.executionId, 60_000);
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks[0]).toMatchObject({ status: 'completed', output: { finished: true } });
    expect(ex.tasks[0].attempts).toBe(2);
    expect(ex.tasks[0].agentId).not.toBe(running.agentId);
    expect(isAlive(firstShell)).toBe(false);
    expect(isAlive(sleeper)).toBe(false);
    // The pool manager replaced the dead agent: it is no longer live, and the type is back at its minimum.
    const agents = (await layer.request('GET', '/agents')).body.items;
    expect(agents.find((a: any) => a.agentId === running.agentId).status).toMatch(/unhealthy|terminated/);
    expect(agents.filter((a: any) => a.agentType === 'reviewer' && ['starting', 'idle', 'busy'].includes(a.status))).toHaveLength(1);
  });
});

describe('restart and shutdown', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'xl-restart-'));
  afterAll(async () => removeStateDir(stateDir));

  it('keeps finished executions across a restart and resumes the ones that were running', async () => {
    const env = { XL_POOL: 'coder=1..1,tester=0..1,reviewer=0..1', XL_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) };
    let layer = await startLayer({ stateDir, env });
    const done = await layer.request('POST', '/executions', { pattern: 'sequential', tasks: [{ id: 'quick', agentType: 'coder', command: `echo '{"v":42}'` }] });
    await waitForEnd(layer, done.body.executionId);
    // Its first attempt outlasts the agent's grace period: the stop hands it back.
    const command = `if [ "$XL_ATTEMPT" = 1 ]; then sleep 300; fi; echo '{"resumed":true}'`;
    const long = await layer.request('POST', '/executions', { pattern: 'sequential', tasks: [{ id: 'slow', agentType: 'coder', command }] });
    await waitFor('the slow task to run', async () => (await layer.request('GET', `/executions/${long.body.executionId}`)).body.tasks[0].status === 'running');

    const stopped = await layer.stop();
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(15_000);

    layer = await startLayer({ stateDir, env });
    try {
      const kept = (await layer.request('GET', `/executions/${done.body.executionId}`)).body;
      expect(kept).toMatchObject({ status: 'SUCCEEDED', tasks: [{ taskId: 'quick', status: 'completed', output: { v: 42 } }] });
      const resumed = await waitForEnd(layer, long.body.executionId, 30_000);
      expect(resumed).toMatchObject({ status: 'SUCCEEDED', tasks: [{ taskId: 'slow', status: 'completed', attempts: 2, output: { resumed: true } }] });
    } finally {
      await layer.stop();
    }
  }, 120_000);
});

describe('the layer killed outright', () => {
  it('leaves no agent and no command running behind it', async () => {
    const layer = await startLayer({ env: { XL_POOL: 'coder=2..2,tester=0..1,reviewer=0..1', XL_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS) } });
    const dir = scratchDir('xl-orphans-');
    try {
      const res = await layer.request('POST', '/executions', {
        pattern: 'sequential',
        tasks: [{ id: 'long', agentType: 'coder', command: `sleep 120 & echo $! > ${dir}/sleeper; wait` }],
      });
      expect(res.status).toBe(202);
      const sleeper = await waitFor('the command to run', async () => {
        try {
          return Number(readFileSync(join(dir, 'sleeper'), 'utf8').trim()) || undefined;
        } catch {
          return undefined;
        }
      });
      const agents = (await layer.request('GET', '/agents')).body.items.filter((a: any) => a.status !== 'terminated');
      expect(agents.length).toBeGreaterThanOrEqual(2);
      layer.process.kill('SIGKILL');
      await waitFor('agents and commands to be gone', async () => agents.every((a: any) => !isAlive(a.runtime.pid)) && !isAlive(sleeper), 15_000);
    } finally {
      await removeStateDir(layer.stateDir);
    }
  });
});
