// The loopback model-credential proxy with real sockets: a stand-in upstream on 127.0.0.1 records
// what reaches it, and the claude-code driver runs the stand-in CLI against the proxy.
import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { type IncomingHttpHeaders, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ClaudeCodeDriver } from '../../agent/drivers/claude-code.ts';
import { ModelProxy, type ModelProxyOptions } from '../../agent/model-proxy.ts';
import type { Task } from '../../core/plan.ts';
import { SecretUnavailableError } from '../../core/secrets.ts';

const REAL_KEY = 'sk-ant-api03-real-key-never-in-the-agent';
const CREDS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'session-token-example' };
const REGION = 'us-west-2';
const BEDROCK_HOST = `bedrock-runtime.${REGION}.amazonaws.com`;

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

// ---- the stand-in upstream --------------------------------------------------------------------------

let upstream: Server;
let upstreamUrl: string;
let seen: Seen[] = [];
/** The response of a streaming route, held by the test: write events, end, see it closed. */
let stream: { res?: ServerResponse; closed: Promise<void>; started: Promise<void> };
let resolveStarted: () => void;
let resolveClosed: () => void;

function resetStream() {
  stream = {
    started: new Promise<void>((r) => (resolveStarted = r)),
    closed: new Promise<void>((r) => (resolveClosed = r)),
  };
}

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
      if (/stream/.test(req.url!) || JSON.parse(Buffer.concat(chunks).toString() || '{}').stream === true) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.flushHeaders();
        stream.res = res;
        res.on('close', () => resolveClosed());
        resolveStarted();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_upstream' });
      res.end(JSON.stringify({ id: 'msg_1', type: 'message', content: [{ type: 'text', text: 'hello' }] }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

let proxy: ModelProxy;
async function startProxy(opts: Partial<ModelProxyOptions> & Pick<ModelProxyOptions, 'mode'>): Promise<ModelProxy> {
  const base = opts.mode === 'bedrock' ? { region: REGION, credentials: async () => CREDS, dial: upstreamUrl } : { apiKey: async () => REAL_KEY, upstream: upstreamUrl };
  proxy = await new ModelProxy({ ...base, ...opts } as ModelProxyOptions).listen();
  return proxy;
}
beforeEach(() => {
  seen = [];
  resetStream();
});
afterEach(async () => {
  await proxy?.close();
});

const messages = (body: unknown = { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }) => JSON.stringify(body);

async function post(path: string, headers: Record<string, string>, body = messages(), signal?: AbortSignal) {
  return fetch(`${proxy.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal });
}

// ---- api-key mode -------------------------------------------------------------------------------------

describe('api-key mode', () => {
  it('forwards a request with the per-run token to the upstream with the real key instead', async () => {
    await startProxy({ mode: 'api-key' });
    const session = await proxy.open();
    expect(session.env.ANTHROPIC_BASE_URL).toBe(proxy.url);
    expect(session.env.ANTHROPIC_API_KEY).toMatch(/^xlrun-[0-9a-f]{16}-[0-9a-f]{64}$/);
    expect(JSON.stringify(session.env)).not.toContain(REAL_KEY);

    const res = await post('/v1/messages?beta=true', { 'x-api-key': session.env.ANTHROPIC_API_KEY!, 'anthropic-version': '2023-06-01', 'anthropic-beta': 'x' });
    expect(res.status).toBe(200);
    expect(res.headers.get('request-id')).toBe('req_upstream');
    expect(((await res.json()) as { id: string }).id).toBe('msg_1');

    expect(seen).toHaveLength(1);
    expect(seen[0]!.url).toBe('/v1/messages?beta=true');
    expect(seen[0]!.headers['x-api-key']).toBe(REAL_KEY);
    expect(seen[0]!.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen[0]!.headers['anthropic-beta']).toBe('x');
    expect(seen[0]!.headers.host).toBe(new URL(upstreamUrl).host);
    expect(JSON.stringify(seen[0]!.headers)).not.toContain(session.env.ANTHROPIC_API_KEY);
    expect(JSON.parse(seen[0]!.body.toString())).toEqual(JSON.parse(messages()));
    session.close();
  });

  it('answers 401 to a missing, wrong or revoked token, and nothing reaches the upstream', async () => {
    await startProxy({ mode: 'api-key' });
    const session = await proxy.open();
    const token = session.env.ANTHROPIC_API_KEY!;
    const wrong = token.slice(0, -1) + (token.endsWith('0') ? '1' : '0');
    expect((await post('/v1/messages', {})).status).toBe(401);
    expect((await post('/v1/messages', { 'x-api-key': wrong })).status).toBe(401);
    expect((await post('/v1/messages', { 'x-api-key': REAL_KEY })).status).toBe(401);
    expect((await post('/v1/messages', { authorization: `Bearer ${token}` })).status).toBe(401);
    session.close();
    const revoked = await post('/v1/messages', { 'x-api-key': token });
    expect(revoked.status).toBe(401);
    expect(await revoked.json()).toEqual({ type: 'error', error: { type: 'authentication_error', message: 'the model proxy needs a valid per-run token' } });
    expect(seen).toEqual([]);
  });

  it('forwards only the model API routes the CLI uses', async () => {
    await startProxy({ mode: 'api-key' });
    const session = await proxy.open();
    const key = { 'x-api-key': session.env.ANTHROPIC_API_KEY! };
    expect((await post('/v1/complete', key)).status).toBe(404);
    expect((await post('/v1/messages/batches', key)).status).toBe(404);
    expect((await fetch(`${proxy.url}/v1/messages`, { method: 'DELETE', headers: key })).status).toBe(404);
    expect(seen).toEqual([]);
    expect((await post('/v1/messages/count_tokens', key)).status).toBe(200);
    expect((await fetch(`${proxy.url}/v1/models`, { headers: key })).status).toBe(200);
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /v1/messages/count_tokens', 'GET /v1/models']);
    session.close();
  });

  it('refuses a body over the cap (413), announced or not, without calling the upstream', async () => {
    await startProxy({ mode: 'api-key', maxBodyBytes: 1024 });
    const session = await proxy.open();
    const key = { 'x-api-key': session.env.ANTHROPIC_API_KEY! };
    const big = messages({ messages: [{ role: 'user', content: 'x'.repeat(4096) }] });
    const announced = await post('/v1/messages', key, big);
    expect(announced.status).toBe(413);
    expect(((await announced.json()) as { error: { type: string } }).error.type).toBe('request_too_large');
    // Chunked: no content-length, the cap is found while reading.
    const chunked = await fetch(`${proxy.url}/v1/messages`, {
      method: 'POST',
      headers: key,
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 4; i++) c.enqueue(new TextEncoder().encode('y'.repeat(1000)));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(seen).toEqual([]);
    expect((await post('/v1/messages', key)).status).toBe(200);
    session.close();
  });

  it('streams server-sent events through as they come', async () => {
    await startProxy({ mode: 'api-key' });
    const session = await proxy.open();
    const res = await post('/v1/messages', { 'x-api-key': session.env.ANTHROPIC_API_KEY! }, messages({ stream: true }));
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    await stream.started;
    const reader = res.body!.getReader();
    stream.res!.write('event: message_start\ndata: {"type":"message_start"}\n\n');
    // The first event arrives while the upstream still holds the rest back.
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('message_start');
    stream.res!.write('event: message_stop\ndata: {"type":"message_stop"}\n\n');
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('message_stop');
    stream.res!.end();
    expect((await reader.read()).done).toBe(true);
    session.close();
  });

  it('cuts the upstream request when the CLI goes away, and when the run ends', async () => {
    await startProxy({ mode: 'api-key' });
    const session = await proxy.open();
    const key = { 'x-api-key': session.env.ANTHROPIC_API_KEY! };
    const ac = new AbortController();
    const res = await post('/v1/messages', key, messages({ stream: true }), ac.signal);
    await stream.started;
    ac.abort();
    await res.body?.cancel().catch(() => undefined);
    await stream.closed; // the upstream saw its client leave

    resetStream();
    const second = await post('/v1/messages', key, messages({ stream: true }));
    await stream.started;
    session.close(); // the run ended: its streams end with it
    await stream.closed;
    await expect(second.text()).rejects.toThrow();
  });
});

// ---- bedrock mode -------------------------------------------------------------------------------------

/** SigV4 as AWS documents it, written out here so the proxy's signature is checked by other code than made it. */
function expectedAuthorization(req: Seen): string {
  const auth = String(req.headers.authorization);
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(auth)![1]!;
  const amzDate = String(req.headers['x-amz-date']);
  const day = amzDate.slice(0, 8);
  const [path, query = ''] = req.url.split('?');
  // Every service but S3 encodes each path segment again (the wire path is already encoded once).
  const canonicalUri = path!.split('/').map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/');
  const canonicalQuery = query.split('&').filter(Boolean).sort().join('&');
  const canonicalHeaders = signedHeaders.split(';').map((h) => `${h}:${String(req.headers[h]).trim()}\n`).join('');
  const hash = (x: string | Buffer) => createHash('sha256').update(x).digest('hex');
  const canonical = [req.method, canonicalUri, canonicalQuery, canonicalHeaders, signedHeaders, hash(req.body)].join('\n');
  const scope = `${day}/${REGION}/bedrock/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, hash(canonical)].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${CREDS.secretAccessKey}`).update(day).digest();
  for (const part of [REGION, 'bedrock', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${CREDS.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}

describe('bedrock mode', () => {
  // The CLI sends the model id's colon as it is; other clients encode it (%3A). Both must verify.
  const invoke = '/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke';
  const invokeEncoded = '/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke';

  it('gives the CLI the proxy as its Bedrock endpoint and the token as a custom header', async () => {
    await startProxy({ mode: 'bedrock' });
    const session = await proxy.open();
    expect(session.env).toMatchObject({
      CLAUDE_CODE_USE_BEDROCK: '1',
      ANTHROPIC_BEDROCK_BASE_URL: proxy.url,
      CLAUDE_CODE_SKIP_BEDROCK_AUTH: '1',
      AWS_REGION: REGION,
    });
    expect(session.env.ANTHROPIC_CUSTOM_HEADERS).toMatch(/^x-api-key: xlrun-[0-9a-f]{16}-[0-9a-f]{64}$/);
    expect(JSON.stringify(session.env)).not.toMatch(/AKIDEXAMPLE|wJalrXUtnFEMI|session-token-example/);
    session.close();
  });

  it('signs each request for bedrock in the worker\'s region with the worker\'s credentials', async () => {
    await startProxy({ mode: 'bedrock' });
    const session = await proxy.open();
    const token = session.env.ANTHROPIC_CUSTOM_HEADERS!.split(': ')[1]!;
    const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    const res = await post(invoke, { 'x-api-key': token, accept: 'application/json', 'anthropic-version': 'ignored', 'x-stainless-os': 'Linux' }, body);
    expect(res.status).toBe(200);

    const req = seen[0]!;
    expect(req.url).toBe(invoke);
    expect(req.headers.host).toBe(BEDROCK_HOST);
    expect(req.headers['x-api-key']).toBeUndefined();
    expect(req.headers['x-amz-security-token']).toBe(CREDS.sessionToken);
    expect(req.headers.authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/\\d{8}/${REGION}/bedrock/aws4_request, SignedHeaders=[^,]*host[^,]*, Signature=[0-9a-f]{64}$`));
    expect(req.headers.authorization).toBe(expectedAuthorization(req));
    // What the CLI's SDK adds beyond Bedrock's API stays behind.
    expect(req.headers['x-stainless-os']).toBeUndefined();
    expect(req.body.toString()).toBe(body);
    session.close();
  });

  it('streams Bedrock\'s event stream through and refuses other routes and bad tokens', async () => {
    await startProxy({ mode: 'bedrock' });
    const session = await proxy.open();
    const token = session.env.ANTHROPIC_CUSTOM_HEADERS!.split(': ')[1]!;
    expect((await post('/v1/messages', { 'x-api-key': token })).status).toBe(404);
    expect((await post(invoke, { 'x-api-key': 'xlrun-0000000000000000-' + '0'.repeat(64) })).status).toBe(401);
    expect(seen).toEqual([]);

    const res = await post(invokeEncoded.replace(/invoke$/, 'invoke-with-response-stream'), { 'x-api-key': token, accept: 'application/vnd.amazon.eventstream' });
    await stream.started;
    const reader = res.body!.getReader();
    stream.res!.write(Buffer.from([0, 0, 0, 16, 0, 0, 0, 0]));
    expect(Array.from((await reader.read()).value!)).toEqual([0, 0, 0, 16, 0, 0, 0, 0]);
    stream.res!.end();
    expect(seen[0]!.url).toBe(invokeEncoded.replace(/invoke$/, 'invoke-with-response-stream'));
    expect(seen[0]!.headers.authorization).toBe(expectedAuthorization(seen[0]!));
    session.close();
  });
});

// ---- through the claude-code driver -----------------------------------------------------------------

describe('the claude-code driver with model access', () => {
  const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'xl-model-proxy-test-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('gives the CLI the loopback URL and a per-run token, never the key, and revokes the token after the run', async () => {
    await startProxy({ mode: 'api-key' });
    const workspace = await mkdtemp(join(root, 'ws-'));
    const envOut = join(root, 'env.json');
    const callOut = join(root, 'call.json');
    const driver = new ClaudeCodeDriver({
      bin: process.execPath,
      binArgs: [join(FIXTURES, 'claude-standin.mjs')],
      baseEnv: { PATH: process.env.PATH, ANTHROPIC_API_KEY: REAL_KEY },
      modelAccess: proxy,
    });
    const task = { id: 't1', agentType: 'coder', instructions: 'Change a', timeoutSeconds: 30, failureStrategy: 'stop', priority: 'normal' } as Task;
    const result = await driver.run(task, {
      workspace,
      input: {},
      signal: new AbortController().signal,
      env: {
        XL_TASK_ID: 't1',
        XL_STANDIN_TRANSCRIPT: join(FIXTURES, 'claude-transcripts', 'success.jsonl'),
        XL_STANDIN_ENV_OUT: envOut,
        XL_STANDIN_MODEL_CALL_OUT: callOut,
      },
      onSpawn: () => undefined,
    });
    expect(result.status).toBe('completed');

    const got = JSON.parse(await readFile(envOut, 'utf8')) as { argv: string[]; env: Record<string, string> };
    expect(got.env.ANTHROPIC_BASE_URL).toBe(proxy.url);
    expect(got.env.ANTHROPIC_API_KEY).toMatch(/^xlrun-/);
    expect(JSON.stringify(got)).not.toContain(REAL_KEY);
    // The CLI's call went through with its token; the upstream saw the real key.
    expect(JSON.parse(await readFile(callOut, 'utf8'))).toMatchObject({ status: 200 });
    expect(seen.map((s) => s.headers['x-api-key'])).toEqual([REAL_KEY]);
    // After the run, its token is worth nothing.
    expect((await post('/v1/messages', { 'x-api-key': got.env.ANTHROPIC_API_KEY! })).status).toBe(401);
  });

  it('fails the run as a dependency failure, without starting the CLI, when the key cannot be read', async () => {
    await startProxy({
      mode: 'api-key',
      apiKey: () => Promise.reject(new SecretUnavailableError('xl/anthropic', 'access-denied', 'access denied (AccessDeniedException)')),
    });
    const envOut = join(root, 'env-unread.json');
    const driver = new ClaudeCodeDriver({ bin: process.execPath, binArgs: [join(FIXTURES, 'claude-standin.mjs')], baseEnv: { PATH: process.env.PATH }, modelAccess: proxy });
    const spawned: number[] = [];
    const result = await driver.run({ id: 't1', agentType: 'coder', instructions: 'x', timeoutSeconds: 30, failureStrategy: 'stop', priority: 'normal' } as Task, {
      workspace: await mkdtemp(join(root, 'ws-')),
      input: {},
      signal: new AbortController().signal,
      env: { XL_STANDIN_ENV_OUT: envOut },
      onSpawn: (pgid) => spawned.push(pgid),
    });
    expect(result).toEqual({ status: 'failed', error: { type: 'dependency', source: 'model-api', message: 'no model access: secret "xl/anthropic": access denied (AccessDeniedException)' } });
    expect(spawned).toEqual([]);
  });
});
