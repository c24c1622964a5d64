// GET /executions/{id}/tasks/{taskId}/artifacts/{name} in the local layer: the bytes themselves,
// streamed from the local bucket. (On AWS the API answers with a redirect to a presigned GET; here
// the bucket is an emulator on another port, which a browser page may not fetch from.)
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { contentDisposition } from '#core/artifacts.ts';
import { XlError } from '#core/errors.ts';

const ROUTE = /^(?:\/v1)?\/executions\/([^/]+)\/tasks\/([^/]+)\/artifacts\/([^/]+)\/?$/;

/** The route's parameters, when the request is for it. */
export function artifactRoute(req: IncomingMessage): { executionId: string; taskId: string; name: string } | undefined {
  if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
  const m = ROUTE.exec(new URL(req.url ?? '/', 'http://127.0.0.1').pathname);
  if (!m) return undefined;
  try {
    return { executionId: decodeURIComponent(m[1]!), taskId: decodeURIComponent(m[2]!), name: decodeURIComponent(m[3]!) };
  } catch {
    return undefined; // a malformed escape: the API's router answers it
  }
}

export async function serveArtifact(req: IncomingMessage, res: ServerResponse, params: NonNullable<ReturnType<typeof artifactRoute>>): Promise<void> {
  const [{ bearerAllowed }, { executionService }, { s3Client }] = await Promise.all([
    import('../functions/lib/http.ts'),
    import('../functions/lib/deps.ts'),
    import('#core/aws/clients.ts'),
  ]);
  const fail = (status: number, type: string, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { type, message } }));
  };
  if (!bearerAllowed(req.headers.authorization)) return fail(401, 'permanent', 'missing or wrong bearer token');
  let body: Readable;
  let length: number | undefined;
  let object;
  try {
    object = await executionService().artifact(params.executionId, params.taskId, params.name);
    const got = await s3Client().send(new GetObjectCommand({ Bucket: object.bucket, Key: object.key }));
    body = got.Body as Readable;
    length = got.ContentLength;
  } catch (err) {
    if (err instanceof XlError) return fail(err.status, err.type, err.message);
    if ((err as { name?: string }).name === 'NoSuchKey') return fail(404, 'permanent', `the bytes of artifact ${params.name} are gone from the bucket`);
    return fail(500, 'transient', `could not read artifact ${params.name}: ${(err as Error).message}`);
  }
  res.writeHead(200, {
    'content-type': object.contentType,
    ...(length !== undefined ? { 'content-length': String(length) } : {}),
    'content-disposition': contentDisposition(object.name),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    // Never a page of this origin, whatever the bytes are.
    'content-security-policy': "default-src 'none'; sandbox",
  });
  if (req.method === 'HEAD') {
    body.destroy();
    return void res.end();
  }
  Readable.from(body).on('error', () => res.destroy()).pipe(res);
}
