// The API as API Gateway declares it: request models in JSON Schema draft 4 from the zod schemas,
// and the handler routing the events API Gateway sends for a declared resource.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
// API Gateway validates models as draft 4; ajv-draft-04 is the draft 4 build of ajv (it comes with
// @seriousme/openapi-schema-validator).
import Ajv04Module from 'ajv-draft-04';
import YAML from 'yaml';
import * as z from 'zod';
import { describe, expect, it } from 'vitest';
import { draft04Schema, gatewayRoutes } from '../../core/openapi.ts';
import { handler, routes } from '../support/api.ts';

// A CommonJS module whose exports are the class; `.default` is the class too, for TypeScript's sake.
const Ajv04 = Ajv04Module.default;
const ROOT = join(import.meta.dirname, '../..');
const model = (name: string) => gatewayRoutes().find((r) => r.body?.model === name)!.body!.schema;

describe('API Gateway request models', () => {
  it('are draft 4, with every reference inlined, well under the 400 KB a model may have', () => {
    for (const route of gatewayRoutes().filter((r) => r.body)) {
      const schema = route.body!.schema;
      expect(schema.$schema).toBe('http://json-schema.org/draft-04/schema#');
      expect(JSON.stringify(schema)).not.toContain('$ref');
      expect(JSON.stringify(schema).length).toBeLessThan(64 * 1024);
    }
  });

  it('accept every plan in examples/ and refuse broken ones, as a draft 4 validator reads them', () => {
    const validate = new Ajv04({ strict: true, allErrors: true }).compile(model('Plan'));
    const dir = join(ROOT, 'examples');
    for (const file of readdirSync(dir).filter((f) => /\.(json|ya?ml)$/.test(f))) {
      const text = readFileSync(join(dir, file), 'utf8');
      const plan: unknown = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
      expect(validate(plan), `${file}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    const task = { id: 't', agentType: 'coder', command: 'true' };
    expect(validate({ pattern: 'sequential', tasks: [{ ...task, instructions: 'also' }] })).toBe(false);
    expect(validate({ pattern: 'sequential', tasks: [{ ...task, agentType: 'wizard' }] })).toBe(false);
    expect(validate({ pattern: 'sequential', tasks: [task], surprise: true })).toBe(false);
    expect(validate({ pattern: 'sequential', tasks: [] })).toBe(false);
  });

  it("hold POST /agents, PUT /pool/{agentType} and POST /dead-letters/redrive to their zod schemas' rules", () => {
    const ajv = new Ajv04({ strict: true });
    const agents = ajv.compile(model('StartAgentsRequest'));
    expect(agents({ agentType: 'coder', count: 2 })).toBe(true);
    expect(agents({ agentType: 'coder', count: 51 })).toBe(false);
    expect(agents({ count: 1 })).toBe(false);
    const bounds = ajv.compile(model('PoolBoundsRequest'));
    expect(bounds({ min: 0, max: 3 })).toBe(true);
    expect(bounds({ min: -1 })).toBe(false);
    // An empty body is validated as {} (the redrive's body is optional).
    expect(ajv.compile(model('RedriveDeadLettersRequest'))({})).toBe(true);
  });

  it('refuse, naming where, a zod schema that draft 4 cannot say (API Gateway would fail the deploy)', () => {
    const schema = z.object({ ref: z.string().meta({ examples: ['main'] }) });
    expect(() => draft04Schema(schema)).toThrow('API Gateway model: /properties/ref has "examples", not a JSON Schema draft 4 keyword');
  });

  it('are declared for the same routes the handler serves', () => {
    const declared = gatewayRoutes().map((r) => `${r.method} ${r.path}`).sort();
    expect(declared).toEqual(routes.map((r) => `${r.method} ${r.template}`).sort());
  });
});

/** An event as API Gateway's Lambda proxy integration sends it for a declared resource. */
function gatewayEvent(method: string, resource: string, path: string, pathParameters: Record<string, string> | null, body?: unknown): APIGatewayProxyEvent {
  return {
    httpMethod: method,
    resource,
    path,
    pathParameters,
    headers: { 'content-type': 'application/json' },
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    body: body === undefined ? null : JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: { stage: 'v1', resourcePath: resource, httpMethod: method, path: `/v1${path}` },
  } as unknown as APIGatewayProxyEvent;
}
const call = async (event: APIGatewayProxyEvent) => {
  const res = (await handler(event, {} as Context)) as APIGatewayProxyResult;
  return { status: res.statusCode, body: JSON.parse(res.body) };
};

describe('the API handler behind declared resources', () => {
  it('serves GET /openapi.json when the resource is /openapi.json', async () => {
    const res = await call(gatewayEvent('GET', '/openapi.json', '/openapi.json', null));
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
  });

  it('gives a route its path parameter from a declared resource', async () => {
    const res = await call(gatewayEvent('PUT', '/pool/{agentType}', '/pool/wizard', { agentType: 'wizard' }, { min: 1 }));
    expect(res).toEqual({ status: 404, body: { error: { type: 'permanent', source: 'api', message: 'no agent type wizard' } } });
  });

  it('finds the route by its resource when a custom domain puts a base path before it', async () => {
    const res = await call(gatewayEvent('PUT', '/pool/{agentType}', '/xl/pool/wizard', { agentType: 'wizard' }, { min: 1 }));
    expect(res.body.error.message).toBe('no agent type wizard');
  });

  it('refuses an unknown status in GET /executions?status=..., naming it, before reading anything', async () => {
    const res = await call({ ...gatewayEvent('GET', '/executions', '/executions', null), queryStringParameters: { status: 'FAILED,DONE' } });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('/status/1');
  });

  it('still checks a body the model let through (rules JSON Schema cannot say)', async () => {
    const res = await call(gatewayEvent('POST', '/agents', '/agents', null, { agentType: 'wizard' }));
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('/agentType');
  });
});
