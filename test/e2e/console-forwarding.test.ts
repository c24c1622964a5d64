// `xl console` against a real local layer (guarded by XL_API_TOKEN): the command prints its URL,
// serves the console, and the console's API calls, the event stream included, go through it to the
// layer with the token xl holds.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, ROOT, removeStateDir, startLayer, waitFor } from './harness.ts';

const TOKEN = 'console-forwarding-token';
let layer: Layer;
let xl: ChildProcess;
let url: string;

beforeAll(async () => {
  layer = await startLayer({ env: { XL_API_TOKEN: TOKEN, XL_POOL: 'coder=1..2', XL_HEARTBEAT_SECONDS: '3' } });
  xl = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/xl.ts'), 'console', '--endpoint', layer.url], {
    cwd: ROOT,
    env: { ...process.env, XL_API_TOKEN: TOKEN, XL_CONSOLE_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  xl.stdout!.on('data', (d) => (out += d));
  xl.stderr!.on('data', (d) => (out += d));
  url = await waitFor(`xl console to print its URL (${out})`, async () => /console at (http:\/\/127\.0\.0\.1:\d+)\/console/.exec(out)?.[1], 30_000);
});

afterAll(async () => {
  if (xl && xl.exitCode === null) {
    const exited = new Promise((ok) => xl.once('exit', ok));
    xl.kill('SIGTERM');
    await exited;
  }
  await layer?.stop();
  if (layer) await removeStateDir(layer.stateDir);
});

const call = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(url + path, { method, headers: { 'x-xl-console': '1', 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
};

describe('xl console against the local layer', () => {
  it('serves the console page and its script', async () => {
    const page = await fetch(`${url}/console`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/console/app.js">');
    const script = await fetch(`${url}/console/app.js`);
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect((await script.text()).length).toBeGreaterThan(1000);
  });

  it('runs a plan through it with the token xl holds, the browser holding none', async () => {
    const started = await call('POST', '/executions', { pattern: 'sequential', tasks: [{ id: 'one', agentType: 'coder', command: `echo '{"ok":true}'` }] });
    expect(started.status).toBe(202);
    const done = await waitFor('the execution to succeed', async () => {
      const { body } = await call('GET', `/executions/${started.body.executionId}`);
      return body.status === 'SUCCEEDED' ? body : undefined;
    }, 45_000);
    expect(done.tasks[0].output).toEqual({ ok: true });
  });

  it('streams the layer’s events through', async () => {
    const abort = new AbortController();
    const res = await fetch(`${url}/events`, { headers: { 'x-xl-console': '1', accept: 'text/event-stream' }, signal: abort.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toMatch(/^(id: |:)/m);
    abort.abort();
  });

  it('refuses a call that is not the console’s', async () => {
    expect((await fetch(`${url}/executions`)).status).toBe(403);
  });
});
