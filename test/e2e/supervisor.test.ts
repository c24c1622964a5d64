// The layer under a supervisor that signals npm, not the layer: `npm start` is started in its own
// process group and only the npm process is signalled. Whatever npm does with the signal (passes a
// SIGTERM on, or dies of a SIGKILL and passes nothing), the layer drains and stops and no agent
// process outlives it.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, waitFor } from '../support/processes.ts';
import { ROOT, removeStateDir } from './harness.ts';

interface Started {
  npm: ChildProcess;
  stateDir: string;
  layerPid: number;
  agentPids: number[];
  output: () => string;
}

const started: Started[] = [];

/** `npm start` in a process group of its own, up and with its pool's agents running. */
async function npmStart(): Promise<Started> {
  const stateDir = mkdtempSync(join(tmpdir(), 'xl-supervised-'));
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    detached: true, // its own process group: only what the test signals is signalled
    env: { ...process.env, XL_PORT: '0', XL_STATE_DIR: stateDir, XL_QUIET: '1', XL_POOL: 'coder=1..1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout!.on('data', (d) => (output += d));
  npm.stderr!.on('data', (d) => (output += d));
  const run: Started = { npm, stateDir, layerPid: 0, agentPids: [], output: () => output };
  started.push(run);
  await waitFor(() => /xl: ready at/.test(output) || npm.exitCode !== null, 120_000, 100);
  if (npm.exitCode !== null) throw new Error(`npm start exited with ${npm.exitCode}:\n${output}`);
  const endpoint = JSON.parse(await readFile(join(stateDir, 'endpoint.json'), 'utf8')) as { url: string; pid: number };
  run.layerPid = endpoint.pid;
  // The pool's agents are worker processes; each is listed with its pid once it runs.
  await waitFor(
    async () => {
      const res = await fetch(`${endpoint.url}/agents`);
      const { items } = (await res.json()) as { items: { status: string; runtime: { pid?: number } }[] };
      run.agentPids = items.filter((a) => a.status !== 'terminated' && a.runtime.pid).map((a) => a.runtime.pid!);
      return run.agentPids.length > 0 && run.agentPids.every(alive);
    },
    60_000,
    200,
  );
  return run;
}

afterEach(async () => {
  for (const run of started.splice(0)) {
    // Whatever a failed test left: the whole group (the agents are in it too).
    try {
      process.kill(-run.npm.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
    for (const pid of [run.layerPid, ...run.agentPids]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await removeStateDir(run.stateDir);
  }
});

describe('the layer under a supervisor', () => {
  it('SIGTERM to the npm process alone drains the layer and stops every agent', async () => {
    const run = await npmStart();
    expect(run.layerPid).not.toBe(run.npm.pid);
    process.kill(run.npm.pid!, 'SIGTERM');
    await waitFor(() => !alive(run.layerPid) && !run.agentPids.some(alive), 30_000, 100).catch(() => {
      throw new Error(`still running after 30 s: layer ${alive(run.layerPid)}, agents ${run.agentPids.filter(alive).join(' ') || 'none'}\n${run.output().slice(-3000)}`);
    });
    expect(run.output()).toMatch(/SIGTERM: draining agents and stopping/);
  });

  it('SIGKILL to the npm process, which passes nothing on, still stops the layer and every agent', async () => {
    const run = await npmStart();
    process.kill(run.npm.pid!, 'SIGKILL');
    await waitFor(() => !alive(run.layerPid) && !run.agentPids.some(alive), 30_000, 100).catch(() => {
      throw new Error(`still running after 30 s: layer ${alive(run.layerPid)}, agents ${run.agentPids.filter(alive).join(' ') || 'none'}\n${run.output().slice(-3000)}`);
    });
    expect(run.output()).toMatch(/npm \(pid \d+\) is gone: draining agents and stopping/);
  });
});
