// The Lambda bundles leave out what no function runs (infra/constructs/functions.ts, BUNDLE_ALIASES):
// what is left out must not be missed by what is kept.
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gte } from '../../functions/lib/semver-gte.ts';
import { BUNDLE_OPTIONS } from '../../infra/constructs/functions.ts';

const ROOT = join(import.meta.dirname, '../..');

describe('the semver stand-in', () => {
  it.each([
    ['22.23.3', '8.0.0', true],
    ['8.0.0', '8.0.0', true],
    ['7.10.1', '8.0.0', false],
    ['2.7.15', '2.7.9', true],
    ['2.10.0', '2.9.99', true],
    ['v2.1.0', '2.1.1', false],
  ])('compares versions as semver does: %s >= %s is %s', (a, b, expected) => {
    expect(gte(a, b)).toBe(expected);
  });

  it('refuses a version that is not plain major.minor.patch, naming it', () => {
    expect(() => gte('22.0.0-rc.1', '8.0.0')).toThrow('"22.0.0-rc.1" is not a plain major.minor.patch version');
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

  it('loads the X-Ray tracer, and its S3 and CloudWatch Logs clients still build and send', async () => {
    const outfile = join(dir, 'probe.mjs');
    // The clients that carry event streams (S3, CloudWatch Logs), and the tracer that needs semver.
    const contents = `
      import { Tracer } from '@aws-lambda-powertools/tracer';
      import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
      import { CloudWatchLogsClient, FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
      export const tracer = new Tracer({ enabled: false });
      export async function probe(endpoint) {
        const config = { endpoint, region: 'eu-west-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 };
        const sent = [];
        for (const send of [
          () => new S3Client({ ...config, forcePathStyle: true }).send(new GetObjectCommand({ Bucket: 'payloads', Key: 'plan.json' })),
          () => new CloudWatchLogsClient(config).send(new FilterLogEventsCommand({ logGroupName: 'xl' })),
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
    expect(inputs.filter((i) => /event-streams\/|node_modules\/semver\//.test(i))).toEqual([]);

    const probe = (await import(outfile)) as { probe: (endpoint: string) => Promise<string[]> };
    const { port } = server.address() as AddressInfo;
    expect(await probe.probe(`http://127.0.0.1:${port}`)).toEqual(['NoSuchKey', 'ResourceNotFoundException']);
    expect(requests).toEqual(['GET /payloads/plan.json?x-id=GetObject', 'POST /']);
  });

  it('the API\'s pool function answers a bad request in zod\'s English, without the classic API', async () => {
    const outfile = join(dir, 'api-pool.mjs');
    const { metafile } = await build({ ...BUNDLE_OPTIONS, mainFields: [...BUNDLE_OPTIONS.mainFields], entryPoints: [join(ROOT, 'functions/api-pool.ts')], outfile, metafile: true, logLevel: 'error' });
    const bundled = Object.values(metafile.outputs).flatMap((o) => Object.entries(o.inputs).filter(([, i]) => i.bytesInOutput > 0).map(([path]) => path));
    expect(bundled.filter((path) => path.includes('zod/v4/classic'))).toEqual([]);
    // As the local layer runs it: no tracer (it is read as the module loads).
    process.env.POWERTOOLS_TRACE_ENABLED = 'false';
    try {
      const { handler } = (await import(outfile)) as { handler: (event: unknown, context: unknown) => Promise<{ statusCode: number; body: string }> };
      const res = await handler({ httpMethod: 'POST', path: '/agents', resource: '/agents', headers: {}, body: '{"agentType":"coder","count":0,"extra":1}' }, {});
      expect(res.statusCode).toBe(400);
      expect(JSON.parse(res.body).error.details).toEqual([
        { path: '/count', message: 'Too small: expected number to be >=1' },
        { path: '', message: 'Unrecognized key: "extra"' },
      ]);
    } finally {
      delete process.env.POWERTOOLS_TRACE_ENABLED;
    }
  });
});
