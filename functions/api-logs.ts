// The API's log route (core/api-groups.ts): an execution's log lines, from CloudWatch Logs.
import { executionLogs } from './lib/deps.ts';
import { apiHandler } from './lib/api.ts';
import { route } from './lib/http.ts';

export const routes = [
  route('GET', '/executions/{executionId}/logs', async ({ params, query }) => ({
    status: 200,
    body: await executionLogs().read(params.executionId!, {
      taskId: query.taskId || undefined,
      limit: query.limit,
      nextToken: query.nextToken || undefined,
    }),
  })),
];

export const handler = apiHandler(routes);
