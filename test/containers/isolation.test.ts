// The design's security layers, checked from inside a task on each container runtime that runs here
// (docker, containerd): the task's process is not root, has no effective capability, cannot write
// outside its workspace and /tmp, finds no AWS credential, task token or API key in its environment
// or in any file it can read, cannot read the worker's environment, and lives in pid and mount
// namespaces of its own. A task that allocates past its type's memory limit (XL_AGENT_MEMORY_MIB
// makes it small here) fails as `resource`, and the agent it ran on is alive or replaced.
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, ROOT, removeStateDir, startLayer, waitFor, waitForEnd } from '../e2e/harness.ts';
import { noContainerd } from './ctr.ts';

// What must not be found: the worker's API key (the layer passes the host's to it), any local task
// token (base64url of "arn:aws:states:", the start of every token local/stepfunctions/tokens.ts mints).
const API_KEY = `sk-ant-xl-isolation-${crypto.randomUUID()}`;
const TOKEN_PREFIX = Buffer.from('arn:aws:states:').toString('base64url');
const MEMORY_MIB = 256;
const script = Buffer.from(readFileSync(join(ROOT, 'test/containers/inside.py'))).toString('base64');
const inside = `echo ${script} | base64 -d > /tmp/inside.py && python3 /tmp/inside.py ${Buffer.from(JSON.stringify([API_KEY, TOKEN_PREFIX])).toString('base64')}`;
const hostNs = (n: string) => readlinkSync(`/proc/self/ns/${n}`);

describe.each([
  ['docker', undefined],
  ['containerd', noContainerd()],
] as const)('inside a task on %s', (runtime, skip) => {
  if (skip) process.stderr.write(`containers: isolation on containerd skipped: ${skip}\n`);
  let layer: Layer;
  beforeAll(async () => {
    if (skip) return;
    layer = await startLayer({
      env: {
        XL_RUNTIME: runtime,
        XL_POOL: 'coder=1..1',
        XL_HEARTBEAT_SECONDS: '6',
        XL_AGENT_MEMORY_MIB: String(MEMORY_MIB),
        ANTHROPIC_API_KEY: API_KEY,
        XL_BREAKER_POLICY: JSON.stringify({ 'agent:*': { failureThreshold: 1_000_000 } }),
      },
      startTimeoutMs: 240_000,
    });
  });
  afterAll(async () => {
    await layer?.stop();
    if (layer) await removeStateDir(layer.stateDir);
  });

  async function run(plan: object, timeoutMs = 180_000): Promise<any> {
    const res = await layer.request('POST', '/executions', plan);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return waitForEnd(layer, res.body.executionId, timeoutMs);
  }

  it.skipIf(skip)('the task\'s process is held by every layer', async () => {
    const ex = await run({ pattern: 'sequential', tasks: [{ id: 'inside', agentType: 'coder', command: inside, timeoutSeconds: 300 }] });
    expect(ex.status, JSON.stringify(ex.tasks[0].error)).toBe('SUCCEEDED');
    const r = ex.tasks[0].output;
    process.stderr.write(`containers: ${runtime}: inside a task: ${JSON.stringify({ uid: r.uid, capEff: r.capEff, filesRead: r.filesRead, pids: r.pids, workers: r.workers, ns: r.ns })}\n`);
    // Process: not root, no capability (effective or permitted), no gain through exec.
    expect(r.uid).not.toBe(0);
    expect(r.euid).not.toBe(0);
    expect(r.capEff).toBe('0000000000000000');
    expect(r.capPrm).toBe('0000000000000000');
    expect(r.noNewPrivs).toBe('1');
    // File system: the read-only root; the workspace and /tmp take writes.
    expect(r.writableOutside).toEqual([]);
    expect(r.writableInside).toEqual({ [join(r.cwd, 'probe')]: true, '/tmp/probe': true });
    expect(r.cwd.startsWith('/workspace')).toBe(true);
    // Data: no credential in its environment or in any file it can read.
    expect(r.secretEnv).toEqual([]);
    expect(r.markersInEnv).toEqual([]);
    expect(r.filesRead).toBeGreaterThan(100);
    expect(r.markersInFiles).toEqual([]);
    // The worker (root, holding the key) is visible, its environment is not.
    // (Two processes: the init, PID 1, and the worker.)
    expect(r.workers.length).toBeGreaterThanOrEqual(1);
    expect(r.workers.filter((w: any) => w.environReadable)).toEqual([]);
    // Its own pid and mount namespaces (the host's network: the emulators listen on 127.0.0.1).
    expect(r.ns.pid).not.toBe(hostNs('pid'));
    expect(r.ns.mnt).not.toBe(hostNs('mnt'));
    expect(r.ns.net).toBe(hostNs('net'));
  });

  it.skipIf(skip)(`a task that allocates past the memory limit (${MEMORY_MIB} MiB) fails as resource, and the agent lives on or is replaced`, async () => {
    const before = (await layer.request('GET', '/agents')).body.items.filter((a: any) => a.status !== 'terminated');
    const ex = await run({
      pattern: 'sequential',
      tasks: [
        {
          id: 'hog',
          agentType: 'coder',
          // exec: the allocating process is the one the worker waits for (through a shell that
          // outlives it, the kernel's SIGKILL reaches the worker as the shell's exit code 137,
          // which core/classify.ts reads as `resource` as well).
          command: `exec python3 -c "b = b'x' * (${MEMORY_MIB * 2} * 1024 * 1024); print(len(b))"`,
          // No retry (the default is two, after 10 s or more): the failure is the subject.
          recovery: { resource: { maxRetries: 0 } },
        },
      ],
    });
    expect(ex.status).toBe('FAILED');
    expect(ex.tasks[0].error, JSON.stringify(ex.tasks[0].error)).toMatchObject({ type: 'resource' });
    const agentId = ex.tasks[0].agentId;
    // The pool has its one coder again: the same (the kernel killed the command, the largest
    // process) or a new one (had it killed the worker), and it takes the next task.
    const after = await waitFor('a live coder', async () => {
      const live = (await layer.request('GET', '/agents')).body.items.filter((a: any) => a.agentType === 'coder' && a.status !== 'terminated');
      return live.length === 1 ? live : undefined;
    }, 90_000);
    process.stderr.write(`containers: ${runtime}: out of memory: ${ex.tasks[0].error.message}; agent ${after[0].agentId === agentId ? 'lived on' : 'replaced'}\n`);
    expect(before.map((a: any) => a.agentId)).toContain(agentId);
    const next = await run({ pattern: 'sequential', tasks: [{ id: 'after', agentType: 'coder', command: `echo '{"ok":true}'` }] });
    expect(next.status).toBe('SUCCEEDED');
  });
});
