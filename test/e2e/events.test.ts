// End-to-end: the local layer's events. A webhook (a real HTTP server here) receives the events of a
// failed execution, each signed with XL_WEBHOOK_SECRET; GET /events streams them as server-sent
// events, and a client that reconnects with Last-Event-ID gets only what came after; `xl events`
// prints them.
import { execFile, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, ROOT, removeStateDir, startLayer, waitFor } from './harness.ts';

const SECRET = 'e2e-webhook-secret';
const TOKEN = 'e2e-events-token';
const auth = { authorization: `Bearer ${TOKEN}` };

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  event: { id: string; at: string; kind: string; executionId?: string; [k: string]: unknown };
}

let hook: Server;
const received: Received[] = [];
let layer: Layer;

beforeAll(async () => {
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ headers: req.headers, body, event: JSON.parse(body) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((ok) => hook.listen(0, '127.0.0.1', ok));
  const port = (hook.address() as AddressInfo).port;
  layer = await startLayer({
    env: {
      XL_POOL: 'coder=1..1,tester=0..0,reviewer=0..0',
      XL_HEARTBEAT_SECONDS: '3',
      XL_API_TOKEN: TOKEN,
      XL_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks/xl`,
      XL_WEBHOOK_SECRET: SECRET,
    },
  });
}, 120_000);

afterAll(async () => {
  await layer?.stop();
  if (layer) await removeStateDir(layer.stateDir);
  await new Promise<void>((ok) => hook.close(() => ok()));
});

async function submit(name: string, command: string): Promise<string> {
  const res = await layer.request('POST', '/executions', { name, pattern: 'sequential', tasks: [{ id: 'only', agentType: 'coder', command }] }, auth);
  expect(res.status).toBe(202);
  return res.body.executionId as string;
}

/** The execution once it has ended (the harness's waitForEnd, with the bearer token). */
function waitForEnd(_layer: Layer, executionId: string, timeoutMs: number): Promise<any> {
  return waitFor(
    `execution ${executionId} to end`,
    async () => {
      const res = await layer.request('GET', `/executions/${executionId}`, undefined, auth);
      return res.status === 200 && res.body.status !== 'RUNNING' ? res.body : undefined;
    },
    timeoutMs,
  );
}

/** Reads GET /events as a stream until `enough` holds of the events read, then disconnects. */
async function readStream(query: string, headers: Record<string, string>, enough: (events: Received['event'][]) => boolean): Promise<Received['event'][]> {
  const controller = new AbortController();
  const res = await fetch(`${layer.url}/events${query}`, { headers: { accept: 'text/event-stream', ...auth, ...headers }, signal: controller.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const events: Received['event'][] = [];
  try {
    while (!enough(events)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended after ${events.length} events`);
      text += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = text.indexOf('\n\n')) >= 0) {
        const frame = text.slice(0, end);
        text = text.slice(end + 2);
        const id = /^id: (.+)$/m.exec(frame)?.[1];
        const data = /^data: (.+)$/m.exec(frame)?.[1];
        if (data) {
          const event = JSON.parse(data) as Received['event'];
          expect(event.id).toBe(id);
          events.push(event);
        }
      }
    }
  } finally {
    controller.abort();
  }
  return events;
}

describe('events of the local layer', () => {
  it('sends a failed execution to the webhook, signed with XL_WEBHOOK_SECRET over the timestamp and body', async () => {
    const executionId = await submit('events-failing', 'echo about to fail; exit 3');
    const ex = await waitForEnd(layer, executionId, 60_000);
    expect(ex.status).toBe('FAILED');
    const failed = await waitFor('the webhook to receive execution.failed', async () => received.find((r) => r.event.kind === 'execution.failed' && r.event.executionId === executionId));
    expect(failed.event).toMatchObject({ kind: 'execution.failed', executionId, name: 'events-failing', status: 'FAILED', id: expect.any(String), at: expect.any(String) });
    expect(failed.headers['content-type']).toBe('application/json');
    const timestamp = failed.headers['x-xl-timestamp'] as string;
    expect(Math.abs(Date.now() / 1000 - Number(timestamp))).toBeLessThan(300);
    const expected = 'sha256=' + createHmac('sha256', SECRET).update(`${timestamp}.${failed.body}`).digest('hex');
    expect(failed.headers['x-xl-signature']).toBe(expected);
    expect(failed.headers['x-xl-event-id']).toBe(failed.event.id);

    // The execution's story, each part signed the same way.
    const story = received.filter((r) => r.event.executionId === executionId);
    expect(story.map((r) => r.event.kind)).toEqual(expect.arrayContaining(['execution.started', 'task.failed', 'execution.failed']));
    expect(story.find((r) => r.event.kind === 'task.failed')!.event).toMatchObject({ taskId: 'only', agentType: 'coder', errorType: 'permanent', attempts: 1 });
    for (const r of story) {
      const ts = r.headers['x-xl-timestamp'] as string;
      expect(r.headers['x-xl-signature'], r.event.kind).toBe('sha256=' + createHmac('sha256', SECRET).update(`${ts}.${r.body}`).digest('hex'));
    }
  }, 90_000);

  it('streams GET /events and, reconnected with Last-Event-ID, sends only the later events', async () => {
    const first = await submit('events-first', `echo '{"ok":true}'`);
    expect((await waitForEnd(layer, first, 60_000)).status).toBe('SUCCEEDED');
    const before = await readStream('?kind=execution', {}, (events) => events.some((e) => e.kind === 'execution.succeeded' && e.executionId === first));
    expect(before.every((e) => e.kind.startsWith('execution.'))).toBe(true);
    const lastSeen = before.at(-1)!.id;

    const second = await submit('events-second', 'exit 3');
    expect((await waitForEnd(layer, second, 60_000)).status).toBe('FAILED');
    const after = await readStream('?kind=execution', { 'last-event-id': lastSeen }, (events) => events.some((e) => e.kind === 'execution.failed' && e.executionId === second));
    expect(after.map((e) => [e.kind, e.executionId])).toEqual([
      ['execution.started', second],
      ['execution.failed', second],
    ]);
    expect(after.every((e) => BigInt(e.id) > BigInt(lastSeen))).toBe(true);

    // Without a stream: the same events as JSON, after an id.
    const listed = await layer.request('GET', `/events?kind=execution&after=${lastSeen}`, undefined, auth);
    expect(listed.body.items.map((e: Received['event']) => e.id)).toEqual(after.map((e) => e.id));
  }, 120_000);

  it('refuses GET /events without the bearer token, and a kind it does not know', async () => {
    expect((await layer.request('GET', '/events')).status).toBe(401);
    const bad = await layer.request('GET', '/events?kind=exec', undefined, auth);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^unknown event kind "exec"/);
  });

  it('xl events prints the kept events, a line each, filtered by kind', async () => {
    const { stdout } = await new Promise<{ stdout: string }>((ok, fail) =>
      execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/xl.ts'), 'events', '--kind', 'execution.failed'], { cwd: ROOT, env: { ...process.env, XL_ENDPOINT: layer.url, XL_API_TOKEN: TOKEN } }, (err, out, errOut) =>
        err ? fail(new Error(`${err.message}\n${errOut}`)) : ok({ stdout: out }),
      ),
    );
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatch(/^\S+Z +execution\.failed +ex-\S+ +FAILED$/);
  }, 60_000);

  it('xl events --follow prints each new event as it happens, one JSON document a line with --json', async () => {
    // One execution before the command starts, so the stream's first lines (the kept events) show it is open.
    const before = await submit('events-before-follow', 'true');
    await waitForEnd(layer, before, 60_000);
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/xl.ts'), 'events', '--follow', '--json', '--kind', 'execution'], {
      cwd: ROOT,
      env: { ...process.env, XL_ENDPOINT: layer.url, XL_API_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const lines = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Received['event']);
    try {
      await waitFor('the kept events', async () => lines().some((e) => e.executionId === before && e.kind === 'execution.succeeded'), 30_000);
      const after = await submit('events-during-follow', 'true');
      await waitFor('the new execution\'s events', async () => lines().some((e) => e.executionId === after && e.kind === 'execution.succeeded'), 60_000);
      expect(lines().filter((e) => e.executionId === after).map((e) => e.kind)).toEqual(['execution.started', 'execution.succeeded']);
      expect(lines().every((e) => e.kind.startsWith('execution.'))).toBe(true);
    } finally {
      child.kill();
    }
  }, 120_000);
});
