// X-Ray in every handler: on Lambda each handler's invocation is a subsegment of the function's
// segment (Powertools' captureLambdaHandler) and every AWS client the handlers build is captured;
// with the local layer's settings the tracer is not even loaded and the clients are left as built.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import xray from 'aws-xray-sdk-core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { localPowertools } from '../../local/layer.ts';

const ROOT = join(import.meta.dirname, '../..');

/** An event each handler takes; with no tables configured, all but GET /openapi.json fail at once. */
const EVENTS: Record<string, unknown> = {
  'api-operations.ts': { httpMethod: 'GET', path: '/openapi.json', resource: '/openapi.json', headers: {}, queryStringParameters: null, body: null },
  'api-executions.ts': { httpMethod: 'GET', path: '/executions', resource: '/executions', headers: {}, queryStringParameters: null, body: null },
  'api-logs.ts': { httpMethod: 'GET', path: '/executions/ex-traced/logs', resource: '/executions/{executionId}/logs', headers: {}, queryStringParameters: null, body: null },
  'api-pool.ts': { httpMethod: 'GET', path: '/agents', resource: '/agents', headers: {}, queryStringParameters: null, body: null },
  'steps.ts': { step: 'prepare', executionId: 'ex-traced' },
  'pool-manager.ts': { source: 'aws.scheduler' },
  'health-monitor.ts': { source: 'aws.scheduler' },
  'execution-events.ts': { reconcile: true },
};

type HandlerModule = { handler: (event: unknown, context: unknown) => Promise<unknown> };

/** The handler modules and functions/lib/observability.ts, loaded afresh under the current env. */
async function load(entry: string): Promise<{ module: HandlerModule; observability: typeof import('../../functions/lib/observability.ts') }> {
  vi.resetModules();
  const module = (await import(join(ROOT, 'functions', entry))) as HandlerModule;
  return { module, observability: await import('../../functions/lib/observability.ts') };
}

const context = { functionName: 'traced', awsRequestId: 'req-1', getRemainingTimeInMillis: () => 30_000 };

beforeEach(() => {
  for (const name of ['XL_TABLE_EXECUTIONS', 'XL_TABLE_AGENTS', 'XL_TABLE_BREAKERS', 'XL_BUCKET', 'XL_QUEUE_URL_PREFIX', 'XL_API_TOKEN']) vi.stubEnv(name, '');
  vi.stubEnv('AWS_REGION', 'eu-west-1');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('on Lambda (tracing on)', () => {
  beforeEach(() => {
    // What Lambda sets; X-Ray's context is given by the test (below) instead of the runtime.
    vi.stubEnv('AWS_EXECUTION_ENV', 'AWS_Lambda_nodejs22.x');
    vi.stubEnv('POWERTOOLS_TRACE_ENABLED', '');
    vi.stubEnv('_HANDLER', 'index.handler');
    vi.stubEnv('POWERTOOLS_SERVICE_NAME', 'xl-traced');
  });

  it('every handler module is one of those checked here', () => {
    const modules = readdirSync(join(ROOT, 'functions')).filter((f) => f.endsWith('.ts'));
    expect(modules.sort()).toEqual(Object.keys(EVENTS).sort());
  });

  for (const [entry, event] of Object.entries(EVENTS)) {
    it(`${entry}'s invocation is a subsegment of the function's segment, closed when it ends`, async () => {
      const { module, observability } = await load(entry);
      expect(observability.tracer?.isTracingEnabled()).toBe(true);
      const segment = new xray.Segment('traced-function');
      await xray.getNamespace().runPromise(async () => {
        xray.setSegment(segment);
        await module.handler(event, context).catch(() => undefined); // failing is fine: the segment is what is looked at
      });
      const handlerSegment = segment.subsegments?.find((s) => s.name === '## index.handler');
      expect(handlerSegment, `no handler subsegment in ${JSON.stringify(segment.subsegments?.map((s) => s.name))}`).toBeDefined();
      expect(handlerSegment!.isClosed()).toBe(true);
      expect((handlerSegment as unknown as { annotations: object }).annotations).toMatchObject({ Service: 'xl-traced', ColdStart: expect.any(Boolean) });
    });
  }

  it('the AWS clients the handlers build are captured for X-Ray', async () => {
    await load('steps.ts');
    const { sfnClient, sqsClient, ddbClient } = await import('../../core/aws/clients.ts');
    for (const client of [sfnClient(), sqsClient(), ddbClient()]) expect(client.middlewareStack.identify().join(' ')).toMatch(/XRaySDKInstrumentation/);
  });
});

describe('in the local layer (its Powertools settings)', () => {
  beforeEach(() => {
    // Even where Lambda's variables are set, the layer's settings win.
    vi.stubEnv('AWS_EXECUTION_ENV', 'AWS_Lambda_nodejs22.x');
    for (const [name, value] of Object.entries(localPowertools({}))) vi.stubEnv(name, value);
  });

  it('turn the tracer off and keep metrics off', () => {
    expect(localPowertools({})).toEqual({ POWERTOOLS_TRACE_ENABLED: 'false', POWERTOOLS_METRICS_DISABLED: 'true' });
    expect(localPowertools({ POWERTOOLS_TRACE_ENABLED: 'true' }).POWERTOOLS_TRACE_ENABLED).toBe('false');
  });

  it('no tracer is loaded, the handlers open no subsegment, and the clients are left as built', async () => {
    const { module, observability } = await load('api-operations.ts');
    expect(observability.tracer).toBeUndefined();
    const segment = new xray.Segment('traced-function');
    await xray.getNamespace().runPromise(async () => {
      xray.setSegment(segment);
      await module.handler(EVENTS['api-operations.ts'], context);
    });
    expect(segment.subsegments ?? []).toEqual([]);
    const { sfnClient, sqsClient } = await import('../../core/aws/clients.ts');
    for (const client of [sfnClient(), sqsClient()]) expect(client.middlewareStack.identify().join(' ')).not.toMatch(/XRay/);
  });
});
