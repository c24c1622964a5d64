// The API Lambda's artifact route on real tables and a real bucket (dynalite, fauxqs): a 302 to a
// presigned GET that answers the artifact's bytes, a 404 that names what the task has, and a record
// pointing outside artifacts/ never turned into a URL.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExecutionStore } from '../../core/aws/execution-store.ts';
import { type Emulators, startEmulators } from '../support/emulators.ts';
import { recordExecution } from '../support/records.ts';

let e: Emulators;
let executionId: string;
let handler: (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;
const saved = { ...process.env };
const DIFF = 'diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n';

beforeAll(async () => {
  e = await startEmulators({ prefix: 'art-', queues: [] });
  Object.assign(process.env, {
    XL_TABLE_EXECUTIONS: e.tables.executions,
    XL_TABLE_AGENTS: e.tables.agents,
    XL_TABLE_BREAKERS: e.tables.breakers,
    XL_BUCKET: e.bucket,
    XL_QUEUE_URL_PREFIX: e.queuePrefix,
    AWS_ENDPOINT_URL_DYNAMODB: e.dynamo.endpoint,
    AWS_ENDPOINT_URL_S3: e.fauxqs.endpoint,
    // The workflow port is built with the service; this route starts nothing.
    XL_SFN_SEQUENTIAL: 'arn:aws:states:us-east-1:000000000000:stateMachine:seq',
    XL_SFN_PARALLEL: 'arn:aws:states:us-east-1:000000000000:stateMachine:par',
    XL_SFN_PIPELINE: 'arn:aws:states:us-east-1:000000000000:stateMachine:pipe',
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
  });
  delete process.env.XL_API_TOKEN;
  delete process.env.AWS_PROFILE;
  await e.s3.send(new PutObjectCommand({ Bucket: e.bucket, Key: 'artifacts/ex/write/1/workspace.diff', Body: DIFF }));
  executionId = await recordExecution(new ExecutionStore(e.ddb, e.tables.executions), [{ id: 'write', agentType: 'coder', command: 'true' } as never], {
    status: 'completed',
    artifacts: [
      { name: 'workspace.diff', uri: `s3://${e.bucket}/artifacts/ex/write/1/workspace.diff`, bytes: DIFF.length },
      { name: 'plan.json', uri: `s3://${e.bucket}/plans/ex.json`, bytes: 10 },
    ],
  });
  ({ handler } = (await import('../support/api.ts')) as never);
}, 60_000);
afterAll(async () => {
  process.env = { ...saved };
  await e?.close();
});

const get = async (taskId: string, name: string) => {
  const resource = '/executions/{executionId}/tasks/{taskId}/artifacts/{name}';
  const path = `/executions/${executionId}/tasks/${taskId}/artifacts/${name}`;
  const event = {
    httpMethod: 'GET',
    resource,
    path,
    pathParameters: { executionId, taskId, name },
    headers: {},
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: { stage: 'v1', resourcePath: resource, httpMethod: 'GET', path: `/v1${path}` },
  } as unknown as APIGatewayProxyEvent;
  const res = await handler(event, {} as Context);
  return { status: res.statusCode, headers: res.headers ?? {}, body: JSON.parse(res.body) };
};

describe('GET /executions/{id}/tasks/{taskId}/artifacts/{name} in the API Lambda', () => {
  it('answers a 302 to a presigned GET of the artifact, which answers its bytes', async () => {
    const res = await get('write', 'workspace.diff');
    expect(res.status).toBe(302);
    const location = String(res.headers.location);
    expect(res.body).toMatchObject({ name: 'workspace.diff', bytes: DIFF.length, contentType: 'text/x-diff; charset=utf-8', url: location });
    const url = new URL(location);
    // Path-style under the configured S3 endpoint (here the emulator), signed for 5 minutes.
    expect(`${url.origin}${url.pathname}`).toBe(`${e.fauxqs.endpoint}/${e.bucket}/artifacts/ex/write/1/workspace.diff`);
    expect(url.searchParams.get('X-Amz-Expires')).toBe('300');
    const bytes = await fetch(url);
    expect(bytes.status).toBe(200);
    expect(await bytes.text()).toBe(DIFF);
  });

  it('answers 404 naming the artifacts the task has, and for a task the execution lacks', async () => {
    expect(await get('write', 'nothing.txt')).toMatchObject({ status: 404, body: { error: { type: 'permanent', message: 'task write has no artifact nothing.txt (it has: workspace.diff, plan.json)' } } });
    expect(await get('other', 'workspace.diff')).toMatchObject({ status: 404, body: { error: { message: `execution ${executionId} has no task other` } } });
  });

  it('signs nothing outside artifacts/, even when a record names it', async () => {
    const res = await get('write', 'plan.json');
    expect(res.status).toBe(500);
    expect(res.body.error.message).toBe("artifact plan.json of task write points outside the layer's artifacts: not served");
    expect(res.headers.location).toBeUndefined();
    expect(JSON.stringify(res.body)).not.toContain('X-Amz-Signature');
  });
});
