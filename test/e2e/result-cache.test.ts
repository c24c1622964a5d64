// End-to-end: result caching (core/result-cache.ts) on the local layer with worker processes. A
// cached task whose key is known at submit completes in Gate with no agent; one whose key needs the
// run's data (a later pipeline stage) is completed by the agent that claims it, without running it.
import { execSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, removeStateDir, startLayer, waitForEnd } from './harness.ts';

let layer: Layer;
let marks: string;

beforeAll(async () => {
  layer = await startLayer({ env: { XL_POOL: 'coder=1..1,tester=0..1' } });
  // Commands may run as another user: the marks directory is everyone's.
  marks = mkdtempSync(join(tmpdir(), 'xl-cache-'));
  chmodSync(marks, 0o777);
});
afterAll(async () => {
  await layer?.stop();
  if (layer) await removeStateDir(layer.stateDir);
  rmSync(marks, { recursive: true, force: true });
});

async function run(plan: object): Promise<any> {
  const res = await layer.request('POST', '/executions', plan);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const ex = await waitForEnd(layer, res.body.executionId, 60_000);
  expect(ex.status, JSON.stringify(ex.tasks)).toBe('SUCCEEDED');
  return ex;
}

/** How many times the command that appends to this mark ran. */
const runs = (mark: string) => {
  try {
    return readFileSync(join(marks, mark), 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
};

describe('result caching on the local layer', () => {
  it('completes a second run of a cached task from the first one, with no agent, no attempt and the same output', async () => {
    const task = { id: 'build', agentType: 'coder', command: `echo ran >> ${marks}/build; echo '{"artifact":"app.tgz"}'`, cache: { ttlSeconds: 3600 } };
    const first = await run({ pattern: 'sequential', input: { version: 1 }, tasks: [task] });
    expect(first.tasks[0]).toMatchObject({ status: 'completed', attempts: 1, output: { artifact: 'app.tgz' } });
    expect(first.tasks[0].cachedFrom).toBeUndefined();

    // Renamed and reprioritised: what it runs is the same, so is its result.
    const second = await run({ pattern: 'sequential', input: { version: 1 }, tasks: [{ ...task, id: 'build-again', priority: 'high' }] });
    expect(second.tasks[0]).toMatchObject({
      status: 'completed',
      attempts: 0,
      output: { artifact: 'app.tgz' },
      cachedFrom: { executionId: first.executionId, taskId: 'build' },
    });
    expect(second.tasks[0].agentId).toBeUndefined();
    expect(second.tasks[0].cost).toBeUndefined();
    expect(runs('build')).toBe(1);

    // Another input is another result: the command runs again.
    const third = await run({ pattern: 'sequential', input: { version: 2 }, tasks: [task] });
    expect(third.tasks[0]).toMatchObject({ status: 'completed', attempts: 1 });
    expect(third.tasks[0].cachedFrom).toBeUndefined();
    expect(runs('build')).toBe(2);
  });

  it('leaves a task without `cache` alone: it runs every time', async () => {
    const task = { id: 'always', agentType: 'coder', command: `echo ran >> ${marks}/always; echo '{}'` };
    await run({ pattern: 'sequential', tasks: [task] });
    await run({ pattern: 'sequential', tasks: [task] });
    expect(runs('always')).toBe(2);
  });

  it("has the agent complete a later pipeline stage from the cache, its key made from that stage's data", async () => {
    const plan = (n: number) => ({
      pattern: 'pipeline',
      stages: [
        { name: 'produce', tasks: [{ id: 'produce', agentType: 'coder', command: `echo '{"n":${n}}'` }] },
        {
          name: 'consume',
          tasks: [{ id: 'consume', agentType: 'coder', command: `echo ran >> ${marks}/consume; echo '{"consumed":true}'`, cache: { ttlSeconds: 3600 } }],
        },
      ],
    });
    const first = await run(plan(1));
    expect(runs('consume')).toBe(1);
    const second = await run(plan(1));
    const consume = second.tasks.find((t: any) => t.taskId === 'consume');
    // Claimed by an agent (its key needed the first stage's output), but not run.
    expect(consume).toMatchObject({ status: 'completed', attempts: 1, output: { consumed: true }, cachedFrom: { executionId: first.executionId, taskId: 'consume' } });
    expect(runs('consume')).toBe(1);
    // The earlier stage's output changed: the data differs, so the stage runs.
    await run(plan(2));
    expect(runs('consume')).toBe(2);
  });

  it("keys a repository task by the commit its branch resolved to: the same commit is a hit, a new commit on the branch runs", async () => {
    const repo = mkdtempSync(join(tmpdir(), 'xl-cache-repo-'));
    const git = (args: string) => execSync(`git -C ${repo} -c user.name=t -c user.email=t@t ${args}`, { stdio: 'pipe' });
    git('init -q -b main');
    writeFileSync(join(repo, 'VERSION'), '1\n');
    git('add VERSION');
    git('commit -q -m one');
    const plan = {
      pattern: 'sequential',
      tasks: [{ id: 'read', agentType: 'coder', command: `echo ran >> ${marks}/repo; echo '{"version":'$(cat VERSION)'}'`, workspace: { repository: `file://${repo}`, ref: 'main' }, cache: { ttlSeconds: 3600 } }],
    };
    try {
      const first = await run(plan);
      expect(first.tasks[0].output).toEqual({ version: 1 });
      const second = await run(plan);
      expect(second.tasks[0]).toMatchObject({ output: { version: 1 }, cachedFrom: { executionId: first.executionId, taskId: 'read' } });
      expect(runs('repo')).toBe(1);
      writeFileSync(join(repo, 'VERSION'), '2\n');
      git('commit -q -am two');
      const third = await run(plan);
      expect(third.tasks[0].output).toEqual({ version: 2 });
      expect(third.tasks[0].cachedFrom).toBeUndefined();
      expect(runs('repo')).toBe(2);
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  it('refuses cache together with pushBranch, naming the field, and starts nothing', async () => {
    const res = await layer.request('POST', '/executions', {
      pattern: 'sequential',
      tasks: [{ id: 'push', agentType: 'coder', command: 'true', cache: { ttlSeconds: 60 }, workspace: { repository: 'https://example.invalid/r.git', pushBranch: 'out' } }],
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toMatch(/cache cannot be combined with workspace.pushBranch/);
  });
});
