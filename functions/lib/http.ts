// HTTP plumbing for the API Lambda (REST API proxy events): routing, JSON bodies, the contract's
// error body, and the local bearer token.
import { timingSafeEqual } from 'node:crypto';
import type middy from '@middy/core';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import { classifyApiError } from '#core/classify.ts';
import { PayloadTooLargeError, UnauthorizedError, ValidationError, XlError } from '#core/errors.ts';
import { logger } from './deps.ts';

export const MAX_BODY_BYTES = 1024 * 1024;

export interface Request {
  method: string;
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
}
export type Route = {
  method: string;
  /** As written, e.g. `/executions/{executionId}` (the OpenAPI document's path). */
  template: string;
  pattern: RegExp;
  keys: string[];
  /** `headers`: beside the JSON content type (a redirect's Location). */
  handle: (req: Request) => Promise<{ status: number; body: unknown; headers?: Record<string, string> }>;
};

/** `/executions/{executionId}` → a route matching that path, capturing executionId. */
export function route(method: string, template: string, handle: Route['handle']): Route {
  const keys: string[] = [];
  // A literal dot (/openapi.json) is escaped; {name} captures one path segment.
  const source = template.replaceAll('.', '\\.').replace(/\{(\w+)\}/g, (_, key: string) => {
    keys.push(key);
    return '([^/]+)';
  });
  return { method, template, pattern: new RegExp(`^${source}/?$`), keys, handle };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyResult {
  return { statusCode: status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

function parseBody(event: APIGatewayProxyEvent): unknown {
  if (!event.body) return undefined;
  const text = event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw new PayloadTooLargeError(`request body is over ${MAX_BODY_BYTES} bytes`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`request body is not JSON: ${(err as Error).message}`, [{ path: '', message: 'not JSON' }]);
  }
}

/**
 * On AWS each route is its own API Gateway resource: `event.resource` is the route's template and
 * `pathParameters` hold its values, whatever base path a custom domain adds to `event.path`.
 * Locally (and behind a `{proxy+}`) the route is found by matching `event.path`.
 */
export function dispatch(routes: Route[]) {
  return async (event: APIGatewayProxyEvent): Promise<APIGatewayProxyResult> => {
    const path = event.path.replace(/^\/v1(?=\/)/, '');
    const declared = routes.filter((r) => r.template === event.resource);
    const candidates = declared.length ? declared : routes.filter((r) => r.pattern.test(path));
    const match = candidates.find((r) => r.method === event.httpMethod);
    if (!match) {
      if (candidates.length) return json(405, { error: { type: 'validation', message: `${event.httpMethod} is not allowed on ${path}` } });
      return json(404, { error: { type: 'permanent', message: `no route ${event.httpMethod} ${path}` } });
    }
    const fromPath = match.pattern.exec(path)?.slice(1).map((v, i) => decodeSegment(v, match.keys[i]!));
    // pathParameters only where the path does not match the template (a custom domain's base path).
    const params = Object.fromEntries(match.keys.map((k, i) => [k, fromPath ? fromPath[i]! : event.pathParameters?.[k] ?? '']));
    const query = Object.fromEntries(Object.entries(event.queryStringParameters ?? {}).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const { status, body, headers } = await match.handle({ method: event.httpMethod, path, params, query, body: parseBody(event) });
    return json(status, body, headers);
  };
}

/** A path segment's value; malformed percent-encoding (`%ZZ`) is the caller's error, not a 500. */
function decodeSegment(segment: string, key: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ValidationError(`${key} "${segment}" is not valid percent-encoding`, [{ path: `/${key}`, message: 'not valid percent-encoding' }]);
  }
}

/** Maps thrown errors to the contract's error body; anything unexpected is a 500 without internals. */
export const errorBody = (): middy.MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> => ({
  onError: async (request) => {
    const err = request.error;
    if (err instanceof XlError) {
      request.response = json(err.status, {
        // The source (an extension): a request the API refused, or the layer behind it failing.
        error: { ...classifyApiError(err), ...(err.details ? { details: err.details } : {}) },
      });
      return;
    }
    logger.error('unhandled API error', { error: err as Error });
    request.response = json(500, { error: { type: 'transient', source: 'layer', message: 'internal error; try again' } });
  },
});

/**
 * Locally, XL_API_TOKEN guards every route but GET /health and GET /openapi.json (the API's
 * description, public like any API's reference: it holds no data of the layer). On AWS, IAM does.
 */
export const bearerToken = (): middy.MiddlewareObj<APIGatewayProxyEvent, APIGatewayProxyResult> => ({
  before: async (request) => {
    const { httpMethod, path } = request.event;
    if (httpMethod === 'GET' && /^(\/v1)?\/(health|openapi\.json)\/?$/.test(path)) return;
    const header = request.event.headers?.authorization ?? request.event.headers?.Authorization;
    if (!bearerAllowed(header)) throw new UnauthorizedError();
  },
});

/** Whether an Authorization header carries XL_API_TOKEN (always, when no token is set). The local GET /events stream checks it too. */
export function bearerAllowed(header: string | undefined): boolean {
  const token = process.env.XL_API_TOKEN;
  if (!token) return true;
  const given = Buffer.from((header ?? '').replace(/^Bearer\s+/i, ''));
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
