// The loopback model-credential proxy: model credentials never enter the agent's process. The
// worker listens on 127.0.0.1 and opens a session per Claude Code run; the CLI is given the proxy's
// URL and a random per-run token instead of a key. The proxy checks the token, then forwards the
// request with the real `x-api-key` (api-key mode) or signed with the worker's AWS credentials for
// Bedrock (bedrock mode), and streams the answer back unbuffered. Closing the session revokes the
// token and cuts its requests, so a process left behind by the run cannot go on using it.
//
// The CLI sends the token as `x-api-key` in both modes: as its API key (ANTHROPIC_API_KEY) against
// ANTHROPIC_BASE_URL, and as a custom header (ANTHROPIC_CUSTOM_HEADERS, which the CLI keeps on
// Bedrock requests when CLAUDE_CODE_SKIP_BEDROCK_AUTH is set) against ANTHROPIC_BEDROCK_BASE_URL.
//
// Only the routes the CLI needs pass (ROUTES); anything else is 404, after the token check. (On
// Bedrock the CLI also asks `GET /inference-profiles` without its custom headers: refused with 401,
// which the CLI survives; checked with the real CLI in a loopback-only network namespace.)
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse, Agent as HttpAgent, createServer, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

export type ModelAccessMode = 'api-key' | 'bedrock';

/** What the claude-code driver asks for per run: the CLI's model variables, and how to revoke them. */
export interface ModelSession {
  env: Record<string, string>;
  close(): void;
  /** The model API's last HTTP status to this run as the proxy saw it (502 when unreachable); undefined before any. */
  lastStatus?(): number | undefined;
}
export interface ModelAccess {
  open(): Promise<ModelSession>;
}

type Credentials = ConstructorParameters<typeof SignatureV4>[0]['credentials'];

export type ModelProxyOptions = (
  | { mode: 'api-key'; /** The real key, read when a request goes out (so a rotated secret is picked up). */ apiKey: () => Promise<string> }
  | { mode: 'bedrock'; region: string; credentials: Credentials }
) & {
  /** Where requests go (default https://api.anthropic.com, or https://bedrock-runtime.<region>.amazonaws.com). */
  upstream?: string;
  /**
   * Connect here instead of the upstream's own address (like curl's --resolve); the Host header and
   * the signature still name the upstream. For tests and local tunnels.
   */
  dial?: string;
  /** Request bodies over this are refused with 413 (default 32 MiB, the Messages API's own limit). */
  maxBodyBytes?: number;
  /** Told about refused requests (never with a token). */
  onRefused?: (why: string, fields: { method?: string; path?: string; status: number }) => void;
};

export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;
export const ANTHROPIC_API = 'https://api.anthropic.com';
export const bedrockRuntimeUrl = (region: string) => `https://bedrock-runtime.${region}.amazonaws.com`;

/** The API the CLI uses, per mode: method and path (the query string is passed on as it is). */
export const ROUTES: Record<ModelAccessMode, [method: string, path: RegExp][]> = {
  'api-key': [
    ['POST', /^\/v1\/messages$/],
    ['POST', /^\/v1\/messages\/count_tokens$/],
    ['GET', /^\/v1\/models(\/[^/]+)?$/],
  ],
  bedrock: [['POST', /^\/model\/[^/]+\/(invoke|invoke-with-response-stream|count-tokens)$/]],
};

const TOKEN = /^xlrun-([0-9a-f]{16})-([0-9a-f]{64})$/;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);
/** What the proxy takes from the CLI's request in bedrock mode (all of it signed). */
const BEDROCK_HEADERS = /^(content-type|accept|x-amzn-bedrock-.*)$/;

interface Session {
  secret: Buffer;
  inFlight: Set<() => void>;
  /** The upstream's last answer to this run (502: unreachable): how the run's failure is classified. */
  lastStatus?: number;
}

export class ModelProxy implements ModelAccess {
  private readonly sessions = new Map<string, Session>();
  private readonly upstream: URL;
  private readonly dial: URL;
  private readonly agent: HttpAgent;
  private readonly signer?: SignatureV4;
  private readonly maxBodyBytes: number;
  private server?: Server;
  private port = 0;

  constructor(private readonly opts: ModelProxyOptions) {
    this.upstream = new URL(opts.upstream ?? (opts.mode === 'bedrock' ? bedrockRuntimeUrl(opts.region) : ANTHROPIC_API));
    this.dial = opts.dial ? new URL(opts.dial) : this.upstream;
    this.agent = this.dial.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    if (opts.mode === 'bedrock') {
      this.signer = new SignatureV4({ service: 'bedrock', region: opts.region, credentials: opts.credentials, sha256: Sha256 });
    }
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  }

  get mode(): ModelAccessMode {
    return this.opts.mode;
  }

  /** http://127.0.0.1:<port>, once listening. */
  get url(): string {
    if (!this.server) throw new Error('the model proxy is not listening');
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** A session for one run; in api-key mode it fails when the key cannot be had (an unreadable secret). */
  async open(): Promise<ModelSession> {
    const url = this.url;
    if (this.opts.mode === 'api-key') await this.opts.apiKey();
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('hex');
    const session: Session = { secret: Buffer.from(secret), inFlight: new Set() };
    this.sessions.set(id, session);
    const token = `xlrun-${id}-${secret}`;
    const env: Record<string, string> =
      this.opts.mode === 'api-key'
        ? { ANTHROPIC_BASE_URL: url, ANTHROPIC_API_KEY: token }
        : {
            CLAUDE_CODE_USE_BEDROCK: '1',
            ANTHROPIC_BEDROCK_BASE_URL: url,
            CLAUDE_CODE_SKIP_BEDROCK_AUTH: '1',
            ANTHROPIC_CUSTOM_HEADERS: `x-api-key: ${token}`,
            // The CLI picks Bedrock model ids (inference-profile prefixes) by region.
            AWS_REGION: this.opts.region,
          };
    return {
      env,
      lastStatus: () => session.lastStatus,
      close: () => {
        if (this.sessions.get(id) !== session) return;
        this.sessions.delete(id);
        for (const cut of session.inFlight) cut();
      },
    };
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) for (const cut of s.inFlight) cut();
    this.sessions.clear();
    this.agent.destroy();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private session(headers: IncomingHttpHeaders): Session | undefined {
    const match = TOKEN.exec(String(headers['x-api-key'] ?? ''));
    if (!match) return undefined;
    const session = this.sessions.get(match[1]!);
    if (!session) return undefined;
    return timingSafeEqual(session.secret, Buffer.from(match[2]!)) ? session : undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const refuse = (status: number, type: string, message: string) => {
      this.opts.onRefused?.(message, { method: req.method, path: url.pathname, status });
      res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify({ type: 'error', error: { type, message } }));
      req.resume();
    };
    const session = this.session(req.headers);
    if (!session) return refuse(401, 'authentication_error', 'the model proxy needs a valid per-run token');
    if (!ROUTES[this.opts.mode].some(([m, p]) => m === req.method && p.test(url.pathname))) {
      return refuse(404, 'not_found_error', `${req.method} ${url.pathname} is not a model API route the proxy forwards`);
    }
    if (Number(req.headers['content-length'] ?? 0) > this.maxBodyBytes) {
      return refuse(413, 'request_too_large', `request bodies are limited to ${this.maxBodyBytes} bytes`);
    }

    const ac = new AbortController();
    const cut = () => ac.abort();
    session.inFlight.add(cut);
    res.on('close', () => {
      session.inFlight.delete(cut);
      if (!res.writableFinished) ac.abort(); // the CLI went away: so does the upstream request
    });
    try {
      const body = await readBody(req, this.maxBodyBytes, ac.signal);
      if (body === 'too-large') return refuse(413, 'request_too_large', `request bodies are limited to ${this.maxBodyBytes} bytes`);
      const path = this.upstream.pathname.replace(/\/$/, '') + url.pathname + url.search;
      const headers = await this.upstreamHeaders(req, path, url.searchParams, body);
      if (ac.signal.aborted) return void res.destroy();
      this.forward(path, req.method!, headers, body, res, ac.signal, session);
    } catch (err) {
      if (ac.signal.aborted) return void res.destroy();
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'api_error', message: `model proxy: ${(err as Error).message}` } }));
    }
  }

  /** The CLI's headers without its token, with the real credentials. */
  private async upstreamHeaders(req: IncomingMessage, path: string, query: URLSearchParams, body: Buffer): Promise<OutgoingHttpHeaders> {
    const host = this.upstream.host;
    if (this.opts.mode === 'api-key') {
      const headers: OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (!HOP_BY_HOP.has(name) && name !== 'x-api-key' && name !== 'authorization' && value !== undefined) headers[name] = value;
      }
      return { ...headers, host, 'content-length': String(body.length), 'x-api-key': await this.opts.apiKey() };
    }
    const headers: Record<string, string> = { host };
    for (const [name, value] of Object.entries(req.headers)) {
      if (BEDROCK_HEADERS.test(name) && typeof value === 'string') headers[name] = value;
    }
    const signed = await this.signer!.sign({
      method: req.method!,
      protocol: this.upstream.protocol,
      hostname: this.upstream.hostname,
      path: path.split('?')[0]!,
      query: queryBag(query),
      headers,
      body,
    });
    return { ...signed.headers, 'content-length': String(body.length) };
  }

  private forward(path: string, method: string, headers: OutgoingHttpHeaders, body: Buffer, res: ServerResponse, signal: AbortSignal, session: Session): void {
    const send = this.dial.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstreamReq = send(
      {
        protocol: this.dial.protocol,
        hostname: this.dial.hostname,
        port: this.dial.port || undefined,
        // TLS names the upstream even when dialling elsewhere.
        servername: this.upstream.hostname,
        method,
        path,
        headers,
        agent: this.agent,
        signal,
      },
      (upstreamRes) => {
        const out: OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(upstreamRes.headers)) {
          if (!HOP_BY_HOP.has(name) || name === 'content-length') out[name] = value;
        }
        session.lastStatus = upstreamRes.statusCode ?? 502;
        res.writeHead(upstreamRes.statusCode ?? 502, out);
        res.flushHeaders(); // SSE and event streams: the CLI sees the first event as it comes
        upstreamRes.on('error', () => res.destroy());
        upstreamRes.pipe(res);
      },
    );
    upstreamReq.on('error', (err) => {
      if (signal.aborted || res.headersSent) return void res.destroy();
      session.lastStatus = 502;
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'api_error', message: `model proxy: upstream unreachable (${err.message})` } }));
    });
    upstreamReq.end(body);
  }
}

/** The request body, or 'too-large' once it passes the cap (the rest is not read). */
function readBody(req: IncomingMessage, cap: number, signal: AbortSignal): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > cap) {
        req.removeAllListeners('data');
        signal.removeEventListener('abort', onAbort);
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(Buffer.concat(chunks, bytes));
    });
    req.on('error', reject);
  });
}

function queryBag(params: URLSearchParams): Record<string, string | string[]> {
  const bag: Record<string, string | string[]> = {};
  for (const key of new Set(params.keys())) {
    const all = params.getAll(key);
    bag[key] = all.length === 1 ? all[0]! : all;
  }
  return bag;
}
