// End-to-end: the contract's pattern semantics, payload limits and API errors, through the HTTP API
// of a real embedded local layer (`npm start`) with worker processes running command tasks.
import { GetQueueAttributesCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { execSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, isAlive, peakOverlap, removeStateDir, startLayer, waitFor, waitForEnd, scratchDir } from './harness.ts';

let layer: Layer;

beforeAll(async () => {
  // The tests share one layer: the failures one of them causes on purpose (or an agent's hiccup under
  // the large plans) must not open the coder breaker for the next. Breakers are tested on their own.
  layer = await startLayer({
    env: { XL_POOL: 'coder=6..6,tester=1..1,reviewer=1..1', XL_HEARTBEAT_SECONDS: '6', XL_BREAKER_POLICY: JSON.stringify({ 'agent:*': { failureThreshold: 1_000_000 } }) },
  });
});
afterAll(async () => {
  await layer?.stop();
  if (layer) await removeStateDir(layer.stateDir);
});

const cmd = (id: string, command: string, extra: object = {}) => ({ id, agentType: 'coder', command, ...extra });

async function run(plan: object): Promise<any> {
  const res = await layer.request('POST', '/executions', plan);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  expect(res.body).toMatchObject({ status: 'RUNNING' });
  expect(res.body.executionId).toMatch(/^[A-Za-z0-9_-]+$/);
  return waitForEnd(layer, res.body.executionId);
}

describe('sequential', () => {
  it('stops at a failed "stop" task: later tasks are skipped and the execution FAILED', async () => {
    const ex = await run({
      pattern: 'sequential',
      tasks: [cmd('one', `echo '{"n":1}'`), cmd('two', 'echo broken >&2; exit 3'), cmd('three', 'echo never')],
    });
    expect(ex.status).toBe('FAILED');
    expect(ex.tasks.map((t: any) => [t.taskId, t.status])).toEqual([['one', 'completed'], ['two', 'failed'], ['three', 'skipped']]);
    expect(ex.tasks[0].output).toEqual({ n: 1 });
    expect(ex.tasks[1].error).toEqual({ type: 'permanent', source: 'command', message: expect.stringContaining('broken') });
    expect(ex.tasks[1].attempts).toBe(1);
  });

  it('goes on past a failed "continue" task and SUCCEEDS', async () => {
    const ex = await run({
      pattern: 'sequential',
      tasks: [cmd('a', 'exit 1', { failureStrategy: 'continue' }), cmd('b', `echo '{"ok":true}'`)],
    });
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks.map((t: any) => t.status)).toEqual(['failed', 'completed']);
  });
});

describe('parallel', () => {
  it('runs exactly maxConcurrency tasks at once with more agents free, and answers in plan order', async () => {
    const durations = [1.4, 1.2, 1.0, 0.8, 0.6, 0.4];
    const ex = await run({
      pattern: 'parallel',
      maxConcurrency: 2,
      tasks: durations.map((d, i) => cmd(`t${i}`, `sleep ${d}; echo '{"i":${i}}'`)),
    });
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks.map((t: any) => t.taskId)).toEqual(durations.map((_, i) => `t${i}`));
    expect(ex.tasks.map((t: any) => t.output.i)).toEqual([0, 1, 2, 3, 4, 5]);
    const intervals = ex.tasks.map((t: any) => ({ start: Date.parse(t.startedAt), end: Date.parse(t.finishedAt) }));
    expect(peakOverlap(intervals)).toBe(2);
    expect(new Set(ex.tasks.map((t: any) => t.agentId)).size).toBeGreaterThan(1);
  });
});

describe('pipeline', () => {
  it('gives each stage the plan input merged with earlier outputs', async () => {
    const ex = await run({
      pattern: 'pipeline',
      input: { base: 1, x: 0 },
      stages: [
        { name: 'first', tasks: [cmd('a', `echo '{"x":1}'`), cmd('b', `echo '{"y":2}'`)] },
        { name: 'second', tasks: [cmd('c', `printf '{"seen":%s}\\n' "$XL_INPUT"`)] },
      ],
    });
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks.find((t: any) => t.taskId === 'c').output).toEqual({ seen: { base: 1, x: 1, y: 2 } });
    expect(ex.result).toEqual({ status: 'completed', data: { base: 1, x: 1, y: 2, seen: { base: 1, x: 1, y: 2 } } });
  });

  it('reports a failed stage as {status: "failed", stage, data}', async () => {
    const ex = await run({
      pattern: 'pipeline',
      input: { start: true },
      stages: [
        { name: 'build', tasks: [cmd('build', `echo '{"built":true}'`)] },
        { name: 'test', tasks: [cmd('test', 'exit 2'), cmd('lint', `echo '{"lint":"ok"}'`, { failureStrategy: 'continue' })] },
        { name: 'deploy', tasks: [cmd('deploy', 'echo deployed')] },
      ],
    });
    expect(ex.status).toBe('FAILED');
    expect(ex.result).toEqual({ status: 'failed', stage: 'test', data: { start: true, built: true, lint: 'ok' } });
    expect(ex.tasks.find((t: any) => t.taskId === 'deploy').status).toBe('skipped');
  });
});

describe('big payloads', () => {
  it('runs a 900 KiB plan', async () => {
    const blob = 'x'.repeat(900 * 1024);
    const ex = await run({ pattern: 'sequential', input: { blob }, tasks: [cmd('count', 'wc -c')] });
    expect(ex.status).toBe('SUCCEEDED');
    expect(Number(ex.tasks[0].output.stdout.trim())).toBeGreaterThan(900 * 1024);
  });

  it('runs a pipeline whose three tasks each output 150 KiB', async () => {
    const out = (key: string) => cmd(key, `printf '{"${key}":"'; head -c 153600 /dev/zero | tr '\\0' ${key}; printf '"}\\n'`);
    const ex = await run({
      pattern: 'pipeline',
      stages: [{ name: 's1', tasks: [out('a')] }, { name: 's2', tasks: [out('b')] }, { name: 's3', tasks: [out('c')] }],
    });
    expect(ex.status).toBe('SUCCEEDED');
    expect(Object.keys(ex.result.data)).toEqual(['a', 'b', 'c']);
    expect(ex.result.data.c).toHaveLength(153600);
  });
});

describe('large outputs', () => {
  it('round-trips a 1 MiB output through the bucket', async () => {
    const ex = await run({
      pattern: 'sequential',
      tasks: [cmd('big', `printf '{"blob":"'; head -c 1048576 /dev/zero | tr '\\0' z; printf '"}\\n'`)],
    });
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks[0].output.blob).toHaveLength(1024 * 1024);
    expect(ex.tasks[0].output.blob.replaceAll('z', '')).toBe('');
  });
});

describe('workspaces', () => {
  it('clones the task\'s repository and returns its changes as artifacts', async () => {
    const repo = scratchDir('xl-repo-');
    const git = (args: string) => execSync(`git -C ${repo} -c user.name=t -c user.email=t@t ${args}`, { stdio: 'pipe' });
    git('init -q -b main');
    writeFileSync(join(repo, 'README.md'), 'hello\n');
    git('add README.md');
    git('commit -q -m init');
    const ex = await run({
      pattern: 'sequential',
      tasks: [cmd('edit', `echo world >> README.md && echo new > NEW.txt && echo '{"files":'$(ls | wc -l)'}'`, { workspace: { repository: `file://${repo}`, ref: 'main' } })],
    });
    expect(ex.status, JSON.stringify(ex.tasks[0])).toBe('SUCCEEDED');
    expect(ex.tasks[0].output).toEqual({ files: 2 });
    const names = ex.tasks[0].artifacts.map((a: any) => a.name).sort();
    expect(names).toEqual(['new-files.tar.gz', 'workspace.diff']);
    expect(ex.tasks[0].artifacts.every((a: any) => a.uri.startsWith('s3://') && a.bytes > 0)).toBe(true);
  });
});

describe('idempotent names', () => {
  it('returns the same execution for the same plan and 409 for another plan', async () => {
    const plan = { name: `same-${Date.now()}`, pattern: 'sequential', tasks: [cmd('a', 'true')] };
    const first = await layer.request('POST', '/executions', plan);
    expect(first.status).toBe(202);
    const again = await layer.request('POST', '/executions', { ...plan, tasks: [{ ...plan.tasks[0], priority: 'normal' }] });
    expect(again.status).toBe(200);
    expect(again.body.executionId).toBe(first.body.executionId);
    await waitForEnd(layer, first.body.executionId);
    const ended = await layer.request('POST', '/executions', plan);
    expect(ended).toMatchObject({ status: 200, body: { executionId: first.body.executionId, status: 'SUCCEEDED' } });
    const other = await layer.request('POST', '/executions', { ...plan, tasks: [cmd('a', 'false')] });
    expect(other.status).toBe(409);
    expect(other.body.error.type).toBe('validation');
  });
});

describe('bad requests', () => {
  it('rejects an invalid plan with JSON Pointer paths and starts nothing', async () => {
    const before = (await layer.request('GET', '/executions?limit=100')).body.items.length;
    const res = await layer.request('POST', '/executions', { pattern: 'parallel', maxConcurrency: 0, tasks: [{ id: 'a', agentType: 'wizard', command: 'true' }] });
    expect(res.status).toBe(400);
    expect(res.body.error.type).toBe('validation');
    expect(res.body.error.details.map((d: any) => d.path)).toEqual(expect.arrayContaining(['/maxConcurrency', '/tasks/0/agentType']));
    const bad = await layer.request('POST', '/executions', '{not json');
    expect(bad.status).toBe(400);
    const after = (await layer.request('GET', '/executions?limit=100')).body.items.length;
    expect(after).toBe(before);
  });

  it('answers 413 over 1 MiB and 404 for an unknown execution', async () => {
    const huge = await layer.request('POST', '/executions', { pattern: 'sequential', input: { b: 'x'.repeat(1100 * 1024) }, tasks: [cmd('a', 'true')] });
    expect(huge.status).toBe(413);
    expect(huge.body.error.type).toBe('validation');
    const missing = await layer.request('GET', '/executions/ex-does-not-exist');
    expect(missing.status).toBe(404);
    expect(missing.body.error.type).toBe('permanent');
  });

  it('refuses a list limit that is not a positive integer and a nextToken it did not give', async () => {
    for (const limit of ['0', '-1', 'ten', '2.5']) {
      const res = await layer.request('GET', `/executions?limit=${limit}`);
      expect(res.status, limit).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'validation', message: '/limit: must be a positive integer (at most 100 are listed)', details: [{ path: '/limit' }] });
    }
    expect((await layer.request('GET', '/executions?limit=1000')).status).toBe(200); // read as 100
    const bad = await layer.request('GET', '/executions?limit=1&nextToken=garbage');
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual([{ path: '/nextToken', message: 'not a page token' }]);
    for (const name of ['page-a', 'page-b']) expect((await layer.request('POST', '/executions', { name, pattern: 'sequential', tasks: [cmd('a', 'true')] })).status).toBeLessThan(300);
    const first = await layer.request('GET', '/executions?limit=1');
    expect(first.body.items).toHaveLength(1);
    const second = await layer.request('GET', `/executions?limit=1&nextToken=${first.body.nextToken}`);
    expect(second.status).toBe(200);
    expect(second.body.items[0].executionId).not.toBe(first.body.items[0].executionId);
  });

  it('refuses to stop an agent with a graceful that is neither true nor false, and stops nothing', async () => {
    const live = async () => ((await layer.request('GET', '/agents')).body.items as { agentId: string; status: string }[]).filter((a) => a.status !== 'terminated');
    const before = await live();
    const res = await layer.request('DELETE', `/agents/${before[0]!.agentId}?graceful=yes`);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'validation', message: 'graceful must be true or false, got "yes"', details: [{ path: '/graceful' }] });
    const after = await live();
    expect(after.map((a) => a.agentId)).toEqual(before.map((a) => a.agentId));
    expect(after.find((a) => a.agentId === before[0]!.agentId)!.status).not.toBe('draining');
  });
});

describe('stray messages', () => {
  it('drops a message put on a queue by hand', async () => {
    const services = layer.endpoint.services!;
    const sqs = new SQSClient({ endpoint: services.sqs, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const queue = `${services.sqs}/000000000000/xl_reviewer-normal`;
    const forged = { executionId: 'ex-forged', taskIndex: 0, dispatchSeq: 1, dispatchTimeoutSeconds: 60, taskToken: 'forged' };
    await sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: JSON.stringify(forged) }));
    await sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'rm -rf /' }));
    await waitFor('the queue to be empty', async () => {
      const res = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue, AttributeNames: ['All'] }));
      const a = res.Attributes ?? {};
      return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible) === 0;
    });
    const dlq = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: `${queue}-dlq`, AttributeNames: ['ApproximateNumberOfMessages'] }));
    expect(Number(dlq.Attributes?.ApproximateNumberOfMessages)).toBe(0);
    const list = await layer.request('GET', '/executions?limit=100');
    expect(list.body.items.find((e: any) => e.executionId === 'ex-forged')).toBeUndefined();
  });
});

describe('reads', () => {
  it('lists executions, agents and health', async () => {
    const list = await layer.request('GET', '/executions');
    expect(list.status).toBe(200);
    expect(list.body.items[0]).toMatchObject({ executionId: expect.any(String), pattern: expect.any(String), startedAt: expect.any(String) });
    const agents = await layer.request('GET', '/agents');
    expect(agents.body.items.filter((a: any) => a.agentType === 'coder' && a.status !== 'terminated')).toHaveLength(6);
    expect(agents.body.items[0]).toMatchObject({ runtime: { kind: 'process', pid: expect.any(Number) }, health: { overall: expect.any(String) } });
    const health = await layer.request('GET', '/health');
    expect(health).toMatchObject({ status: 200, body: { overall: expect.any(String), agents: expect.any(Object), queues: expect.any(Array), breakers: expect.any(Object) } });
  });
});

describe('large plans', () => {
  it('runs a plan bigger than one batch as child executions, each far from the history limit', async () => {
    const tasks = Array.from({ length: 520 }, (_, i) => cmd(`n${i}`, 'true'));
    const ex = await run({ pattern: 'parallel', maxConcurrency: 8, tasks });
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks.every((t: any) => t.status === 'completed' && t.attempts === 1)).toBe(true);

    const { ListExecutionsCommand, ListStateMachinesCommand, GetExecutionHistoryCommand, SFNClient } = await import('@aws-sdk/client-sfn');
    const sfn = new SFNClient({ endpoint: layer.endpoint.services!.stepfunctions, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const batchMachine = (await sfn.send(new ListStateMachinesCommand({}))).stateMachines!.find((m) => /TaskBatch/.test(m.name!))!;
    const children = (await sfn.send(new ListExecutionsCommand({ stateMachineArn: batchMachine.stateMachineArn, maxResults: 1000 }))).executions!
      .filter((e) => e.name!.startsWith(ex.executionId));
    // Batches as long as their tasks' worst-case history allows (the contract's default recovery: 112 tasks).
    const { prepareBatches, stageLayout } = await import('../../core/patterns.ts');
    const prepared = prepareBatches({ executionId: ex.executionId, pattern: 'parallel', maxConcurrency: 8, taskCount: 520, stages: stageLayout('parallel', [{ name: '', count: 520 }]) });
    const froms = 'batches' in prepared ? prepared.batches.map((b) => b.from) : [];
    expect(froms).toEqual([0, 112, 224, 336, 448]);
    expect(children.map((c) => c.name).sort()).toEqual(froms.map((f) => `${ex.executionId}-${f}`).sort());
    for (const child of children) {
      let events = 0;
      let nextToken: string | undefined;
      do {
        const page = await sfn.send(new GetExecutionHistoryCommand({ executionArn: child.executionArn, maxResults: 1000, nextToken }));
        events += page.events!.length;
        nextToken = page.nextToken;
      } while (nextToken);
      expect(events).toBeGreaterThan(250);
      expect(events).toBeLessThan(25_000);
    }
  });
});

describe('cancel', () => {
  it('ends an execution ABORTED and kills its running command', async () => {
    const dir = scratchDir('xl-cancel-');
    const res = await layer.request('POST', '/executions', {
      pattern: 'parallel',
      tasks: [cmd('long', `sleep 60 & echo $! > ${dir}/pid; wait`), cmd('later', 'sleep 60')],
      maxConcurrency: 1,
    });
    const pid = await waitFor('the command to run', async () => {
      try {
        return Number(readFileSync(join(dir, 'pid'), 'utf8').trim()) || undefined;
      } catch {
        return undefined;
      }
    });
    const del = await layer.request('DELETE', `/executions/${res.body.executionId}`);
    expect(del.status).toBe(202);
    const ex = await waitForEnd(layer, res.body.executionId);
    expect(ex.status).toBe('ABORTED');
    expect(ex.tasks.map((t: any) => t.status)).toEqual(['failed', 'skipped']);
    expect(ex.tasks[0].error).toEqual({ type: 'permanent', message: 'cancelled: cancelled by request' });
    await waitFor('the cancelled command to be killed', async () => !isAlive(pid), 15_000);
    // The agent lost its claim and is free again: a new task runs at once.
    const next = await run({ pattern: 'sequential', tasks: [cmd('after', `echo '{"ok":1}'`)] });
    expect(next.status, JSON.stringify(next.tasks)).toBe('SUCCEEDED');
  });
});
