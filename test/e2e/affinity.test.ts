// End-to-end: affinity scheduling (core/affinity.ts) and the warm mirror on the local layer, with
// two coder agents as worker processes. A task goes to the agent that ran its affinity key lately,
// through that agent's direct queue; a repository it cloned before is cloned from its mirror.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, removeStateDir, startLayer, waitFor, waitForEnd } from './harness.ts';

let layer: Layer;
let scratch: string;
let mirrors: string;
let origin: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'xl-affinity-'));
  mirrors = join(scratch, 'mirrors');
  const seed = join(scratch, 'seed');
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: seed });
  execFileSync('git', ['init', '--quiet', '--initial-branch=main', seed]);
  execFileSync('sh', ['-c', 'for i in $(seq 1 50); do echo "line $i" > f$i.txt; done'], { cwd: seed });
  git('add', '-A');
  git('commit', '--quiet', '-m', 'first');
  origin = join(scratch, 'origin.git');
  execFileSync('git', ['clone', '--quiet', '--bare', seed, origin]);
  layer = await startLayer({ env: { XL_POOL: 'coder=2..2', XL_AGENT_SLOTS: '1', XL_MIRROR_DIR: mirrors } });
  await waitFor('two idle coders with direct queues', async () => {
    const { body } = await layer.request('GET', '/agents');
    const ready = body.items.filter((a: any) => a.agentType === 'coder' && a.status === 'idle');
    return ready.length >= 2 || undefined;
  }, 60_000);
});
afterAll(async () => {
  await layer?.stop();
  if (layer) await removeStateDir(layer.stateDir);
  rmSync(scratch, { recursive: true, force: true });
});

async function run(plan: object): Promise<any> {
  const res = await layer.request('POST', '/executions', plan);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const ex = await waitForEnd(layer, res.body.executionId, 60_000);
  expect(ex.status, JSON.stringify(ex.tasks)).toBe('SUCCEEDED');
  return ex;
}

describe('affinity on the local layer', () => {
  it('sends each next task with the same affinity key to the same idle agent', async () => {
    const tasks = Array.from({ length: 6 }, (_, i) => ({ id: `t${i}`, agentType: 'coder', command: 'true', affinity: 'key-a' }));
    const ex = await run({ pattern: 'sequential', tasks });
    // Two idle agents: by chance alone all six would land on one agent once in 32 runs.
    const agents = new Set(ex.tasks.map((t: any) => t.agentId));
    expect(agents.size).toBe(1);
  });

  it('uses the workspace repository as the key by default, and clones it again from the agent\'s mirror', async () => {
    const repository = `file://${origin}`;
    const tasks = Array.from({ length: 3 }, (_, i) => ({ id: `c${i}`, agentType: 'coder', command: 'test -f f1.txt', workspace: { repository, ref: 'main' } }));
    const ex = await run({ pattern: 'sequential', tasks });
    const agents = [...new Set(ex.tasks.map((t: any) => t.agentId))];
    expect(agents).toHaveLength(1);
    // The agent's mirror of the repository, in its own 0700 directory.
    const own = join(mirrors, agents[0] as string);
    expect(existsSync(own)).toBe(true);
    expect(statSync(own).mode & 0o077).toBe(0);
    expect(readdirSync(own).filter((d) => d.endsWith('.git'))).toHaveLength(1);
  });
});
