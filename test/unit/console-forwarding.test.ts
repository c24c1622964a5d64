// `xl console`'s forwarding server against a stand-in API Gateway endpoint: what reaches the API is
// signed with SigV4 from the default credential chain (here the environment's keys), and carries no
// credential of the browser's; a request that is not the console's own is refused before it is signed.
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { type IncomingMessage, type Server, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedHeaders } from '../../cli/aws.ts';
import { CONSOLE_HEADER, startConsoleServer } from '../../cli/console.ts';

const KEYS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const saved = { ...process.env };

interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** Whether the Authorization header is the SigV4 signature of the request as received. */
  valid: boolean;
}

let api: Server;
let apiUrl: string;
/** A stand-in S3: what reached it, and the bytes it answers with. */
let bucket: Server;
let bucketUrl: string;
const bucketHits: { path: string; headers: IncomingMessage['headers'] }[] = [];
let forwarder: Awaited<ReturnType<typeof startConsoleServer>>;
const received: Received[] = [];

/** Signs the request as received again, at the time it says it was signed, and compares. */
async function verify(req: IncomingMessage, body: string): Promise<boolean> {
  const auth = String(req.headers.authorization ?? '');
  const names = /SignedHeaders=([^,]+)/.exec(auth)?.[1]?.split(';');
  const at = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(String(req.headers['x-amz-date'] ?? ''));
  if (!names || !at) return false;
  const url = new URL(req.url ?? '/', apiUrl);
  const signer = new SignatureV4({ service: 'execute-api', region: 'eu-west-1', credentials: KEYS, sha256: Sha256 });
  const again = await signer.sign(
    {
      method: req.method!,
      protocol: 'http:',
      hostname: url.hostname,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries(names.map((n) => [n, String(req.headers[n])])),
      body: body || undefined,
    },
    { signingDate: new Date(`${at[1]}-${at[2]}-${at[3]}T${at[4]}:${at[5]}:${at[6]}Z`) },
  );
  return again.headers.authorization === auth;
}

beforeAll(async () => {
  Object.assign(process.env, { ...{ AWS_ACCESS_KEY_ID: KEYS.accessKeyId, AWS_SECRET_ACCESS_KEY: KEYS.secretAccessKey }, AWS_REGION: 'eu-west-1' });
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  delete process.env.XL_API_TOKEN;
  api = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    received.push({ method: req.method!, path: req.url!, headers: req.headers, body, valid: await verify(req, body) });
    if (req.url!.includes('/artifacts/elsewhere')) {
      res.writeHead(302, { location: 'http://203.0.113.7/artifacts/x' });
      return void res.end('{}');
    }
    if (req.url!.includes('/artifacts/')) {
      // As the API Lambda answers on AWS: a 302 to a presigned GET (here, the stand-in bucket).
      res.writeHead(302, { location: `${bucketUrl}/artifacts/ex-1/t/1/workspace.diff?X-Amz-Signature=abc`, 'content-type': 'application/json' });
      return void res.end('{}');
    }
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ executionId: 'ex-1', status: 'RUNNING' }));
  });
  await new Promise<void>((ok) => api.listen(0, '127.0.0.1', ok));
  bucket = createServer((req, res) => {
    bucketHits.push({ path: req.url!, headers: req.headers });
    res.writeHead(200, { 'content-type': 'text/x-diff; charset=utf-8', 'content-disposition': 'attachment; filename="workspace.diff"' });
    res.end('+added\n');
  });
  await new Promise<void>((ok) => bucket.listen(0, '127.0.0.1', ok));
  bucketUrl = `http://127.0.0.1:${(bucket.address() as AddressInfo).port}`;
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/v1`;
  // The stand-in is not on an execute-api host name: the signer API Gateway would get is handed in.
  forwarder = await startConsoleServer({ endpoint: { url: apiUrl, source: 'test' }, sign: signedHeaders });
});

afterAll(async () => {
  process.env = { ...saved };
  await forwarder?.close();
  await new Promise((ok) => api?.close(ok));
  await new Promise((ok) => bucket?.close(ok));
});

const consoleCall = (path: string, init: RequestInit = {}) =>
  fetch(forwarder.url + path, { ...init, headers: { [CONSOLE_HEADER]: '1', 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });

describe('xl console against a stand-in API Gateway endpoint', () => {
  it('forwards the console’s call signed with a valid SigV4 signature, under the endpoint’s stage path', async () => {
    received.length = 0;
    const res = await consoleCall('/executions?limit=5', { method: 'POST', body: '{"pattern":"sequential","tasks":[]}' });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ executionId: 'ex-1', status: 'RUNNING' });
    expect(received).toHaveLength(1);
    const [got] = received;
    expect(got).toMatchObject({ method: 'POST', path: '/v1/executions?limit=5', body: '{"pattern":"sequential","tasks":[]}', valid: true });
    expect(got!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/execute-api\/aws4_request, /);
  });

  it('passes no credential of the browser’s on: a bearer token it sends is replaced by the signature', async () => {
    received.length = 0;
    await consoleCall('/agents', { headers: { authorization: 'Bearer from-the-browser', cookie: 'session=1' } });
    expect(received[0]!.valid).toBe(true);
    expect(received[0]!.headers.authorization).not.toContain('from-the-browser');
    expect(received[0]!.headers.cookie).toBeUndefined();
  });

  it('serves the console page itself without calling the API', async () => {
    received.length = 0;
    const res = await fetch(`${forwarder.url}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await res.text()).toContain('/console/app.js');
    expect(received).toHaveLength(0);
  });

  it('refuses, unsigned, a call without the console’s header, from another origin, or for another host name', async () => {
    received.length = 0;
    expect((await fetch(`${forwarder.url}/agents`)).status).toBe(403);
    expect((await consoleCall('/agents', { headers: { origin: 'https://evil.example' } })).status).toBe(403);
    const port = new URL(forwarder.url).port;
    const rebound = await new Promise<number>((ok, fail) =>
      request({ host: '127.0.0.1', port, path: '/agents', headers: { host: `evil.example:${port}`, [CONSOLE_HEADER]: '1' } }, (res) => {
        res.resume();
        ok(res.statusCode!);
      })
        .on('error', fail)
        .end(),
    );
    expect(rebound).toBe(403);
    expect(received).toHaveLength(0);
  });

  it('follows the API’s redirect to a presigned artifact GET itself, without the signature, and hands the page the bytes', async () => {
    received.length = 0;
    bucketHits.length = 0;
    const res = await consoleCall('/executions/ex-1/tasks/t/artifacts/workspace.diff');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('+added\n');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="workspace.diff"');
    expect(received).toHaveLength(1);
    expect(received[0]!.valid).toBe(true);
    expect(bucketHits).toHaveLength(1);
    expect(bucketHits[0]!.path).toBe('/artifacts/ex-1/t/1/workspace.diff?X-Amz-Signature=abc');
    // S3 refuses a second authorization, and the API's credentials are not the bucket's business.
    expect(Object.keys(bucketHits[0]!.headers).filter((h) => h === 'authorization' || h.startsWith('x-amz-') || h === CONSOLE_HEADER)).toEqual([]);
  });

  it('does not follow a redirect to plain http off this machine', async () => {
    bucketHits.length = 0;
    const res = await consoleCall('/executions/ex-1/tasks/t/artifacts/elsewhere');
    expect(res.status).toBe(502);
    expect((await res.json()).error.message).toMatch(/redirected to http:\/\/203\.0\.113\.7, which is neither https nor this machine/);
    expect(bucketHits).toHaveLength(0);
  });
});
