// The API's execution routes (core/api-groups.ts): Step Functions, the payload bucket, the executions table.
import { executionService } from './lib/deps.ts';
import { apiHandler } from './lib/api.ts';
import { route } from './lib/http.ts';

export const routes = [
  route('POST', '/executions', async ({ body }) => {
    const res = await executionService().submit(body);
    return { status: res.created ? 202 : 200, body: { executionId: res.executionId, name: res.name, status: res.status } };
  }),
  route('GET', '/executions', async ({ query }) => {
    const limit = Math.min(100, Math.max(1, Number(query.limit ?? 50) || 50));
    return { status: 200, body: await executionService().list({ limit, nextToken: query.nextToken }) };
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
];

export const handler = apiHandler(routes);
