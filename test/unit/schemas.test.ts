// The committed schemas (schemas/openapi.json, schemas/plan.schema.json) are generated from the zod
// schemas, describe every route the API serves, and are served by it at GET /openapi.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import YAML from 'yaml';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { openApiDocument, planJsonSchema, schemaFiles } from '../../core/openapi.ts';
import { handler, routes } from '../support/api.ts';
import { CAPABILITIES } from '../../core/agent-types.ts';
import { parsePlan } from '../../core/plan.ts';

const ROOT = join(import.meta.dirname, '../..');
const committed = (file: string) => readFileSync(join(ROOT, file), 'utf8');
type Json = Record<string, any>;

/** Every `$ref` in the tree, with where it is. */
function refs(node: unknown, at = ''): { at: string; ref: string }[] {
  if (Array.isArray(node)) return node.flatMap((n, i) => refs(n, `${at}/${i}`));
  if (!node || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([k, v]) => (k === '$ref' && typeof v === 'string' ? [{ at, ref: v }] : refs(v, `${at}/${k}`)));
}

/** A local JSON Pointer reference resolved in the document, or undefined. */
function resolveRef(doc: Json, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref
    .slice(2)
    .split('/')
    .reduce<any>((node, key) => node?.[key.replaceAll('~1', '/').replaceAll('~0', '~')], doc);
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

describe('committed schemas', () => {
  it.each(Object.entries(schemaFiles()))('%s is what npm run schemas generates now', (file, text) => {
    const current = committed(file);
    // toBe would print 70 KB of diff: the message says what to do.
    if (current !== text) expect.fail(`${file} is stale (the zod schemas changed): run \`npm run schemas\` and commit ${file}`);
  });
});

describe('the OpenAPI document', () => {
  const doc = openApiDocument() as Json;

  it('passes an OpenAPI 3.1 validator (@seriousme/openapi-schema-validator)', async () => {
    const result = await new Validator().validate(JSON.parse(committed('schemas/openapi.json')));
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 2)).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('is OpenAPI 3.1 with the 2020-12 schema dialect', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info.title).toBeTruthy();
    expect(doc.info.version).toBeTruthy();
    expect(doc.jsonSchemaDialect).toBe('https://spec.openapis.org/oas/3.1/dialect/base');
  });

  it('declares every route the API handler serves, and no other', () => {
    const served = routes.map((r) => `${r.method} ${r.template}`).sort();
    const declared = Object.entries(doc.paths as Json)
      .flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(declared).toEqual(served);
  });

  it('declares each path parameter of a route', () => {
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const method of METHODS.filter((m) => item[m])) {
        const params = [...(item.parameters ?? []), ...(item[method].parameters ?? [])].filter((p: Json) => p.in === 'path');
        expect(params.map((p: Json) => p.name).sort(), `${method} ${path}`).toEqual([...inPath].sort());
        for (const p of params) expect(p.required, `${method} ${path} ${p.name}`).toBe(true);
      }
    }
  });

  it('gives every operation a unique operationId and a JSON success response (an artifact: its bytes)', () => {
    const ids: string[] = [];
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      for (const method of METHODS.filter((m) => item[m])) {
        const op = item[method];
        ids.push(op.operationId);
        const success = Object.keys(op.responses).filter((s) => /^2\d\d$/.test(s));
        expect(success.length, `${method} ${path}`).toBeGreaterThan(0);
        const type = path.endsWith('/artifacts/{name}') ? 'application/octet-stream' : 'application/json';
        for (const s of success) expect(op.responses[s].content[type].schema, `${method} ${path} ${s}`).toBeDefined();
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("serves a task's artifact: the bytes locally, a 302 to a presigned GET on AWS, 404 for an unknown one", () => {
    const get = doc.paths['/executions/{executionId}/tasks/{taskId}/artifacts/{name}'].get;
    expect(get.operationId).toBe('getArtifact');
    expect(Object.keys(get.responses)).toEqual(expect.arrayContaining(['200', '302', '404']));
    expect(get.responses['302'].headers.Location).toBeDefined();
    expect(get.responses['302'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ArtifactRedirect' });
    expect(doc.components.schemas.ArtifactRedirect.required).toEqual(['name', 'bytes', 'contentType', 'url', 'expiresAt']);
  });

  it("describes the contract's error body for 400, 401, 403, 404, 409, 413, 429 and 500", () => {
    for (const status of [400, 401, 403, 404, 409, 413, 429, 500]) {
      expect(doc.components.responses[`E${status}`].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
    }
    const error = doc.components.schemas.Error.properties.error;
    expect(error.required).toEqual(['type', 'message']);
    expect(error.properties.details.items.required).toEqual(['path', 'message']);
  });

  it('takes a Plan on POST /executions and answers 400, 409 and 413 as the contract says', () => {
    const post = doc.paths['/executions'].post;
    expect(post.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Plan' });
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['200', '202', '400', '409', '413']));
  });

  it('resolves every $ref inside the document', () => {
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(20);
    for (const { at, ref } of all) expect(resolveRef(doc, ref), `${ref} at ${at}`).toBeDefined();
  });

  it("describes TaskResult's recovery fields: attemptLog, error.source, recoveredBy, fallbackFrom", () => {
    const task = doc.components.schemas.TaskResult;
    expect(task.properties.attemptLog.items).toEqual({ $ref: '#/components/schemas/AttemptLogEntry' });
    expect(doc.components.schemas.TaskError.properties.source.enum).toContain('claude-code');
    expect(Object.keys(task.properties)).toEqual(expect.arrayContaining(['recoveredBy', 'fallbackFrom', 'skipReason']));
  });
});

describe('the plan JSON Schema', () => {
  const schema = planJsonSchema() as Json;

  it('accepts every plan in examples/ (JSON and YAML) and refuses broken ones, as a JSON Schema 2020-12 validator (ajv) reads it', () => {
    const validate = new Ajv2020({ strict: false, allErrors: true }).compile(JSON.parse(committed('schemas/plan.schema.json')));
    const dir = join(ROOT, 'examples');
    for (const file of readdirSync(dir).filter((f) => /\.(json|ya?ml)$/.test(f))) {
      const text = readFileSync(join(dir, file), 'utf8');
      const plan: unknown = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
      expect(validate(plan), `${file}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    const task = { id: 't', agentType: 'coder', command: 'true' };
    expect(validate({ pattern: 'sequential', tasks: [{ ...task, instructions: 'also' }] })).toBe(false);
    expect(validate({ pattern: 'sequential', tasks: [{ ...task, capability: 'unit-testing' }] })).toBe(false);
    expect(validate({ pattern: 'sequential', tasks: [{ ...task, recovery: { sometimes: {} } }] })).toBe(false);
    expect(validate({ pattern: 'sequential', tasks: [task], surprise: true })).toBe(false);
  });

  it('is draft 2020-12, with Task and Stage as definitions', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(Object.keys(schema.$defs).sort()).toEqual(['Stage', 'Task']);
    for (const { ref } of refs(schema)) expect(resolveRef(schema, ref), ref).toBeDefined();
  });

  it('leaves what has a default optional (the plan a user writes, not the stored one)', () => {
    const task = schema.$defs.Task;
    expect(task.required).toEqual(['id', 'agentType']);
    expect(task.properties.timeoutSeconds.default).toBe(1800);
    const parallel = schema.oneOf.find((v: Json) => v.properties.pattern.const === 'parallel');
    expect(parallel.required).not.toContain('maxConcurrency');
  });

  it('refuses unknown keys, as the API does', () => {
    for (const variant of schema.oneOf) expect(variant.additionalProperties).toBe(false);
    expect(schema.$defs.Task.additionalProperties).toBe(false);
  });

  it('asks for exactly one of instructions or command', () => {
    expect(schema.$defs.Task.oneOf.map((b: Json) => b.required)).toEqual([['instructions'], ['command']]);
  });

  it("limits a task's capability to its agent type's list", () => {
    const coder = schema.$defs.Task.allOf.find((rule: Json) => rule.if.properties.agentType.const === 'coder');
    expect(coder.then.properties.capability.enum).toEqual(CAPABILITIES.coder);
  });

  it('has no "$schema" key for JSON plans, which the API refuses as it does any unknown key', () => {
    for (const variant of schema.oneOf) expect(Object.keys(variant.properties)).not.toContain('$schema');
    expect(() => parsePlan({ $schema: '../schemas/plan.schema.json', pattern: 'sequential', tasks: [{ id: 'a', agentType: 'coder', command: 'true' }] })).toThrow(/\$schema/);
  });

  it('says in its descriptions which rules only the API checks', () => {
    expect(schema.description).toMatch(/task ids are unique/);
    expect(schema.$defs.Task.description).toMatch(/Checked by the API.*fallback agent type/);
  });
});

describe('GET /openapi.json', () => {
  const saved = process.env.XL_API_TOKEN;
  afterEach(() => {
    if (saved === undefined) delete process.env.XL_API_TOKEN;
    else process.env.XL_API_TOKEN = saved;
  });
  const get = (path: string, method = 'GET') =>
    handler({ httpMethod: method, path, headers: {}, queryStringParameters: null, body: null, isBase64Encoded: false } as unknown as APIGatewayProxyEvent, {} as Context) as Promise<APIGatewayProxyResult>;

  it('answers the committed document, without the bearer token that guards the other routes', async () => {
    process.env.XL_API_TOKEN = 'secret-token';
    const res = await get('/openapi.json');
    expect(res.statusCode).toBe(200);
    expect(res.headers?.['content-type']).toBe('application/json');
    expect(JSON.parse(res.body)).toEqual(JSON.parse(committed('schemas/openapi.json')));
    expect((await get('/executions')).statusCode).toBe(401);
  });

  it('answers under the stage path /v1 too, and only for the exact name', async () => {
    expect((await get('/v1/openapi.json')).statusCode).toBe(200);
    expect((await get('/openapiXjson')).statusCode).toBe(404);
  });
});

describe('request bodies lifted into core/api-schemas.ts', () => {
  it('POST /agents still refuses an unknown agent type, naming /agentType', async () => {
    const res = (await handler(
      { httpMethod: 'POST', path: '/agents', headers: {}, queryStringParameters: null, body: JSON.stringify({ agentType: 'wizard' }), isBase64Encoded: false } as unknown as APIGatewayProxyEvent,
      {} as Context,
    )) as APIGatewayProxyResult;
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).error.details[0].path).toBe('/agentType');
  });
});
