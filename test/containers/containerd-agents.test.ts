// The local layer with XL_RUNTIME=containerd (`npm start` as a child process, test/e2e/harness.ts),
// against the real containerd that engine-setup.ts found or started: agents are containers of the
// agent image imported there, with their task definition's settings; the three patterns run on them;
// a container SIGKILLed mid-task loses nothing; no container is left after the layer stops, or after
// it is SIGKILLed and started again on the same state dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAYER_LABEL, layerIdOf } from '../../local/docker-runtime.ts';
import { type Layer, removeStateDir, startLayer, waitFor, waitForEnd } from '../e2e/harness.ts';
import { cmd, patternTests, startHitServer } from './agents-shared.ts';
import { ctr, ctrContainersLabelled, ctrInfo, ctrRemove, ctrTasks, noContainerd } from './ctr.ts';

const skip = noContainerd();
if (skip) process.stderr.write(`containers: containerd tests skipped: ${skip}\n`);

const env = {
  XL_RUNTIME: 'containerd',
  XL_POOL: 'coder=3..3,tester=0..1,reviewer=0..1',
  XL_HEARTBEAT_SECONDS: '6',
  XL_BREAKER_POLICY: JSON.stringify({ 'agent:*': { failureThreshold: 1_000_000 } }),
};
const START_TIMEOUT_MS = 240_000;
const ours = (layer: Layer) => ctrContainersLabelled(`${LAYER_LABEL}=${layerIdOf(layer.stateDir)}`);
const removeContainersOf = async (stateDir: string) => ctrRemove(await ctrContainersLabelled(`${LAYER_LABEL}=${layerIdOf(stateDir)}`));
const live = async (layer: Layer, type = 'coder') =>
  (await layer.request('GET', '/agents')).body.items.filter((a: any) => a.agentType === type && a.status !== 'terminated');

describe.skipIf(skip)('agents in containerd containers', () => {
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

  it('are containers of the imported image with their task definition\'s settings and labels', async () => {
    const agents = await waitFor('three coder agents', async () => ((await live(layer)).length === 3 ? live(layer) : undefined), 60_000);
    const tasks = await ctrTasks();
    for (const a of agents) {
      expect(a.runtime).toEqual({ kind: 'containerd', containerId: `xl-${a.agentId}` });
      expect(tasks.get(`xl-${a.agentId}`)).toBe('RUNNING');
      const info = await ctrInfo(`xl-${a.agentId}`);
      expect(info.Labels).toMatchObject({ 'xl.stack': 'xl', 'xl.agent-type': 'coder', 'xl.agent-id': a.agentId, [LAYER_LABEL]: layerIdOf(layer.stateDir) });
      expect(info.Image).toBe('docker.io/library/xl-agent:latest');
      const spec = info.Spec;
      expect(spec.root.readonly).toBe(true);
      expect(spec.process.noNewPrivileges).toBe(true);
      expect(spec.process.user).toMatchObject({ uid: 0, gid: 0 });
      // The host's network (no network namespace of its own); its own pid and mount namespaces.
      const namespaces = spec.linux.namespaces.map((n: any) => n.type);
      expect(namespaces).not.toContain('network');
      expect(namespaces).toEqual(expect.arrayContaining(['pid', 'mount']));
      // The task definition's: coder 2 vCPU (capped to this host's CPUs), 4096 MiB, 6 of Docker's 14 capabilities kept.
      expect(spec.linux.resources.memory.limit).toBe(4096 * 1024 * 1024);
      expect(spec.linux.resources.cpu.quota / spec.linux.resources.cpu.period).toBeGreaterThan(0);
      expect([...spec.process.capabilities.bounding].sort()).toEqual(
        ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID'],
      );
      expect(spec.process.args.slice(0, 2)).toEqual(['/sbin/xl-init', '--']);
      const mounts = Object.fromEntries(spec.mounts.map((m: any) => [m.destination, m.type]));
      expect(mounts).toMatchObject({ '/workspace': 'bind', '/tmp': 'bind', '/sys/fs/cgroup': 'cgroup' });
      expect(spec.process.env).toEqual(expect.arrayContaining(['XL_CONTAINER_RUNTIME=containerd', `XL_CONTAINER_ID=xl-${a.agentId}`, 'XL_RESOURCE_SOURCE=cgroup']));
    }
  });

  patternTests(() => layer);

  it('a container whose task is SIGKILLed mid-task: nothing is lost, the task runs to its end once on another agent', async () => {
    const task = `k${Date.now()}`;
    const submitted = await layer.request('POST', '/executions', {
      pattern: 'sequential',
      tasks: [cmd(task, `${report(`start-${task}`)}; sleep 4; ${report(`end-${task}`)}; echo '{"ok":true}'`)],
    });
    expect(submitted.status).toBe(202);
    await waitFor('the task to start', async () => hits.includes(`start-${task}`), 60_000);
    const busy = await waitFor('the busy agent', async () => (await live(layer)).find((a: any) => a.currentTaskId?.endsWith(`/${task}`)));
    await ctr('tasks', 'kill', '--signal', 'SIGKILL', busy.runtime.containerId);
    const ex = await waitForEnd(layer, submitted.body.executionId, 120_000);
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks[0]).toMatchObject({ status: 'completed', output: { ok: true } });
    expect(ex.tasks[0].agentId).not.toBe(busy.agentId);
    expect(hits.filter((h) => h === `end-${task}`)).toHaveLength(1);
    // The dead agent's container is gone and the pool is back to three coders.
    await waitFor('its container to be gone', async () => !(await ours(layer)).includes(busy.runtime.containerId) || undefined, 30_000);
    await waitFor('three coders again', async () => (await live(layer)).length === 3 || undefined, 60_000);
  });

  it('a drained agent finishes its task within its grace, then its container stops and is removed', async () => {
    const task = `d${Date.now()}`;
    const submitted = await layer.request('POST', '/executions', {
      pattern: 'sequential',
      tasks: [cmd(task, `${report(`start-${task}`)}; sleep 3; ${report(`end-${task}`)}; echo '{"ok":true}'`)],
    });
    expect(submitted.status).toBe(202);
    await waitFor('the task to start', async () => hits.includes(`start-${task}`), 60_000);
    const busy = await waitFor('the busy agent', async () => (await live(layer)).find((a: any) => a.currentTaskId?.endsWith(`/${task}`)));
    expect((await layer.request('DELETE', `/agents/${busy.agentId}`)).status).toBe(202);
    const ex = await waitForEnd(layer, submitted.body.executionId, 60_000);
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks[0]).toMatchObject({ status: 'completed', agentId: busy.agentId, attempts: 1 });
    expect(hits.filter((h) => h === `end-${task}`)).toHaveLength(1);
    await waitFor('its container to be gone', async () => !(await ours(layer)).includes(busy.runtime.containerId) || undefined, 30_000);
  });
});

describe.skipIf(skip)('no containerd container outlives the layer', () => {
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
      const tasks = await ctrTasks();
      expect(before.filter((id) => tasks.get(id) === 'RUNNING').length).toBeGreaterThanOrEqual(2);
      second = await startLayer({ env: { ...env, XL_POOL: 'coder=1..1' }, stateDir, startTimeoutMs: START_TIMEOUT_MS });
      const now = await ours(second);
      for (const id of before) expect(now).not.toContain(id);
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
