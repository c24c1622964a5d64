// The API Lambda's routing (functions/lib/http.ts): a route found by its template on AWS or by the
// path locally, its path parameters decoded, and what no route or method answers.
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '#core/errors.ts';
import { dispatch, route } from '../../functions/lib/http.ts';

const routes = [
  route('GET', '/executions/{executionId}', async ({ params }) => ({ status: 200, body: params })),
  route('GET', '/executions/{executionId}/tasks/{taskId}/artifacts/{name}', async ({ params }) => ({ status: 200, body: params })),
];
const call = (httpMethod: string, path: string, resource = '/{proxy+}') =>
  dispatch(routes)({ httpMethod, path, resource, pathParameters: null, queryStringParameters: null, body: null } as unknown as APIGatewayProxyEvent);

describe('API routing', () => {
  it('decodes each path parameter once', async () => {
    const res = await call('GET', '/v1/executions/ex-1/tasks/build%20api/artifacts/diff%2Fpatch');
    expect(JSON.parse(res.body)).toEqual({ executionId: 'ex-1', taskId: 'build api', name: 'diff/patch' });
  });

  it('refuses malformed percent-encoding as the caller\'s error (400, naming the parameter), not an internal one', async () => {
    for (const bad of ['%ZZ', '%E0%A4%A', 'ab%']) {
      const err = await call('GET', `/executions/ex-1/tasks/${bad}/artifacts/x`).catch((e: unknown) => e);
      expect(err, bad).toBeInstanceOf(ValidationError);
      expect(err).toMatchObject({ status: 400, message: `taskId "${bad}" is not valid percent-encoding`, details: [{ path: '/taskId' }] });
    }
  });

  it('answers 405 for another method on a route, 404 for no route', async () => {
    expect((await call('DELETE', '/executions/ex-1/tasks/t/artifacts/x')).statusCode).toBe(405);
    expect((await call('GET', '/nothing')).statusCode).toBe(404);
  });
});
