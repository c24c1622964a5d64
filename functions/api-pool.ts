// The API's agent and pool routes (core/api-groups.ts): the agents' runtime (ECS), the agents table,
// the queues' depths.
import { NotFoundError, ValidationError } from '#core/errors.ts';
import { parseTargetMinutes, readPoolReport } from '#core/pool-report.ts';
import { PoolBoundsRequest, StartAgentsRequest } from '#core/api-requests.ts';
import { agentStore, executionStore, poolManager } from './lib/deps.ts';
import { agentTypeParam, apiHandler, backlog, parse } from './lib/api.ts';
import { route } from './lib/http.ts';

export const routes = [
  route('GET', '/agents', async () => ({ status: 200, body: { items: await agentStore().list() } })),
  route('POST', '/agents', async ({ body }) => {
    const req = parse(StartAgentsRequest, body);
    const agentIds = await poolManager().startAgents(req.agentType, req.count);
    return { status: 202, body: { agentIds } };
  }),
  route('DELETE', '/agents/{agentId}', async ({ params, query }) => {
    // API Gateway checks no enum of a query parameter: a typo must not stop an agent the other way.
    if (query.graceful !== undefined && query.graceful !== 'true' && query.graceful !== 'false') {
      throw new ValidationError(`graceful must be true or false, got "${query.graceful}"`, [{ path: '/graceful', message: 'not true or false' }]);
    }
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
];

export const handler = apiHandler(routes);
