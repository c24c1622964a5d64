// `xl logs` against a real local layer: a plan runs on worker processes, and the execution's log
// lines (the agents' and the functions', kept in the layer's log file) come back through
// GET /executions/{executionId}/logs, all of them or one task's, once or followed to the end.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, ROOT, removeStateDir, scratchDir, startLayer, waitForEnd } from './harness.ts';

const XL = [process.execPath, '--import', 'tsx', join(ROOT, 'cli/xl.ts')];
let layer: Layer;

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

const xl = (args: string[]): Promise<Ran> =>
  new Promise((done) => {
    execFile(XL[0]!, [...XL.slice(1), ...args, '--endpoint', layer.url], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });

/** A plan of two tasks, the second held on a gate file until the test opens it. */
function plan(): { file: string; gate: string } {
  const dir = scratchDir('xl-logs-');
  const gate = join(dir, 'gate');
  const file = join(dir, 'plan.json');
  writeFileSync(
    file,
    JSON.stringify({
      pattern: 'sequential',
      tasks: [
        { id: 'design', agentType: 'coder', command: `echo '{"design":"one module"}'` },
        { id: 'build', agentType: 'coder', command: `while [ ! -e ${gate} ]; do sleep 0.05; done; echo '{"files":1}'` },
      ],
    }),
  );
  return { file, gate };
}

beforeAll(async () => {
  layer = await startLayer({ env: { XL_POOL: 'coder=1..1,tester=0..0,reviewer=0..0' } });
});
afterAll(async () => {
  await layer?.stop();
  if (layer) await removeStateDir(layer.stateDir);
});

describe('xl logs', () => {
  let executionId: string;

  beforeAll(async () => {
    const { file, gate } = plan();
    writeFileSync(gate, '');
    const run = await xl(['run', file, '--json']);
    expect(run.code, run.stderr).toBe(0);
    executionId = JSON.parse(run.stdout).executionId;
  });

  it("shows the lines of every task of the execution, each naming its agent and task", async () => {
    const res = await xl(['logs', executionId]);
    expect(res.code, res.stderr).toBe(0);
    // time, level, agent, task, message, fields
    expect(res.stdout).toMatch(/^\S+Z\s+INFO\s+coder-\S+\s+design\s+task finished\s+attempt=1/m);
    expect(res.stdout).toMatch(/^\S+Z\s+INFO\s+coder-\S+\s+build\s+task finished\s+attempt=1/m);
  });

  it("with a task id shows that task's lines only", async () => {
    const res = await xl(['logs', executionId, 'build']);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(/^\S+\s+\S+\s+\S+\s+(\S+)/.exec(line)?.[1]).toMatch(/^(build|#1)$/);
    expect(res.stdout).toMatch(/build {2}task finished/);
  });

  it('--json prints one document of structured lines, all of the execution', async () => {
    const res = await xl(['logs', executionId, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const doc = JSON.parse(res.stdout) as { executionId: string; items: { executionId: string; taskId?: string; agentId?: string; message: string }[] };
    expect(doc.executionId).toBe(executionId);
    expect(doc.items.every((l) => l.executionId === executionId)).toBe(true);
    expect(doc.items.filter((l) => l.message === 'task finished').map((l) => l.taskId)).toEqual(['design', 'build']);
    expect(doc.items.every((l) => !l.agentId || l.agentId.startsWith('coder-'))).toBe(true);
  });

  it('names an unknown task and an unknown execution, and exits 1', async () => {
    const task = await xl(['logs', executionId, 'deploy']);
    expect(task.code).toBe(1);
    expect(task.stderr).toMatch(/has no task deploy \(it has: design, build\)/);
    const execution = await xl(['logs', 'ex-unknown']);
    expect(execution.code).toBe(1);
    expect(execution.stderr).toMatch(/no execution ex-unknown/);
  });

  it('--follow prints lines as they are written and ends when the execution does', async () => {
    const { file, gate } = plan();
    const text = readFileSync(file, 'utf8');
    const submitted = await layer.request('POST', '/executions', JSON.parse(text));
    expect(submitted.status).toBe(202);
    const id = submitted.body.executionId as string;
    const follow = new Promise<Ran>((done) => {
      const child = execFile(XL[0]!, [...XL.slice(1), 'logs', id, '--follow', '--endpoint', layer.url], { cwd: ROOT }, (err, stdout, stderr) =>
        done({ code: err ? 1 : 0, stdout, stderr }),
      );
      // The gate opens once the follower has printed the first task's end: the rest comes later.
      let seen = '';
      child.stdout!.on('data', (d: Buffer) => {
        seen += d.toString();
        if (/design {2}task finished/.test(seen)) writeFileSync(gate, '');
      });
    });
    const res = await follow;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/design {2}task finished[\s\S]*build {2}task finished/);
    expect((await waitForEnd(layer, id)).status).toBe('SUCCEEDED');
  });

  it("shows the functions' lines about the execution too, under their service: the steps function's escalation of a failed task", async () => {
    const submitted = await layer.request('POST', '/executions', {
      pattern: 'sequential',
      tasks: [{ id: 'broken', agentType: 'coder', command: 'exit 4', recovery: { permanent: { escalation: 'notify' } } }],
    });
    expect(submitted.status).toBe(202);
    const id = submitted.body.executionId as string;
    expect((await waitForEnd(layer, id)).status).toBe('FAILED');
    const res = await xl(['logs', id, 'broken', '--json']);
    expect(res.code, res.stderr).toBe(0);
    const { items } = JSON.parse(res.stdout) as { items: { source: string; message: string; taskId?: string; fields: Record<string, unknown> }[] };
    expect(items).toContainEqual(expect.objectContaining({ source: 'xl-steps', message: 'layer event', taskId: 'broken', fields: expect.objectContaining({ event: 'task.escalated', action: 'notify' }) }));
    expect(items).toContainEqual(expect.objectContaining({ source: 'agent', message: 'task finished', taskId: 'broken' }));
  });

  it("keeps each function's own service on its lines, as on AWS", () => {
    const lines = readFileSync(join(layer.stateDir, 'logs', 'layer.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const reconciled = lines.filter((l) => l.message === 'pool reconciled');
    expect(reconciled.length).toBeGreaterThan(0);
    expect(new Set(reconciled.map((l) => l.service))).toEqual(new Set(['xl-pool-manager']));
  });
});
