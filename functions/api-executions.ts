// The API's execution routes (core/api-groups.ts): Step Functions, the payload bucket, the executions table.
import { ExecutionListFilter } from '#core/api-requests.ts';
import { presignWithClient } from '#core/aws/artifact-urls.ts';
import { s3Client } from '#core/aws/clients.ts';
import { executionService } from './lib/deps.ts';
import { apiHandler, parse } from './lib/api.ts';
import { route } from './lib/http.ts';

export const routes = [
  route('POST', '/executions', async ({ body }) => {
    const res = await executionService().submit(body);
    return { status: res.created ? 202 : 200, body: { executionId: res.executionId, name: res.name, status: res.status } };
  }),
  route('GET', '/executions', async ({ query }) => {
    const filter = parse(ExecutionListFilter, { status: query.status || undefined, name: query.name || undefined, limit: query.limit || undefined, nextToken: query.nextToken || undefined });
    return { status: 200, body: await executionService().list({ limit: filter.limit, nextToken: filter.nextToken, statuses: filter.status, nameContains: filter.name }) };
  }),
  route('GET', '/executions/{executionId}', async ({ params }) => ({
    status: 200,
    body: await executionService().describe(params.executionId!),
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
