// The embedded layer's own AWS clients call its emulators in this process, with no socket (issue
// 12): a smithy request handler that gives each signed request to the emulator's HTTP request
// listeners through light-my-request (Fastify's own injector). The SDK serializes and signs, the
// emulator parses and answers, exactly as over HTTP; only the TCP hop goes, which with Node's HTTP
// server and client was about a fifth of the layer process's CPU (README, "Where the overhead goes").
// Processes other than the layer (agents, `xl`, awscli) keep HTTP and the endpoint variables.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { HeaderBag, HttpHandlerOptions, HttpRequest, HttpResponse } from '@smithy/types';
import inject from 'light-my-request';

export interface InProcessHandlerOptions {
  /** Rejects a request not answered (headers) within this many ms; 0 or absent: no limit, as the SDK's default. */
  requestTimeout?: number;
}

/**
 * A smithy HttpHandler for SDK v3 clients whose endpoint is `server`, an http.Server in this
 * process: each request is dispatched to the server's `request` listeners (the emulator's, and any
 * counter the layer put beside it), as a request that came in on a socket would be.
 */
export class InProcessHandler {
  readonly metadata = { handlerProtocol: 'http/1.1' };
  private readonly config: InProcessHandlerOptions;

  constructor(
    private readonly server: Server,
    options: InProcessHandlerOptions = {},
  ) {
    this.config = { ...options };
  }

  handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    // The SDK passes a DOM AbortSignal, or its own older kind that has only `onabort`.
    const abortSignal = options.abortSignal as (AbortSignal & { onabort: unknown }) | undefined;
    const { requestTimeout } = options;
    return new Promise((resolve, reject) => {
      // As the SDK's node handler: a request aborted before it starts is never sent.
      if (abortSignal?.aborted) return reject(abortError(abortSignal));
      // What a socket would say of a closed server: nothing may reach a closed emulator's store.
      if (!this.server.listening) {
        return reject(Object.assign(new Error(`the emulator at ${request.hostname}:${request.port ?? ''} is closed`), { code: 'ECONNREFUSED' }));
      }
      let settled = false;
      let body: Readable | undefined;
      let timer: NodeJS.Timeout | undefined;
      const fail = (err: Error) => {
        if (body) body.destroy(err);
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      };
      // An abort or a timeout ends the caller's wait only: the emulator finishes what it was given,
      // as a server does whose client hung up (and as SQS serves a long poll whose client has gone).
      const onAbort = () => fail(abortError(abortSignal));
      if (abortSignal) {
        if (typeof abortSignal.addEventListener === 'function') abortSignal.addEventListener('abort', onAbort, { once: true });
        else abortSignal.onabort = onAbort;
      }
      const timeoutMs = requestTimeout ?? this.config.requestTimeout;
      if (timeoutMs) {
        timer = setTimeout(() => fail(Object.assign(new Error(`the emulator did not answer within the ${timeoutMs} ms requestTimeout`), { name: 'TimeoutError', code: 'ETIMEDOUT' })), timeoutMs);
      }
      const done = () => {
        clearTimeout(timer);
        if (abortSignal && typeof abortSignal.removeEventListener === 'function') abortSignal.removeEventListener('abort', onAbort);
      };
      const dispatch = (req: IncomingMessage, res: ServerResponse) => {
        // A throw from a listener is an error for this caller (light-my-request rejects with it), not a hang.
        this.server.emit('request', req, res);
      };
      try {
        inject(
          dispatch,
          {
            method: request.method,
            url: pathOf(request),
            headers: request.headers,
            payload: payloadOf(request.body),
            // Resolves on the response's headers, with its body a stream (an S3 object is not buffered).
            payloadAsStream: true,
            validate: false, // the options are built here; light-my-request's schema check costs an Ajv run per call
          },
          (err, res) => {
            if (err || !res) {
              done();
              return fail(err ?? new Error('the emulator gave no response'));
            }
            body = res.stream();
            body.once('close', done);
            if (settled) return void body.destroy();
            settled = true;
            clearTimeout(timer);
            resolve({ response: { statusCode: res.statusCode, reason: res.statusMessage, headers: headersOf(res.headers), body } });
          },
        );
      } catch (err) {
        done();
        fail(err as Error);
      }
    });
  }

  updateHttpClientConfig(key: keyof InProcessHandlerOptions, value: InProcessHandlerOptions[typeof key]): void {
    this.config[key] = value;
  }

  httpHandlerConfigs(): InProcessHandlerOptions {
    return this.config;
  }

  destroy(): void {}
}

/** The SDK's AbortError (name `AbortError`), with the signal's reason, as its node handler builds it. */
function abortError(signal: HttpHandlerOptions['abortSignal']): Error {
  const reason = signal && 'reason' in signal ? (signal as { reason?: unknown }).reason : undefined;
  const error = new Error(reason && !(reason instanceof Error) ? String(reason) : 'Request aborted');
  error.name = 'AbortError';
  if (reason instanceof Error) error.cause = reason;
  return error;
}

/** The request's path and query, encoded as the SDK's node handler sends them (RFC 3986). */
function pathOf(request: HttpRequest): string {
  const parts: string[] = [];
  for (const key of Object.keys(request.query ?? {}).sort()) {
    const value = request.query![key];
    const k = escape(key);
    if (Array.isArray(value)) for (const v of value) parts.push(`${k}=${escape(v)}`);
    else if (value === null || value === undefined) parts.push(k);
    else parts.push(`${k}=${escape(value)}`);
  }
  return parts.length ? `${request.path}?${parts.join('&')}` : request.path;
}

const escape = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** A body light-my-request sends as is: a string, a Buffer or a stream (it would JSON-encode a bare Uint8Array). */
function payloadOf(body: unknown): string | Buffer | Readable | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || Buffer.isBuffer(body) || body instanceof Readable) return body;
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  throw new Error(`an in-process request body must be a string, bytes or a Readable, got ${Object.prototype.toString.call(body)}`);
}

/** Repeated headers joined with commas, as the SDK's node handler gives them. */
function headersOf(headers: Record<string, string | string[] | number | undefined>): HeaderBag {
  const out: HeaderBag = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return out;
}
