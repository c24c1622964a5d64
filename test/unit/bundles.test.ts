// The Lambda bundles leave out what no function runs (infra/constructs/functions.ts, BUNDLE_ALIASES):
// what is left out must not be missed by what is kept.
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import LRUCache from '../../functions/lib/lru-cache.ts';
import { BUNDLE_OPTIONS } from '../../infra/constructs/functions.ts';

const ROOT = join(import.meta.dirname, '../..');

describe('the LRU cache stand-in', () => {
  it('drops the least recently used entry past its capacity, a read counting as a use', () => {
    const cache = new LRUCache<string, number>(2).set('a', 1).set('b', 2);
    expect(cache.get('a')).toBe(1);
    cache.set('c', 3);
    expect([cache.has('a'), cache.has('b'), cache.has('c'), cache.size]).toEqual([true, false, true, 2]);
  });

  it('peeks without counting a use, and overwrites in place', () => {
    const cache = new LRUCache<string, number>(2).set('a', 1).set('b', 2);
    expect(cache.peek('a')).toBe(1);
    cache.set('b', 20).set('c', 3);
    expect([cache.peek('a'), cache.peek('b'), cache.peek('c')]).toEqual([undefined, 20, 3]);
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it('refuses a capacity that is not a positive whole number, naming it', () => {
    expect(() => new LRUCache(0)).toThrow('capacity must be a positive whole number, got 0');
  });
});

describe('a handler bundled as deployed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xl-bundle-test-'));
  const requests: string[] = [];
  let server: Server;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      // Each service's own "not found": S3's in XML, CloudWatch Logs' in JSON.
      if (req.method === 'GET') res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code><Message>no</Message></Error>');
      else res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' }).end('{"__type":"ResourceNotFoundException","message":"no"}');
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
  });
  afterAll(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('its S3, CloudWatch Logs and DynamoDB clients still build and send', async () => {
    const outfile = join(dir, 'probe.mjs');
    // The clients that carry event streams (S3, CloudWatch Logs), and the one with an endpoint cache (DynamoDB).
    const contents = `
      import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
      import { CloudWatchLogsClient, FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
      import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
      export async function probe(endpoint) {
        const config = { endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 };
        const sent = [];
        for (const send of [
          () => new S3Client({ ...config, forcePathStyle: true }).send(new GetObjectCommand({ Bucket: 'payloads', Key: 'plan.json' })),
          () => new CloudWatchLogsClient(config).send(new FilterLogEventsCommand({ logGroupName: 'xl' })),
          () => new DynamoDBClient(config).send(new GetItemCommand({ TableName: 'executions', Key: { pk: { S: 'x' } } })),
        ]) sent.push(await send().then(() => 'answered', (err) => err.name));
        return sent;
      }`;
    const { metafile } = await build({
      ...BUNDLE_OPTIONS,
      mainFields: [...BUNDLE_OPTIONS.mainFields],
      stdin: { contents, resolveDir: ROOT, loader: 'js', sourcefile: 'probe.js' },
      outfile,
      metafile: true,
      logLevel: 'error',
    });
    const inputs = Object.keys(metafile.inputs);
    expect(inputs.filter((i) => /event-streams\/|node_modules\/mnemonist\//.test(i))).toEqual([]);

    const probe = (await import(outfile)) as { probe: (endpoint: string) => Promise<string[]> };
    const { port } = server.address() as AddressInfo;
    expect(await probe.probe(`http://127.0.0.1:${port}`)).toEqual(['NoSuchKey', 'ResourceNotFoundException', 'ResourceNotFoundException']);
    expect(requests).toEqual(['GET /payloads/plan.json?x-id=GetObject', 'POST /', 'POST /']);
  });

  it('the API\'s pool function answers a bad request in zod\'s English, without the classic API', async () => {
    const outfile = join(dir, 'api-pool.mjs');
    const { metafile } = await build({ ...BUNDLE_OPTIONS, mainFields: [...BUNDLE_OPTIONS.mainFields], entryPoints: [join(ROOT, 'functions/api-pool.ts')], outfile, metafile: true, logLevel: 'error' });
    const bundled = Object.values(metafile.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([path]) => path));
    expect(bundled.filter((path) => path.includes('zod/v4/classic'))).toEqual([]);
    const { handler } = (await import(outfile)) as { handler: (event: unknown, context: unknown) => Promise<{ statusCode: number; body: string }> };
    const res = await handler({ httpMethod: 'POST', path: '/agents', resource: '/agents', headers: {}, body: '{"agentType":"coder","count":0,"extra":1}' }, {});
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).error.details).toEqual([
      { path: '/count', message: 'Too small: expected number to be >=1' },
      { path: '', message: 'Unrecognized key: "extra"' },
    ]);
  });
});

describe('every handler bundled as deployed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xl-bundle-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const entries = readdirSync(join(ROOT, 'functions')).filter((f) => f.endsWith('.ts'));

  // Traces come from Lambda's active tracing, and SDK-call spans from the opt-in OpenTelemetry layer
  // (infra/constructs/functions.ts, OTEL_EXEC_WRAPPER): no tracing SDK is part of a bundle.
  it.each(entries)('%s carries no X-Ray SDK, Powertools tracer or OpenTelemetry SDK', async (entry) => {
    const { metafile } = await build({ ...BUNDLE_OPTIONS, mainFields: [...BUNDLE_OPTIONS.mainFields], entryPoints: [join(ROOT, 'functions', entry)], outfile: join(dir, `${entry}.mjs`), metafile: true, logLevel: 'error', write: false });
    const inputs = Object.keys(metafile.inputs);
    expect(inputs.filter((i) => /node_modules\/(aws-xray-sdk|cls-hooked|@aws-lambda-powertools\/tracer|@opentelemetry)/.test(i))).toEqual([]);
  });
});
