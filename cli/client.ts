// xl's HTTP client of the layer's API, and the errors a person can act on: which endpoint could not
// be reached and how to start or name one, which token or credentials a refusal asks for.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
export const stateDir = () => process.env.XL_STATE_DIR ?? join(ROOT, '.local');

export interface Endpoint {
  url: string;
  /** Where the URL came from, named in errors: a stale endpoint.json reads differently from a typo. */
  source: string;
}

export interface Client {
  endpoint: Endpoint;
  call<T = any>(method: string, path: string, body?: unknown): Promise<T>;
  /** A GET of bytes (an artifact): a redirect to a presigned URL is followed without credentials; refusals throw as call's do. */
  download(path: string): Promise<Uint8Array>;
  /** A GET whose body is read as it comes (server-sent events); refusals throw as call's do. */
  stream(path: string, headers?: Record<string, string>, signal?: AbortSignal): Promise<Response>;
}

/** An API refusal or an unreachable endpoint; `hint` says what to do about it. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly info: { status?: number; type?: string; details?: { path: string; message: string }[]; hint?: string; endpoint?: string } = {},
  ) {
    super(message);
  }
}

export async function resolveEndpoint(flag: string | undefined): Promise<Endpoint> {
  if (flag) return { url: flag, source: '--endpoint' };
  if (process.env.XL_ENDPOINT) return { url: process.env.XL_ENDPOINT, source: 'XL_ENDPOINT' };
  const file = join(stateDir(), 'endpoint.json');
  try {
    const { url } = JSON.parse(await readFile(file, 'utf8')) as { url: string };
    return { url, source: file };
  } catch {
    const { deployedEndpoint } = await import('./aws.ts');
    return { url: await deployedEndpoint(), source: `the stack ${process.env.XL_STACK_NAME ?? 'xl'}'s ApiUrl output` };
  }
}

const isApiGateway = (url: string) => /\.execute-api\.[a-z0-9-]+\.amazonaws\.com/.test(url);

export function client(endpoint: Endpoint): Client {
  const base = endpoint.url.replace(/\/$/, '');
  /** One request: the bearer token when set, SigV4 for API Gateway; an unreachable layer says so. */
  const send = async (method: string, path: string, headers: Record<string, string>, payload?: string, signal?: AbortSignal): Promise<Response> => {
    const url = base + path;
    if (process.env.XL_API_TOKEN) headers.authorization = `Bearer ${process.env.XL_API_TOKEN}`;
    if (isApiGateway(url)) {
      const { signedHeaders } = await import('./aws.ts');
      headers = await signedHeaders(method, url, payload, headers);
    }
    try {
      // Redirects are not followed with these headers: the signature and token are the API's, not S3's.
      return await fetch(url, { method, headers, body: payload, signal, redirect: 'manual' });
    } catch (err) {
      throw unreachable(endpoint, err as Error);
    }
  };
  return {
    endpoint,
    async call(method, path, body) {
      const res = await send(method, path, { 'content-type': 'application/json' }, body === undefined ? undefined : JSON.stringify(body));
      const data = await readJson(res);
      if (!res.ok) throw refusal(endpoint, res, data);
      return data;
    },
    async download(path) {
      const res = await followRedirect(await send('GET', path, {}));
      if (!res.ok) throw refusal(endpoint, res, await readJson(res));
      return new Uint8Array(await res.arrayBuffer());
    },
    async stream(path, extra = {}, signal) {
      const res = await send('GET', path, { accept: 'text/event-stream', ...extra }, undefined, signal);
      if (res.ok) return res;
      throw refusal(endpoint, res, await readJson(res));
    },
  };
}

/**
 * The API's 302 to a presigned S3 GET (an artifact on AWS), followed with no header of the request:
 * S3 refuses a request that carries a second authorization, and the API's credentials are not S3's.
 */
export async function followRedirect(res: Response, signal?: AbortSignal): Promise<Response> {
  const location = res.headers.get('location');
  if (res.status < 300 || res.status > 399 || !location) return res;
  const target = new URL(location);
  // Plain http only to this machine (the local layer, LocalStack's bucket host name).
  const local = ['127.0.0.1', 'localhost'].includes(target.hostname) || target.hostname.endsWith('localhost.localstack.cloud');
  if (target.protocol !== 'https:' && !local) {
    throw new CliError(`the API redirected to ${target.origin}, which is neither https nor this machine: not followed`);
  }
  return fetch(target, { signal, redirect: 'follow' });
}

/** A body as JSON; one that is not (a proxy's error page) as its first 500 characters. */
async function readJson(res: Response): Promise<any> {
  const text = await res.text();
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return { message: text.slice(0, 500) };
  }
}

function unreachable(endpoint: Endpoint, err: Error): CliError {
  const cause = err.cause as { code?: string; message?: string } | undefined;
  const why = cause?.code ?? cause?.message ?? err.message;
  const local = !isApiGateway(endpoint.url);
  const hint = endpoint.source.endsWith('endpoint.json')
    ? `${endpoint.source} names it, but no layer answers there: start the local layer with \`npm start\` (or \`xl up\`), or name another endpoint with --endpoint or XL_ENDPOINT`
    : local
      ? `start the local layer with \`npm start\` (or \`xl up\`), or check ${endpoint.source}; xl uses --endpoint, else XL_ENDPOINT, else the local layer's endpoint.json`
      : `check the network and the stack's ApiUrl output, or name another endpoint with --endpoint or XL_ENDPOINT`;
  return new CliError(`cannot reach the layer at ${endpoint.url} (from ${endpoint.source}): ${why}`, { hint, endpoint: endpoint.url });
}

// API Gateway's own 403s carry x-amzn-ErrorType and a bare { message } (AccessDeniedException for
// IAM: "User: <arn> is not authorized to perform: execute-api:Invoke on resource: <arn>";
// MissingAuthenticationTokenException, InvalidSignatureException, ... for unsigned or badly signed
// requests). Checked against AWS's "troubleshoot HTTP 403 errors from API Gateway" article.
const IAM_MESSAGE = /not authorized to perform|execute-api:Invoke|Missing Authentication Token|security token|signature/i;

function refusal(endpoint: Endpoint, res: Response, data: any): CliError {
  const err = data.error ?? { message: data.message ?? data.Message ?? res.statusText };
  const info = { status: res.status, type: err.type as string | undefined, details: err.details, endpoint: endpoint.url } as CliError['info'];
  const amznType = res.headers.get('x-amzn-errortype')?.split(':')[0];
  if (res.status === 401) {
    info.hint = process.env.XL_API_TOKEN
      ? 'the layer refused the token in XL_API_TOKEN: set it to the token the layer was started with (its XL_API_TOKEN)'
      : 'the layer asks for a bearer token: set XL_API_TOKEN to the token it was started with (its XL_API_TOKEN)';
  } else if (res.status === 403 && (amznType || IAM_MESSAGE.test(String(err.message)))) {
    info.type = amznType ?? 'AccessDenied';
    info.hint =
      'AWS IAM refused the request: xl signs with your default AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ' +
      '`aws sso login`); check they are current (`aws sts get-caller-identity`) and that the identity or role may call execute-api:Invoke on this API';
  }
  return new CliError(`${res.status}${info.type ? ` ${info.type}` : ''}: ${err.message}`, info);
}
