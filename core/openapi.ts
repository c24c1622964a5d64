// The API's OpenAPI 3.1 document and the plan files' JSON Schema, both generated from the zod
// schemas (core/plan.ts, core/api-schemas.ts). `npm run schemas` writes them to schemas/; a unit
// test fails when the committed files are stale. Draft 2020-12 is OpenAPI 3.1's schema dialect.
import * as z from 'zod';
import * as api from './api-schemas.ts';
import { AGENT_TYPES, CAPABILITIES } from './agent-types.ts';
import { PlanSchema, StageSchema, TaskSchema } from './plan.ts';

type Json = Record<string, unknown>;

/** What zod cannot put in a JSON Schema (superRefine rules): said in the descriptions instead. */
const TASK_RULES =
  'Checked by the API (and `xl validate`) only: ' +
  "a fallback agent type must differ from the task's and have its capability; `onOpen` is for `dependency` only; " +
  '`backoff` excludes `baseDelaySeconds`/`maxDelaySeconds`, and its `capSeconds` is not below `baseSeconds`; ' +
  'a default output is at most 32 KiB of JSON; the `codegen`, `tests` and `review.qualityGates` combinations of the engines.';
const PLAN_RULES = 'Checked by the API (and `xl validate`) only: task ids are unique within the plan, across stages; stage names are unique.';

function registry() {
  const r = z.registry<{ id?: string; title?: string; description?: string }>();
  r.add(TaskSchema, { id: 'Task', description: `A unit of work for one agent. ${TASK_RULES}` });
  r.add(StageSchema, { id: 'Stage', description: "A pipeline stage: its tasks run in parallel; each gets the plan's input merged with earlier stages' outputs." });
  return r;
}

function oneOfInstructionsOrCommand(ctx: { zodSchema: unknown; jsonSchema: Json }) {
  if (ctx.zodSchema !== TaskSchema) return;
  const one = (key: string) => ({ properties: { [key]: { type: 'string' } }, required: [key] });
  ctx.jsonSchema.oneOf = [one('instructions'), one('command')];
}

/**
 * Two of the task's refine rules JSON Schema can say, so editors flag them too: exactly one of
 * instructions / command, and a capability from the agent type's list.
 */
function override(ctx: { zodSchema: unknown; jsonSchema: Json }) {
  oneOfInstructionsOrCommand(ctx);
  if (ctx.zodSchema !== TaskSchema) return;
  ctx.jsonSchema.allOf = AGENT_TYPES.map((type) => ({
    if: { properties: { agentType: { const: type } }, required: ['agentType'] },
    then: { properties: { capability: { enum: [...CAPABILITIES[type]] } } },
  }));
}

const PARAMS = { target: 'draft-2020-12', io: 'input', unrepresentable: 'throw' } as const;

/** schemas/plan.schema.json: the plan a user writes (defaults optional), JSON or YAML. */
export function planJsonSchema(): Json {
  const schema = z.toJSONSchema(PlanSchema, { ...PARAMS, metadata: registry(), override }) as Json;
  return {
    $schema: schema.$schema,
    title: 'agent-execution-layer plan',
    description: `A plan for POST /executions and \`xl run\`. ${PLAN_RULES}`,
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}

/** The components, each a zod schema with its name: the plan's and the API's bodies. */
function componentRegistry() {
  const r = registry();
  r.add(PlanSchema, { id: 'Plan', description: `A plan (CONTRACT.md). ${PLAN_RULES}` });
  const named: Record<string, z.core.$ZodType> = {
    Error: api.ErrorBody,
    TaskError: api.TaskErrorSchema,
    AttemptLogEntry: api.AttemptLogEntrySchema,
    TaskResult: api.TaskResultSchema,
    ExecutionStarted: api.ExecutionStarted,
    ExecutionSummary: api.ExecutionSummary,
    ExecutionList: api.ExecutionList,
    Execution: api.Execution,
    ExecutionAborted: api.ExecutionAborted,
    ExecutionRedriven: api.ExecutionRedriven,
    ArtifactRedirect: api.ArtifactRedirect,
    Agent: api.AgentSchema,
    AgentList: api.AgentList,
    StartAgentsRequest: api.StartAgentsRequest,
    AgentsStarted: api.AgentsStarted,
    AgentStopped: api.AgentStopped,
    PoolRow: api.PoolRowSchema,
    PoolList: api.PoolList,
    PoolReport: api.PoolReportSchema,
    PoolBoundsRequest: api.PoolBoundsRequest,
    Health: api.Health,
    Breaker: api.BreakerSchema,
    BreakerList: api.BreakerList,
    BreakerReset: api.BreakerReset,
    DeadLetterList: api.DeadLetterList,
    RedriveDeadLettersRequest: api.RedriveDeadLettersRequest,
    DeadLettersRedriven: api.DeadLettersRedriven,
    LogLine: api.LogLineSchema,
    LogPage: api.LogPage,
    LayerEvent: api.LayerEventSchema,
    EventList: api.EventList,
  };
  for (const [id, schema] of Object.entries(named)) r.add(schema, { id });
  return r;
}

const ref = (id: string) => ({ $ref: `#/components/schemas/${id}` });
const content = (id: string) => ({ 'application/json': { schema: ref(id) } });
const ok = (status: number, id: string, description: string) => ({ [status]: { description, content: content(id) } });
const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, { $ref: `#/components/responses/E${s}` }]));
const ERROR_RESPONSES: Record<number, string> = {
  400: 'Invalid request: details name the JSON Pointer of each problem',
  401: 'Locally, with XL_API_TOKEN set: no or a wrong bearer token',
  403: 'On AWS: IAM refused the signed request',
  404: 'No such resource',
  409: 'Conflict with the current state',
  413: 'Request body over 1 MiB',
  429: 'Throttled: try again later',
  500: 'The layer failed: try again',
  501: 'Not available in this deployment (GET /events on AWS: API Gateway cannot stream; the events are on the stack\'s EventBridge bus)',
};
// Every route may answer these (IAM, throttling, the layer).
const COMMON = [401, 403, 429, 500];

const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const op = (operationId: string, summary: string, responses: Json, extra: Json = {}) => ({
  operationId,
  summary,
  ...extra,
  responses: { ...responses, ...errors(...COMMON) },
});
const body = (id: string) => ({ requestBody: { required: true, content: content(id) } });

/** schemas/openapi.json: every route of CONTRACT.md and the README's extensions. */
export function openApiDocument(): Json {
  const { schemas } = z.toJSONSchema(componentRegistry(), { ...PARAMS, override, uri: (id) => `#/components/schemas/${id}` });
  const components = Object.fromEntries(
    Object.entries(schemas)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([id, s]) => [id, Object.fromEntries(Object.entries(s as Json).filter(([k]) => k !== '$schema' && k !== '$id'))]),
  );
  const executionId = pathParam('executionId', 'As returned by POST /executions');
  return {
    openapi: '3.1.0',
    info: {
      title: 'agent-execution-layer',
      version: '1',
      description:
        'The execution layer for fleets of agents. On AWS every route is IAM-authorized (SigV4), under the stage path /v1. ' +
        'Locally the API listens on 127.0.0.1; with XL_API_TOKEN set every route but GET /health and GET /openapi.json needs `Authorization: Bearer <token>`.',
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    security: [{ sigv4: [] }, { bearer: [] }],
    paths: {
      '/executions': {
        post: op('startExecution', 'Start an execution of a plan', {
          ...ok(202, 'ExecutionStarted', 'Started'),
          ...ok(200, 'ExecutionStarted', 'The same name and plan again: the existing execution'),
          ...errors(400, 409, 413),
        }, body('Plan')),
        get: op('listExecutions', 'List executions, newest first', { ...ok(200, 'ExecutionList', 'A page of executions'), ...errors(400) }, {
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, default: 50 }, description: 'Items per page, at most 100 (a larger limit reads as 100)' },
            { name: 'nextToken', in: 'query', schema: { type: 'string' }, description: "An earlier page's nextToken, unchanged (any other is refused with 400)" },
            {
              name: 'status',
              in: 'query',
              schema: { type: 'string' },
              description: 'Comma-separated statuses (RUNNING, SUCCEEDED, FAILED, ABORTED, TIMED_OUT). With a filter, one request reads at most 200 executions: a page may hold fewer than `limit` items and still a nextToken',
            },
            { name: 'name', in: 'query', schema: { type: 'string', maxLength: 80 }, description: 'Only executions whose name or id contains this (case-sensitive)' },
          ],
        }),
      },
      '/executions/{executionId}': {
        parameters: [executionId],
        get: op('describeExecution', 'An execution and its tasks', { ...ok(200, 'Execution', 'The execution'), ...errors(404) }),
        delete: op('cancelExecution', 'Cancel: the execution ends ABORTED, its running tasks are cancelled', {
          ...ok(202, 'ExecutionAborted', 'Cancelling'),
          ...errors(404),
        }),
      },
      '/executions/{executionId}/redrive': {
        parameters: [executionId],
        post: op('redriveExecution', 'Run a FAILED, TIMED_OUT or ABORTED execution again (its failed and skipped tasks)', {
          ...ok(202, 'ExecutionRedriven', 'A new workflow run started'),
          ...errors(404, 409),
        }),
      },
      '/executions/{executionId}/logs': {
        parameters: [executionId],
        get: op('executionLogs', "An execution's structured log lines, oldest first (the local layer's log, or CloudWatch Logs on AWS)", {
          ...ok(200, 'LogPage', 'A page of lines'),
          ...errors(400, 404, 501),
        }, {
          parameters: [
            { name: 'taskId', in: 'query', schema: { type: 'string' }, description: "One task's lines only" },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } },
            { name: 'nextToken', in: 'query', schema: { type: 'string' }, description: 'A nextToken or followToken of an earlier page' },
          ],
        }),
      },
      '/executions/{executionId}/tasks/{taskId}/artifacts/{name}': {
        parameters: [executionId, pathParam('taskId', 'A task of the execution'), pathParam('name', "One of the task's artifacts (TaskResult.artifacts[].name)")],
        get: op('getArtifact', "One of a task's artifacts: its bytes (local layer), or a redirect to them (AWS)", {
          200: {
            description: "Locally: the artifact's bytes, as an attachment, typed by its name (text/x-diff, application/x-ndjson, ...)",
            content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
          },
          302: {
            description: 'On AWS: Location is a presigned S3 GET valid for 5 minutes (follow it without credentials); the body says the same',
            headers: { Location: { schema: { type: 'string' }, description: 'The presigned GET' } },
            content: content('ArtifactRedirect'),
          },
          ...errors(404),
        }),
      },
      '/agents': {
        get: op('listAgents', 'The agents', ok(200, 'AgentList', 'Every agent the layer knows')),
        post: op('startAgents', 'Start agents of a type', { ...ok(202, 'AgentsStarted', 'Starting'), ...errors(400) }, body('StartAgentsRequest')),
      },
      '/agents/{agentId}': {
        parameters: [pathParam('agentId', 'An agent')],
        delete: op('stopAgent', 'Stop an agent', { ...ok(202, 'AgentStopped', 'Stopping'), ...errors(400, 404) }, {
          parameters: [{ name: 'graceful', in: 'query', schema: { type: 'string', enum: ['true', 'false'], default: 'true' }, description: 'Let the current task finish or hand it back' }],
        }),
      },
      '/pool': { get: op('listPool', 'Pool bounds and sizes per agent type', ok(200, 'PoolList', 'One row per agent type')) },
      '/pool/report': {
        get: op('poolReport', 'Per agent type: queue wait, saturation, idle agent-minutes, agents needed; the bottleneck', { ...ok(200, 'PoolReport', 'The report'), ...errors(400) }, {
          parameters: [
            { name: 'targetMinutes', in: 'query', schema: { type: 'number', exclusiveMinimum: 0, maximum: 1440, default: 10 }, description: 'Drain the backlog within this many minutes' },
          ],
        }),
      },
      '/pool/{agentType}': {
        parameters: [pathParam('agentType', 'An agent type')],
        put: op('setPoolBounds', "Set an agent type's pool bounds", { ...ok(200, 'PoolRow', 'The new row'), ...errors(400, 404) }, body('PoolBoundsRequest')),
      },
      '/health': {
        get: op('health', "The layer's health", ok(200, 'Health', 'Once the layer is up'), { security: [{ sigv4: [] }, {}] }),
      },
      '/breakers': { get: op('listBreakers', 'The circuit breakers', ok(200, 'BreakerList', 'Every breaker with a record')) },
      '/breakers/{key}/reset': {
        parameters: [pathParam('key', 'A breaker key, e.g. agent-type:coder')],
        post: op('resetBreaker', 'Close a circuit breaker', { ...ok(200, 'BreakerReset', 'Closed'), ...errors(404) }),
      },
      '/dead-letters': { get: op('listDeadLetters', 'The task queues whose dead-letter queues hold messages', ok(200, 'DeadLetterList', 'Up to 100 messages per queue')) },
      '/dead-letters/redrive': {
        post: op('redriveDeadLetters', 'Move dead letters back to their task queues', {
          ...ok(202, 'DeadLettersRedriven', 'Moving'),
          ...errors(400),
        }, { requestBody: { required: false, content: content('RedriveDeadLettersRequest') } }),
      },
      '/events': {
        get: op(
          'listEvents',
          "The layer's recent events (local mode): JSON, or a stream of server-sent events with `Accept: text/event-stream` that resumes after Last-Event-ID",
          {
            200: {
              description: 'The events after Last-Event-ID (all the layer keeps, up to 1000, without it); a stream sends each new one as it happens, and a comment line every 15 s',
              content: {
                'application/json': { schema: ref('EventList') },
                'text/event-stream': { schema: { type: 'string', description: 'Per event: `id: <id>` and `data: <LayerEvent as JSON>`' } },
              },
            },
            ...errors(400, 501),
          },
          {
            parameters: [
              { name: 'kind', in: 'query', schema: { type: 'string' }, description: 'Comma-separated kinds or families (`execution`, `task.failed,breaker.opened`)' },
              { name: 'after', in: 'query', schema: { type: 'string' }, description: 'An event id: only later events (as Last-Event-ID)' },
              { name: 'Last-Event-ID', in: 'header', schema: { type: 'string' }, description: 'The last event id seen: only later events' },
            ],
          },
        ),
      },
      '/openapi.json': {
        get: {
          operationId: 'openApi',
          summary: 'This document',
          security: [{ sigv4: [] }, {}],
          responses: { 200: { description: 'The OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
    },
    components: {
      schemas: components,
      responses: Object.fromEntries(Object.entries(ERROR_RESPONSES).map(([s, description]) => [`E${s}`, { description, content: content('Error') }])),
      securitySchemes: {
        sigv4: { type: 'apiKey', name: 'Authorization', in: 'header', 'x-amazon-apigateway-authtype': 'awsSigv4', description: 'AWS SigV4 (IAM), on API Gateway' },
        bearer: { type: 'http', scheme: 'bearer', description: 'Local mode, when XL_API_TOKEN is set' },
      },
    },
  };
}

/** The files `npm run schemas` writes, by path from the project root, as they are committed. */
export function schemaFiles(): Record<string, string> {
  const text = (value: unknown) => JSON.stringify(value, null, 2) + '\n';
  return { 'schemas/openapi.json': text(openApiDocument()), 'schemas/plan.schema.json': text(planJsonSchema()) };
}

// ---- API Gateway (REST API) ----

/**
 * JSON Schema draft 4's keywords, the only ones an API Gateway model may use: it refuses a model with
 * any other ("Unsupported keyword(s)", e.g. `$id`, `const`, `if`) at deploy time, not at synth.
 */
const DRAFT_04_KEYWORDS = new Set([
  '$schema', '$ref', 'id', 'title', 'description', 'default', 'multipleOf', 'maximum', 'exclusiveMaximum', 'minimum',
  'exclusiveMinimum', 'maxLength', 'minLength', 'pattern', 'additionalItems', 'items', 'maxItems', 'minItems', 'uniqueItems',
  'maxProperties', 'minProperties', 'required', 'additionalProperties', 'definitions', 'properties', 'patternProperties',
  'dependencies', 'enum', 'type', 'allOf', 'anyOf', 'oneOf', 'not', 'format',
]);
/** Keywords whose value maps names to schemas (the names are not keywords). */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions', 'dependencies']);

/** Throws, naming the JSON Pointer, on a keyword draft 4 lacks: the model would fail the deploy. */
function assertDraft04(schema: unknown, at = ''): void {
  if (Array.isArray(schema)) return schema.forEach((s, i) => assertDraft04(s, `${at}/${i}`));
  if (!schema || typeof schema !== 'object') return;
  for (const [key, value] of Object.entries(schema)) {
    if (!DRAFT_04_KEYWORDS.has(key)) throw new Error(`API Gateway model: ${at || '/'} has "${key}", not a JSON Schema draft 4 keyword`);
    if (key === 'enum' || key === 'default' || key === 'required') continue;
    if (SCHEMA_MAPS.has(key)) for (const [name, sub] of Object.entries(value as Json)) assertDraft04(sub, `${at}/${key}/${name}`);
    else if (typeof value === 'object') assertDraft04(value, `${at}/${key}`);
  }
}

/**
 * A request body as an API Gateway model: JSON Schema draft 4, every reference inlined (a model may
 * only $ref other models by URL), descriptions left out to keep it small (CreateModel caps a model at
 * 400 KB; the plan's is about 13 KB). The task's instructions-or-command rule stays (oneOf is
 * draft 4); the capability-per-agent-type rule (if/then) is the handler's to check.
 */
export function draft04Schema(schema: z.core.$ZodType): Json {
  const out = z.toJSONSchema(schema, {
    target: 'draft-04',
    io: 'input',
    unrepresentable: 'throw',
    reused: 'inline',
    cycles: 'throw',
    override: oneOfInstructionsOrCommand,
  }) as Json;
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (!value || typeof value !== 'object') return value;
    return Object.fromEntries(
      Object.entries(value).flatMap(([key, v]): [string, unknown][] => {
        if (key === 'description') return [];
        if (key === 'enum' || key === 'default' || key === 'required') return [[key, v]];
        if (SCHEMA_MAPS.has(key)) return [[key, Object.fromEntries(Object.entries(v as Json).map(([n, s]) => [n, strip(s)]))]];
        return [[key, strip(v)]];
      }),
    );
  };
  const model = strip(out) as Json;
  assertDraft04(model);
  return model;
}

/** One route as API Gateway declares it: from the OpenAPI document, so the two cannot drift. */
export interface GatewayRoute {
  /** GET, POST, PUT, DELETE */
  method: string;
  operationId: string;
  /** As in the document, e.g. `/executions/{executionId}` */
  path: string;
  pathParameters: string[];
  /** Query string parameters, all optional. */
  queryParameters: string[];
  /** The request body's model (an alphanumeric name) and its draft 4 schema, where the route takes one. */
  body?: { model: string; required: boolean; schema: Json };
}

const REQUEST_BODIES: Record<string, z.core.$ZodType> = {
  Plan: PlanSchema,
  StartAgentsRequest: api.StartAgentsRequest,
  PoolBoundsRequest: api.PoolBoundsRequest,
  RedriveDeadLettersRequest: api.RedriveDeadLettersRequest,
};

/** Every route of the OpenAPI document, with its parameters and request model. */
export function gatewayRoutes(): GatewayRoute[] {
  const paths = openApiDocument().paths as Record<string, Record<string, Json>>;
  type Param = { name: string; in: string };
  return Object.entries(paths).flatMap(([path, item]) => {
    const shared = (item.parameters ?? []) as unknown as Param[];
    return Object.entries(item)
      .filter(([method]) => method !== 'parameters')
      .map(([method, operation]) => {
        const params = [...shared, ...((operation.parameters ?? []) as Param[])];
        const requestBody = operation.requestBody as { required: boolean; content: Record<string, { schema: { $ref: string } }> } | undefined;
        const model = requestBody?.content['application/json']!.schema.$ref.split('/').pop();
        if (model && !REQUEST_BODIES[model]) throw new Error(`no zod schema for the request body ${model} of ${method.toUpperCase()} ${path}`);
        return {
          method: method.toUpperCase(),
          operationId: operation.operationId as string,
          path,
          pathParameters: params.filter((p) => p.in === 'path').map((p) => p.name),
          queryParameters: params.filter((p) => p.in === 'query').map((p) => p.name),
          ...(model ? { body: { model, required: requestBody!.required, schema: draft04Schema(REQUEST_BODIES[model]!) } } : {}),
        };
      });
  });
}
