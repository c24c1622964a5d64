// The local layer with XL_RUNTIME=docker (`npm start` as a child process, test/e2e/harness.ts): the
// three patterns run on agents that are containers of the agent image, and their log lines reach
// `xl logs`; a container SIGKILLed mid-task loses nothing and its task runs to its end once; a
// container stopped mid-task (`docker stop`) hands its task back checkpointed and another agent
// resumes it; the pool takes a type from zero containers to its max and back; no container is left
// after the layer stops, or after it is SIGKILLed and started again on the same state dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAYER_LABEL, layerIdOf } from '../../local/docker-runtime.ts';
import { type Layer, removeStateDir, startLayer, waitFor, waitForEnd } from '../e2e/harness.ts';
import { cmd, patternTests, startHitServer } from './agents-shared.ts';
import { containersLabelled, docker } from './docker.ts';

const env = {
  XL_RUNTIME: 'docker',
  XL_POOL: 'coder=3..3,tester=0..3,reviewer=0..1',
  XL_HEARTBEAT_SECONDS: '6',
  // Testers drain soon after their work is done (the scaling test); coders stay at their min.
  XL_POOL_IDLE_SECONDS: '3',
  // Failures some tests cause on purpose must not open the coder breaker for the next.
  XL_BREAKER_POLICY: JSON.stringify({ 'agent:*': { failureThreshold: 1_000_000 } }),
};
// The layer synthesizes the app at start: slow on a loaded machine.
const START_TIMEOUT_MS = 240_000;
const ours = (layer: Layer) => containersLabelled(`${LAYER_LABEL}=${layerIdOf(layer.stateDir)}`);
/** After a failed test: what a layer on this state dir left goes, so that the next run starts clean. */
async function removeContainersOf(stateDir: string): Promise<void> {
  for (const c of await containersLabelled(`${LAYER_LABEL}=${layerIdOf(stateDir)}`)) await docker().getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
}

let layer: Layer;
let hitServer: Awaited<ReturnType<typeof startHitServer>>;
let hits: string[];
let report: (what: string) => string;

beforeAll(async () => {
  hitServer = await startHitServer();
  ({ hits, report } = hitServer);
  layer = await startLayer({ env, startTimeoutMs: START_TIMEOUT_MS });
});
afterAll(async () => {
  await layer?.stop();
  if (layer) await removeContainersOf(layer.stateDir);
  if (layer) await removeStateDir(layer.stateDir);
  hitServer?.close();
});

describe('agents in containers', () => {
  it('are containers of the agent image, labelled with their stack, type and id', async () => {
    const agents = await waitFor('three coder agents', async () => {
      const res = await layer.request('GET', '/agents');
      const live = res.body.items.filter((a: any) => a.agentType === 'coder' && a.status !== 'terminated');
      return live.length === 3 ? live : undefined;
    }, 60_000);
    const containers = await ours(layer);
    for (const a of agents) {
      expect(a.runtime).toEqual({ kind: 'docker', containerId: `xl-${a.agentId}` });
      const c = containers.find((x) => x.Names.includes(`/xl-${a.agentId}`));
      expect(c, a.agentId).toBeDefined();
      expect(c!.Labels).toMatchObject({ 'xl.stack': 'xl', 'xl.agent-type': 'coder', 'xl.agent-id': a.agentId });
      expect(c!.Image).toBe(process.env.XL_AGENT_IMAGE);
      const info = await docker().getContainer(c!.Id).inspect();
      expect(info.HostConfig.ReadonlyRootfs).toBe(true);
      expect(info.HostConfig.NetworkMode).toBe('host');
      expect(info.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    }
  });

  patternTests(() => layer);

  it('a container SIGKILLed mid-task: nothing is lost, the task runs to its end once on another agent', async () => {
    const task = `k${Date.now()}`;
    const submitted = await layer.request('POST', '/executions', {
      pattern: 'sequential',
      tasks: [cmd(task, `${report(`start-${task}`)}; sleep 4; ${report(`end-${task}`)}; echo '{"ok":true}'`)],
    });
    expect(submitted.status).toBe(202);
    await waitFor('the task to start', async () => hits.includes(`start-${task}`), 60_000);
    const busy = await waitFor('the busy agent', async () => {
      const res = await layer.request('GET', '/agents');
      return res.body.items.find((a: any) => a.currentTaskId?.endsWith(`/${task}`));
    });
    await docker().getContainer(busy.runtime.containerId).kill({ signal: 'SIGKILL' });
    const ex = await waitForEnd(layer, submitted.body.executionId, 120_000);
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks[0]).toMatchObject({ status: 'completed', output: { ok: true } });
    expect(ex.tasks[0].agentId).not.toBe(busy.agentId);
    expect(hits.filter((h) => h === `end-${task}`)).toHaveLength(1);
    expect(hits.filter((h) => h === `start-${task}`).length).toBeGreaterThanOrEqual(2);
    // The dead agent is replaced: the pool is back to three coders.
    await waitFor('three coders again', async () => {
      const res = await layer.request('GET', '/agents');
      return res.body.items.filter((a: any) => a.agentType === 'coder' && a.status !== 'terminated').length === 3 || undefined;
    }, 60_000);
  });
  it('a container stopped mid-task (docker stop) hands its task back checkpointed; another agent resumes it', async () => {
    const task = `s${Date.now()}`;
    // The first attempt writes half its work into the workspace and would run long past the grace
    // (10 s locally); the second finds that file, restored from the checkpoint.
    const command =
      `if [ "$XL_ATTEMPT" = 1 ]; then mkdir -p src; echo half > src/progress.txt; ${report(`start-${task}`)}; sleep 300; fi; ` +
      `echo '{"found":"'"$(cat src/progress.txt)"'","attempt":'$XL_ATTEMPT'}'`;
    const submitted = await layer.request('POST', '/executions', { pattern: 'sequential', tasks: [cmd(task, command)] });
    expect(submitted.status).toBe(202);
    await waitFor('the task to start', async () => hits.includes(`start-${task}`), 60_000);
    const busy = await waitFor('the busy agent', async () => {
      const res = await layer.request('GET', '/agents');
      return res.body.items.find((a: any) => a.currentTaskId?.endsWith(`/${task}`));
    });
    const container = docker().getContainer(busy.runtime.containerId);
    // What `docker stop` does: SIGTERM, SIGKILL after the container's StopTimeout (the task definition's).
    await container.stop();
    const ex = await waitForEnd(layer, submitted.body.executionId, 120_000);
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks[0]).toMatchObject({ status: 'completed', attempts: 2, output: { found: 'half', attempt: 2 } });
    expect(ex.tasks[0].agentId).not.toBe(busy.agentId);
    // "half" came from the checkpoint: a container killed without handing back leaves none.
    const logs = (await layer.request('GET', `/executions/${ex.executionId}/logs`)).body.items as { agentId?: string; message: string }[];
    expect(logs.some((l) => l.agentId === ex.tasks[0].agentId && l.message === 'resuming from a checkpoint')).toBe(true);
  });

  it('the pool takes testers from no container to their max and back to none', async () => {
    const testers = async () => (await ours(layer)).filter((c) => c.Labels['xl.agent-type'] === 'tester');
    expect(await testers()).toEqual([]);
    const tasks = Array.from({ length: 6 }, (_, i) => ({ id: `p${i}`, agentType: 'tester', command: `sleep 2; echo '{"i":${i}}'` }));
    const submitted = await layer.request('POST', '/executions', { pattern: 'parallel', maxConcurrency: 6, tasks });
    expect(submitted.status).toBe(202);
    // A container is listed from its creation: three of them running at once is the max reached.
    const peak = await waitFor('three tester containers running', async () => {
      const found = await testers();
      return found.length === 3 && found.every((c) => c.State === 'running') ? found : undefined;
    }, 90_000);
    const ex = await waitForEnd(layer, submitted.body.executionId, 120_000);
    expect(ex.status).toBe('SUCCEEDED');
    const agents = new Set(ex.tasks.map((t: any) => t.agentId));
    expect(agents.size).toBeLessThanOrEqual(3);
    for (const id of agents) expect(peak.map((c) => c.Labels['xl.agent-id'])).toContain(id);
    // Idle past XL_POOL_IDLE_SECONDS with nothing queued: drained, down to the min of zero.
    await waitFor('no tester container', async () => ((await testers()).length === 0) || undefined, 90_000);
    const left = (await layer.request('GET', '/agents')).body.items.filter((a: any) => a.agentType === 'tester' && a.status !== 'terminated');
    expect(left).toEqual([]);
  });

  it('a drained agent finishes its task within its grace, then its container stops and is removed', async () => {
    const task = `d${Date.now()}`;
    const submitted = await layer.request('POST', '/executions', {
      pattern: 'sequential',
      tasks: [cmd(task, `${report(`start-${task}`)}; sleep 3; ${report(`end-${task}`)}; echo '{"ok":true}'`)],
    });
    expect(submitted.status).toBe(202);
    await waitFor('the task to start', async () => hits.includes(`start-${task}`), 60_000);
    const busy = await waitFor('the busy agent', async () => {
      const res = await layer.request('GET', '/agents');
      return res.body.items.find((a: any) => a.currentTaskId?.endsWith(`/${task}`));
    });
    expect((await layer.request('DELETE', `/agents/${busy.agentId}`)).status).toBe(202);
    const ex = await waitForEnd(layer, submitted.body.executionId, 60_000);
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks[0]).toMatchObject({ status: 'completed', agentId: busy.agentId, attempts: 1 });
    expect(hits.filter((h) => h === `end-${task}`)).toHaveLength(1);
    await waitFor('its container to be gone', async () => (await ours(layer)).every((c) => !c.Names.includes(`/xl-${busy.agentId}`)) || undefined, 30_000);
  });
});

describe('no container outlives the layer', () => {
  it('none is left after the layer stops', async () => {
    const own = await startLayer({ env: { ...env, XL_POOL: 'coder=1..1' }, startTimeoutMs: START_TIMEOUT_MS });
    try {
      await waitFor('its container', async () => ((await ours(own)).length >= 1) || undefined, 60_000);
      const { code } = await own.stop();
      expect(code).toBe(0);
      expect(await ours(own)).toEqual([]);
    } finally {
      await own.stop();
      await removeContainersOf(own.stateDir);
      await removeStateDir(own.stateDir);
    }
  });

  it('those of a SIGKILLed layer are removed when it starts again, and none is left after it stops', async () => {
    const first = await startLayer({ env: { ...env, XL_POOL: 'coder=2..2' }, startTimeoutMs: START_TIMEOUT_MS });
    const { stateDir } = first;
    let second: Layer | undefined;
    try {
      const before = await waitFor('its containers', async () => {
        const found = await ours(first);
        return found.length >= 2 ? found : undefined;
      }, 60_000);
      await first.kill();
      // Nothing drained them: they still run.
      expect((await ours(first)).filter((c) => c.State === 'running').length).toBeGreaterThanOrEqual(2);
      second = await startLayer({ env: { ...env, XL_POOL: 'coder=1..1' }, stateDir, startTimeoutMs: START_TIMEOUT_MS });
      const now = await ours(second);
      for (const c of before) expect(now.map((x) => x.Id)).not.toContain(c.Id);
      await second.stop();
      expect(await ours(second)).toEqual([]);
    } finally {
      await first.kill();
      await second?.stop();
      await removeContainersOf(stateDir);
      await removeStateDir(stateDir);
    }
  });
});
