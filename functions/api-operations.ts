// The API's operations routes (core/api-groups.ts): health, circuit breakers, dead letters (SQS),
// the event stream's pointer and the OpenAPI document; and the 404 of paths no route has.
import { AGENT_TYPES } from '#core/agent-types.ts';
import { isBreakerKey } from '#core/breakers.ts';
import { NotFoundError, XlError } from '#core/errors.ts';
import { RedriveDeadLettersRequest } from '#core/api-requests.ts';
// The committed document (npm run schemas), bundled into the Lambda: no file to read at run time.
import openApiDocument from '../schemas/openapi.json' with { type: 'json' };
import { agentStore, breakerStore, circuitBreaker, deadLetters } from './lib/deps.ts';
import { apiHandler, backlog, parse } from './lib/api.ts';
import { route } from './lib/http.ts';

export const routes = [
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

export const handler = apiHandler(routes);
