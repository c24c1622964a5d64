// `xl console`: the console for any layer, the deployed stack's included, from a server on the
// loopback interface. It serves the page (local/console.ts) and forwards the page's API calls to the
// endpoint; to API Gateway signed with SigV4 from the user's default credential chain, so that no
// AWS credential ever reaches the browser and nothing needs public hosting.
//
// A server that signs with the user's credentials must act for the console only: it answers
// requests for its own host name (no DNS rebinding), from its own origin, that carry the header
// the console sends (a cross-site page can send none without a preflight, which it refuses).
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { Readable } from 'node:stream';
import { serveConsole } from '../local/console.ts';
import { type Endpoint, followRedirect } from './client.ts';

export const CONSOLE_HEADER = 'x-xl-console';
const MAX_BODY_BYTES = 2 * 1024 * 1024;
/** Request headers passed on to the API; anything else (cookies, the browser's own) stays here. */
const FORWARDED = ['accept', 'content-type', 'last-event-id', 'authorization'];

export type Signer = (method: string, url: string, body: string | undefined, headers: Record<string, string>) => Promise<Record<string, string>>;

export const isApiGateway = (url: string) => /\.execute-api\.[a-z0-9-]+\.amazonaws\.com/.test(url);

export interface ConsoleServerOptions {
  endpoint: Endpoint;
  port?: number;
  /** Signs each forwarded request; by default SigV4 for an API Gateway endpoint, none otherwise. */
  sign?: Signer;
}

export async function startConsoleServer(opts: ConsoleServerOptions): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const base = opts.endpoint.url.replace(/\/$/, '');
  const sign: Signer | undefined = opts.sign ?? (isApiGateway(base) ? (await import('./aws.ts')).signedHeaders : undefined);
  let url = '';
  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) reply(res, 502, `could not forward to ${base}: ${(err as Error).message}`);
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const own = new URL(url);
    const hostOk = req.headers.host === own.host || req.headers.host === `localhost:${own.port}`;
    if (!hostOk) return reply(res, 403, `this server answers for ${own.host} only`);
    if (await serveConsole(req, res)) return;
    const origin = req.headers.origin;
    if ((origin && origin !== own.origin && origin !== `http://localhost:${own.port}`) || req.headers[CONSOLE_HEADER] !== '1') {
      return reply(res, 403, `only the console at ${own.origin}/console may call the API through this server`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) return reply(res, 413, `request body is over ${MAX_BODY_BYTES} bytes`);
      chunks.push(chunk as Buffer);
    }
    const body = chunks.length ? Buffer.concat(chunks).toString('utf8') : undefined;
    const target = base + (req.url ?? '/');
    const method = req.method ?? 'GET';
    let headers: Record<string, string> = {};
    for (const name of FORWARDED) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    if (sign) {
      // IAM, not a bearer token, authorizes requests to API Gateway.
      delete headers.authorization;
      headers = await sign(method, target, body, headers);
    } else if (!headers.authorization && process.env.XL_API_TOKEN) {
      headers.authorization = `Bearer ${process.env.XL_API_TOKEN}`;
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    // An artifact on AWS is a 302 to a presigned S3 GET: followed here, without the signature, so the
    // page gets the bytes from its own origin (its CSP allows no other) and never sees the URL.
    const answer = await followRedirect(await fetch(target, { method, headers, body, signal: abort.signal, redirect: 'manual' }), abort.signal);
    const out: Record<string, string> = { 'cache-control': 'no-store' };
    for (const name of ['content-type', 'content-disposition', 'x-content-type-options', 'x-amzn-errortype', 'retry-after']) {
      const value = answer.headers.get(name);
      if (value) out[name] = value;
    }
    res.writeHead(answer.status, out);
    // Streamed through: GET /events of a local layer is a stream of server-sent events.
    if (answer.body) Readable.fromWeb(answer.body as import('node:stream/web').ReadableStream).on('error', () => res.destroy()).pipe(res);
    else res.end();
  }

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, '127.0.0.1', () => ok());
  });
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : opts.port}`;
  return {
    url,
    server,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

function reply(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { type: status === 502 ? 'transient' : 'permanent', message } }));
}
