// The API Lambda: the contract's HTTP routes, each a few lines over the domain core.
import type * as z from 'zod';
import { AGENT_TYPES, type AgentType } from '#core/agent-types.ts';
import { isBreakerKey } from '#core/breakers.ts';
import { NotFoundError, ValidationError, XlError } from '#core/errors.ts';
import { toJsonPointer } from '#core/plan.ts';
import { parseTargetMinutes, readPoolReport } from '#core/pool-report.ts';
import { presignWithClient } from '#core/aws/artifact-urls.ts';
import { s3Client } from '#core/aws/clients.ts';
import { ExecutionListFilter, PoolBoundsRequest, RedriveDeadLettersRequest, StartAgentsRequest } from '#core/api-schemas.ts';
// The committed document (npm run schemas), bundled into the Lambda: no file to read at run time.
import openApiDocument from '../schemas/openapi.json' with { type: 'json' };
import { agentStore, breakerStore, circuitBreaker, deadLetters, executionLogs, executionService, executionStore, poolManager, queueBacklog } from './lib/deps.ts';
import { bearerToken, dispatch, errorBody, route } from './lib/http.ts';
import { tracedHandler } from './lib/observability.ts';

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const details = result.error.issues.map((i) => ({ path: toJsonPointer(i.path), message: i.message }));
  throw new ValidationError(details.map((d) => `${d.path || '/'}: ${d.message}`).join('; '), details);
}

const agentTypeParam = (value: string): AgentType => {
  if (!(AGENT_TYPES as readonly string[]).includes(value)) throw new NotFoundError(`no agent type ${value}`);
  return value as AgentType;
};

const backlog = (type: AgentType) => queueBacklog().of(type);

/** Exported for the test that holds the OpenAPI document to them. */
export const routes = [
  route('POST', '/executions', async ({ body }) => {
    const res = await executionService().submit(body);
    return { status: res.created ? 202 : 200, body: { executionId: res.executionId, name: res.name, status: res.status } };
  }),
  route('GET', '/executions', async ({ query }) => {
    const limit = Math.min(100, Math.max(1, Number(query.limit ?? 50) || 50));
    const filter = parse(ExecutionListFilter, { status: query.status || undefined, name: query.name || undefined });
    return { status: 200, body: await executionService().list({ limit, nextToken: query.nextToken, statuses: filter.status, nameContains: filter.name }) };
  }),
  route('GET', '/executions/{executionId}', async ({ params }) => ({
    status: 200,
    body: await executionService().describe(params.executionId!),
  })),
  route('DELETE', '/executions/{executionId}', async ({ params }) => {
    await executionService().cancel(params.executionId!);
    return { status: 202, body: { executionId: params.executionId, status: 'ABORTED' } };
  }),
  route('POST', '/executions/{executionId}/redrive', async ({ params }) => ({
    status: 202,
    body: await executionService().redrive(params.executionId!),
  })),
  route('GET', '/executions/{executionId}/logs', async ({ params, query }) => ({
    status: 200,
    body: await executionLogs().read(params.executionId!, {
      taskId: query.taskId || undefined,
      limit: query.limit === undefined ? undefined : Number(query.limit),
      nextToken: query.nextToken || undefined,
    }),
  })),
  // On AWS a redirect to a short-lived presigned GET (core/aws/artifact-urls.ts says why not the
  // bytes); the local layer serves the bytes itself (local/layer.ts).
  route('GET', '/executions/{executionId}/tasks/{taskId}/artifacts/{name}', async ({ params }) => {
    const object = await executionService().artifact(params.executionId!, params.taskId!, params.name!);
    const { url, expiresAt } = await presignWithClient(s3Client(), object);
    return {
      status: 302,
      headers: { location: url, 'cache-control': 'no-store' },
      body: { name: object.name, bytes: object.bytes, contentType: object.contentType, url, expiresAt },
    };
  }),
  route('GET', '/agents', async () => ({ status: 200, body: { items: await agentStore().list() } })),
  route('POST', '/agents', async ({ body }) => {
    const req = parse(StartAgentsRequest, body);
    const agentIds = await poolManager().startAgents(req.agentType, req.count);
    return { status: 202, body: { agentIds } };
  }),
  route('DELETE', '/agents/{agentId}', async ({ params, query }) => {
    const agent = await agentStore().get(params.agentId!);
    if (!agent) throw new NotFoundError(`no agent ${params.agentId}`);
    await poolManager().stopAgent(agent, query.graceful !== 'false');
    return { status: 202, body: { agentId: agent.agentId } };
  }),
  route('GET', '/pool', async () => ({
    status: 200,
    body: { items: await poolManager().rows(backlog) },
  })),
  route('GET', '/pool/report', async ({ query }) => {
    const targetMinutes = parseTargetMinutes(query.targetMinutes);
    if (targetMinutes === undefined) {
      throw new ValidationError(`targetMinutes must be a number of minutes above 0 and at most 1440, got "${query.targetMinutes}"`, [{ path: '/targetMinutes', message: 'not in (0, 1440]' }]);
    }
    const pool = poolManager();
    const report = await readPoolReport(
      { bounds: () => pool.bounds(), slots: (t) => pool.slots(t), agents: agentStore(), executions: executionStore(), backlog },
      { now: Date.now(), targetMinutes },
    );
    return { status: 200, body: report };
  }),
  route('PUT', '/pool/{agentType}', async ({ params, body }) => {
    const agentType = agentTypeParam(params.agentType!);
    const pool = poolManager();
    const agents = agentStore();
    const current = (await pool.bounds()).find((b) => b.agentType === agentType)!;
    const req = parse(PoolBoundsRequest, body);
    const next = { agentType, min: req.min ?? current.min, max: req.max ?? current.max };
    if (next.min > next.max) throw new ValidationError(`min ${next.min} is above max ${next.max}`, [{ path: '/min', message: 'above max' }]);
    await agents.setPoolBounds(next);
    const row = (await pool.rows(backlog)).find((r) => r.agentType === agentType);
    return { status: 200, body: row };
  }),
  route('GET', '/health', async () => {
    const [agentList, breakerList, queues] = await Promise.all([
      agentStore().list(),
      breakerStore().list(),
      Promise.all(AGENT_TYPES.map(async (t) => ({ agentType: t, ...(await backlog(t)) }))),
    ]);
    const live = agentList.filter((a) => a.status !== 'terminated');
    const byStatus: Record<string, number> = {};
    for (const a of live) byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    const open = breakerList.filter((b) => b.state !== 'closed');
    const overall = open.length || byStatus.unhealthy ? 'degraded' : 'healthy';
    return {
      status: 200,
      body: {
        overall,
        agents: { total: live.length, byStatus },
        queues: queues.filter((q) => q.visible || q.inFlight),
        breakers: { open: open.map((b) => b.key), total: breakerList.length },
      },
    };
  }),
  route('GET', '/breakers', async () => ({ status: 200, body: { items: await circuitBreaker().list() } })),
  route('POST', '/breakers/{key}/reset', async ({ params }) => {
    // A key no breaker can have (not agent:<type>, dependency:model-api, dependency:git:<host>) is a
    // 404; a real key with no record never failed: it is closed already, and the contract's 200 stands.
    if (!isBreakerKey(params.key!)) throw new NotFoundError(`no circuit breaker ${params.key}: keys are agent:<type>, dependency:model-api or dependency:git:<host>`);
    await circuitBreaker().reset(params.key!);
    return { status: 200, body: { key: params.key, state: 'closed' } };
  }),
  route('GET', '/dead-letters', async () => ({ status: 200, body: { items: await deadLetters().list() } })),
  route('POST', '/dead-letters/redrive', async ({ body }) => {
    const req = parse(RedriveDeadLettersRequest, body);
    return { status: 202, body: { items: await deadLetters().redrive(req.queue) } };
  }),
  // API Gateway's REST APIs answer each request whole: no stream. The local layer serves this route itself (local/events.ts).
  route('GET', '/events', async () => {
    const bus = process.env.XL_EVENT_BUS;
    throw new XlError(
      'permanent',
      `GET /events streams in the local layer only: on AWS the events are on the EventBridge bus ${bus ?? 'of the stack'} (rules, the notification topic, the webhook destination)`,
      501,
    );
  }),
  route('GET', '/openapi.json', async () => ({ status: 200, body: openApiDocument })),
];

export const handler = tracedHandler(dispatch(routes)).use(bearerToken()).use(errorBody());
