// What the docker and containerd agent suites share: a server that agents' commands report to, and
// the three patterns run on container agents, with their log lines in `xl logs`.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import { type Layer, peakOverlap, waitFor, waitForEnd } from '../e2e/harness.ts';

export const cmd = (id: string, command: string, extra: object = {}) => ({ id, agentType: 'coder', command, ...extra });

/** Agents' commands report here over the host network (what a container can reach: 127.0.0.1). */
export async function startHitServer(): Promise<{ hits: string[]; report: (what: string) => string; close: () => void }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url!.slice(1));
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    hits,
    report: (what) => `node -e "fetch('http://127.0.0.1:${port}/${what}').catch(()=>process.exit(1))"`,
    close: () => server.close(),
  };
}

export async function runPlan(layer: Layer, plan: object, timeoutMs = 90_000): Promise<any> {
  const res = await layer.request('POST', '/executions', plan);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return waitForEnd(layer, res.body.executionId, timeoutMs);
}

/** The three patterns on the layer's coder agents (three of them, in containers). */
export function patternTests(layer: () => Layer): void {
  it('sequential: stops at a failed "stop" task, later tasks skipped; the agents\' lines reach xl logs', async () => {
    const ex = await runPlan(layer(), { pattern: 'sequential', tasks: [cmd('one', `echo '{"n":1}'`), cmd('two', 'echo broken >&2; exit 3'), cmd('three', 'echo never')] });
    expect(ex.status).toBe('FAILED');
    expect(ex.tasks.map((t: any) => [t.taskId, t.status])).toEqual([['one', 'completed'], ['two', 'failed'], ['three', 'skipped']]);
    expect(ex.tasks[0].output).toEqual({ n: 1 });
    expect(ex.tasks[1].error).toMatchObject({ type: 'permanent', message: expect.stringContaining('broken') });
    // The agents' log lines come out of their containers into the layer's log: `xl logs`.
    const logs = await waitFor('the agents\' lines in the execution\'s log', async () => {
      const res = await layer().request('GET', `/executions/${ex.executionId}/logs`);
      const items = res.body.items as { taskId?: string; agentId?: string; message: string }[];
      const finishedIds = items.filter((l) => l.message === 'task finished').map((l) => l.taskId);
      return finishedIds.includes('one') && finishedIds.includes('two') ? items : undefined;
    });
    // Each agent's lines come in their own order; two agents' lines interleave as they arrive.
    const finished = logs.filter((l) => l.message === 'task finished');
    expect(finished.map((l) => l.taskId).sort()).toEqual(['one', 'two']);
    for (const l of finished) expect(ex.tasks.find((t: any) => t.taskId === l.taskId).agentId).toBe(l.agentId);
  });

  it('parallel: maxConcurrency tasks at once on more than one container, answers in plan order', async () => {
    const durations = [1.2, 1.0, 0.8, 0.6];
    const ex = await runPlan(layer(), { pattern: 'parallel', maxConcurrency: 2, tasks: durations.map((d, i) => cmd(`t${i}`, `sleep ${d}; echo '{"i":${i}}'`)) });
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks.map((t: any) => t.output.i)).toEqual([0, 1, 2, 3]);
    expect(peakOverlap(ex.tasks.map((t: any) => ({ start: Date.parse(t.startedAt), end: Date.parse(t.finishedAt) })))).toBe(2);
    expect(new Set(ex.tasks.map((t: any) => t.agentId)).size).toBeGreaterThan(1);
  });

  it('pipeline: each stage gets the plan input merged with earlier outputs', async () => {
    const ex = await runPlan(layer(), {
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
}
