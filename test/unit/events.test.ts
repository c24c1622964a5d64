// The layer's events on their way out: the webhook's signature and its retries (a fake clock), the
// local ring and its resume, the server-sent event stream, and the bus sink's PutEvents entries.
import { createHmac } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { handler as api } from '../support/api.ts';
import { type PutEvents, eventBusSink } from '../../core/aws/event-bus.ts';
import { type LayerEvent, type StampedEvent, parseKindFilter } from '../../core/events.ts';
import { WebhookSink, signWebhook, verifyWebhook, webhookFromEnv } from '../../core/webhook.ts';
import { EventRing, serveEvents } from '../../local/events.ts';
import { waitFor } from '../support/processes.ts';

const failed: LayerEvent = { kind: 'execution.failed', executionId: 'e1', name: 'nightly', status: 'FAILED', message: 'task t1 failed' };
const started = (executionId: string): LayerEvent => ({ kind: 'execution.started', executionId, name: executionId, run: 0 });

describe('the webhook signature', () => {
  it('is sha256= and the hex HMAC of "<timestamp>.<body>" with the secret', () => {
    const expected = createHmac('sha256', 's3cret').update('1700000000.{"a":1}').digest('hex');
    expect(signWebhook('s3cret', 1_700_000_000, '{"a":1}')).toBe(`sha256=${expected}`);
  });

  it('verifies a fresh request and refuses a changed body, a wrong secret, a replay and a missing header', () => {
    const body = JSON.stringify(failed);
    const signature = signWebhook('s3cret', 1000, body);
    const at = { nowSeconds: 1010 };
    expect(verifyWebhook('s3cret', { signature, timestamp: '1000', body }, at)).toEqual({ ok: true });
    expect(verifyWebhook('s3cret', { signature, timestamp: '1000', body: body + ' ' }, at)).toEqual({ ok: false, reason: 'signature does not match' });
    expect(verifyWebhook('other', { signature, timestamp: '1000', body }, at)).toEqual({ ok: false, reason: 'signature does not match' });
    // The timestamp is signed: moving it forward to pass the age check breaks the signature.
    expect(verifyWebhook('s3cret', { signature, timestamp: '2000', body }, { nowSeconds: 2000 }).ok).toBe(false);
    expect(verifyWebhook('s3cret', { signature, timestamp: '1000', body }, { nowSeconds: 1000 + 301 })).toEqual({
      ok: false,
      reason: 'timestamp is more than 300 s from now: a replay or a skewed clock',
    });
    expect(verifyWebhook('s3cret', { signature: undefined, timestamp: '1000', body }, at)).toEqual({ ok: false, reason: 'missing x-xl-signature' });
  });

  it('is required with the URL, and the URL must be http(s): the layer refuses to start otherwise', () => {
    expect(webhookFromEnv({})).toBeUndefined();
    expect(() => webhookFromEnv({ XL_WEBHOOK_URL: 'http://127.0.0.1:9/hook' })).toThrow('XL_WEBHOOK_URL is set but XL_WEBHOOK_SECRET is not');
    expect(() => webhookFromEnv({ XL_WEBHOOK_URL: 'ftp://host/x', XL_WEBHOOK_SECRET: 's' })).toThrow('XL_WEBHOOK_URL must be http or https, got ftp:');
    expect(() => webhookFromEnv({ XL_WEBHOOK_URL: 'not a url', XL_WEBHOOK_SECRET: 's' })).toThrow('XL_WEBHOOK_URL is not a URL');
    expect(webhookFromEnv({ XL_WEBHOOK_URL: 'https://example.test/hook', XL_WEBHOOK_SECRET: 's' })).toEqual({ url: 'https://example.test/hook', secret: 's' });
  });
});

/** A fake clock: sleeping moves it on at once and records how long each wait was. */
function fakeClock(start = 1_700_000_000_000) {
  let now = start;
  const waits: number[] = [];
  return {
    now: () => now,
    sleep: async (ms: number) => {
      waits.push(ms);
      now += ms;
    },
    waits,
  };
}

/** A receiver that answers the given statuses in turn (then 200) and keeps what it was sent. */
function receiver(statuses: (number | 'network')[]) {
  const requests: { headers: Headers; body: string }[] = [];
  const send: typeof fetch = async (_url, init) => {
    requests.push({ headers: new Headers(init!.headers), body: String(init!.body) });
    const status = statuses.shift() ?? 200;
    if (status === 'network') throw new TypeError('fetch failed');
    return new Response('', { status });
  };
  return { send, requests };
}

describe('the webhook delivery', () => {
  it('retries a failing receiver with exponential backoff and full jitter, signing each try anew', async () => {
    const clock = fakeClock();
    const hook = receiver([503, 'network', 429]);
    const warnings: string[] = [];
    const sink = new WebhookSink({ url: 'http://hook.test/', secret: 's3cret', fetch: hook.send, now: clock.now, sleep: clock.sleep, random: () => 0.5, log: { warn: (m) => warnings.push(m) } });
    await sink.emit(failed);
    await sink.idle();
    expect(hook.requests).toHaveLength(4);
    // Half of 500, 1000 and 2000 ms (random 0.5 of the cap each time).
    expect(clock.waits).toEqual([250, 500, 1000]);
    const timestamps = hook.requests.map((r) => Number(r.headers.get('x-xl-timestamp')));
    expect(timestamps).toEqual([1_700_000_000, 1_700_000_000, 1_700_000_000, 1_700_000_001]);
    for (const r of hook.requests) {
      expect(verifyWebhook('s3cret', { signature: r.headers.get('x-xl-signature')!, timestamp: r.headers.get('x-xl-timestamp')!, body: r.body }, { nowSeconds: 1_700_000_001 })).toEqual({ ok: true });
    }
    expect(JSON.parse(hook.requests[0]!.body)).toMatchObject({ ...failed, at: '2023-11-14T22:13:20.000Z' });
    expect(new Set(hook.requests.map((r) => r.headers.get('x-xl-event-id'))).size).toBe(1);
    expect(warnings).toEqual([]);
  });

  it('caps the backoff and drops the event after its tries, with a log line', async () => {
    const clock = fakeClock();
    const hook = receiver(Array(10).fill(500));
    const warnings: string[] = [];
    const sink = new WebhookSink({ url: 'http://hook.test/', secret: 's', attempts: 6, maxDelayMs: 3000, fetch: hook.send, now: clock.now, sleep: clock.sleep, random: () => 0.999, log: { warn: (m) => warnings.push(m) } });
    await sink.emit(failed);
    await sink.idle();
    expect(hook.requests).toHaveLength(6);
    expect(clock.waits).toEqual([499, 999, 1998, 2997, 2997]);
    expect(warnings).toEqual([expect.stringMatching(/^webhook: execution\.failed \S+ dropped after 6 tries: HTTP 500$/)]);
  });

  it('does not retry a 4xx other than 408 and 429: the receiver refused the event', async () => {
    const clock = fakeClock();
    const hook = receiver([400]);
    const warnings: string[] = [];
    const sink = new WebhookSink({ url: 'http://hook.test/', secret: 's', fetch: hook.send, now: clock.now, sleep: clock.sleep, log: { warn: (m) => warnings.push(m) } });
    await sink.emit(failed);
    await sink.idle();
    expect(hook.requests).toHaveLength(1);
    expect(warnings).toEqual([expect.stringContaining('dropped after 1 try: HTTP 400')]);
  });

  it('never blocks the producer: emit returns before the receiver answers', async () => {
    let answer: (r: Response) => void = () => undefined;
    const sink = new WebhookSink({ url: 'http://hook.test/', secret: 's', fetch: () => new Promise<Response>((ok) => (answer = ok)), log: { warn: () => undefined } });
    let returned = false;
    await sink.emit(failed).then(() => (returned = true));
    expect(returned).toBe(true);
    answer(new Response('', { status: 200 }));
    await sink.idle();
  });

  it('drops new events, logged, when too many wait for a slow receiver', async () => {
    const warnings: string[] = [];
    const answers: ((r: Response) => void)[] = [];
    const sink = new WebhookSink({ url: 'http://hook.test/', secret: 's', maxPending: 2, fetch: () => new Promise<Response>((ok) => answers.push(ok)), log: { warn: (m) => warnings.push(m) } });
    for (const id of ['a', 'b', 'c']) await sink.emit(started(id));
    expect(warnings).toEqual(['webhook: 2 events pending, execution.started dropped']);
    await waitFor(() => answers.length === 2);
    for (const ok of answers) ok(new Response(null, { status: 204 }));
    await sink.idle();
  });
});

describe('the local event ring', () => {
  it('gives each event an increasing id and the time it happened', async () => {
    const ring = new EventRing({ firstId: 100, now: () => Date.parse('2026-01-01T00:00:00Z') });
    await ring.emit(started('a'));
    await ring.emit(started('b'));
    expect(ring.since()).toEqual([
      { id: '100', at: '2026-01-01T00:00:00.000Z', ...started('a') },
      { id: '101', at: '2026-01-01T00:00:00.000Z', ...started('b') },
    ]);
  });

  it('resumes after a Last-Event-ID with only the later events', async () => {
    const ring = new EventRing({ firstId: 1 });
    for (const id of ['a', 'b', 'c', 'd']) await ring.emit(started(id));
    expect(ring.since('2').map((e) => e.id)).toEqual(['3', '4']);
    expect(ring.since('4')).toEqual([]);
  });

  it('keeps the newest events up to its capacity; an id it has dropped, or one it never gave, gets all it has', async () => {
    const ring = new EventRing({ firstId: 1, capacity: 3 });
    for (const id of ['a', 'b', 'c', 'd', 'e']) await ring.emit(started(id));
    expect(ring.since().map((e) => e.id)).toEqual(['3', '4', '5']);
    expect(ring.since('2').map((e) => e.id)).toEqual(['3', '4', '5']);
    expect(ring.since('1').map((e) => e.id)).toEqual(['3', '4', '5']);
    expect(ring.since('99').map((e) => e.id)).toEqual(['3', '4', '5']);
    expect(ring.since('garbage').map((e) => e.id)).toEqual(['3', '4', '5']);
  });

  it("starts its ids at the layer's boot time, so a restarted layer's ids are above the last run's", () => {
    const before = Date.now();
    const ring = new EventRing();
    void ring.emit(started('a'));
    expect(Number(ring.since()[0]!.id)).toBeGreaterThanOrEqual(before);
  });
});

describe('kind filters', () => {
  it('match kinds and families, and name the known kinds for one that matches none', () => {
    const wanted = parseKindFilter('execution, breaker.opened')!;
    expect(['execution.started', 'execution.failed', 'breaker.opened'].every((k) => wanted(k as never))).toBe(true);
    expect(wanted('breaker.closed')).toBe(false);
    expect(parseKindFilter('')).toBeUndefined();
    expect(() => parseKindFilter('executions')).toThrow(/^unknown event kind "executions": kinds are execution\.started, /);
  });
});

describe('GET /events', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((ok) => (server ? (server.closeAllConnections(), server.close(() => ok())) : ok())));

  async function serve(ring: EventRing, heartbeatMs?: number): Promise<string> {
    server = createServer((req, res) => serveEvents(ring, req, res, { heartbeatMs }));
    await new Promise<void>((ok) => server!.listen(0, '127.0.0.1', ok));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  }

  /** Reads a stream until `until` holds of what it has read, then disconnects. */
  async function read(url: string, headers: Record<string, string>, until: (text: string) => boolean): Promise<string> {
    const controller = new AbortController();
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while (!until(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    controller.abort();
    return text;
  }
  const frames = (text: string) => [...text.matchAll(/^id: (\d+)\ndata: (.*)$/gm)].map((m) => ({ id: m[1]!, event: JSON.parse(m[2]!) as StampedEvent }));

  it('streams the kept events, then each new one, as id and data lines', async () => {
    const ring = new EventRing({ firstId: 1 });
    await ring.emit(started('a'));
    const url = await serve(ring);
    const text = read(url, {}, (t) => frames(t).length === 2);
    await waitFor(() => ring.subscribers === 1);
    await ring.emit(failed);
    const got = frames(await text);
    expect(got.map((f) => [f.id, f.event.kind])).toEqual([['1', 'execution.started'], ['2', 'execution.failed']]);
    expect(got[1]!.event).toMatchObject(failed);
    await waitFor(() => ring.subscribers === 0);
  });

  it('resumes from Last-Event-ID (or ?after=) with only what came after it', async () => {
    const ring = new EventRing({ firstId: 1 });
    for (const id of ['a', 'b', 'c']) await ring.emit(started(id));
    const url = await serve(ring);
    expect(frames(await read(url, { 'last-event-id': '2' }, (t) => frames(t).length >= 1)).map((f) => f.id)).toEqual(['3']);
    expect(frames(await read(`${url}?after=1`, {}, (t) => frames(t).length >= 2)).map((f) => f.id)).toEqual(['2', '3']);
  });

  it('sends a heartbeat comment while nothing happens', async () => {
    const url = await serve(new EventRing(), 20);
    expect(await read(url, {}, (t) => t.includes(': heartbeat\n\n'))).toMatch(/^retry: 2000\n\n(: heartbeat\n\n)+$/);
  });

  it('filters by kind, and refuses an unknown kind with a 400 naming it', async () => {
    const ring = new EventRing({ firstId: 1 });
    await ring.emit(started('a'));
    await ring.emit(failed);
    const url = await serve(ring);
    const res = await fetch(`${url}?kind=execution.failed`);
    expect(await res.json()).toEqual({ items: [expect.objectContaining({ id: '2', kind: 'execution.failed' })], lastEventId: '2' });
    const bad = await fetch(`${url}?kind=nope`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/^unknown event kind "nope"/);
  });
});

describe('the event bus sink', () => {
  it('puts one entry per event: source xl, the kind as detail-type, the event as detail', async () => {
    const calls: Parameters<PutEvents>[0][] = [];
    const sink = eventBusSink({ busName: 'xl-events', putEvents: async (input) => (calls.push(input), { FailedEntryCount: 0 }), log: { warn: () => undefined }, now: () => 0 });
    await sink.emit(failed);
    expect(calls).toEqual([{ Entries: [{ Source: 'xl', DetailType: 'execution.failed', Detail: JSON.stringify(failed), EventBusName: 'xl-events', Time: new Date(0) }] }]);
  });

  it('sends a failed entry again, and logs (never throws) when it keeps failing', async () => {
    const warnings: unknown[] = [];
    let calls = 0;
    const putEvents: PutEvents = async () => {
      calls++;
      if (calls === 1) return { FailedEntryCount: 1, Entries: [{ ErrorCode: 'ThrottlingException', ErrorMessage: 'slow down' }] };
      throw new Error('network down');
    };
    await eventBusSink({ busName: 'b', putEvents, log: { warn: (m, f) => warnings.push([m, f]) } }).emit(failed);
    expect(calls).toBe(3);
    expect(warnings).toEqual([['an event could not be put on the bus', { event: 'execution.failed', bus: 'b', error: 'network down' }]]);
  });

  it('cuts a long message far below the 256 KB entry limit', async () => {
    let detail = '';
    await eventBusSink({ busName: 'b', putEvents: async ({ Entries }) => ((detail = Entries[0]!.Detail), {}), log: { warn: () => undefined } }).emit({ ...failed, message: 'x'.repeat(300_000) } as LayerEvent);
    expect(detail.length).toBeLessThan(5000);
  });
});

describe('GET /events on AWS', () => {
  it('answers 501, naming the stack\'s event bus: API Gateway cannot stream', async () => {
    process.env.XL_EVENT_BUS = 'xl-events';
    try {
      const event = { httpMethod: 'GET', resource: '/events', path: '/events', pathParameters: null, headers: {}, queryStringParameters: null, body: null, isBase64Encoded: false, requestContext: { stage: 'v1' } };
      const res = (await api(event as unknown as APIGatewayProxyEvent, {} as Context)) as APIGatewayProxyResult;
      expect(res.statusCode).toBe(501);
      expect(JSON.parse(res.body).error.message).toMatch(/^GET \/events streams in the local layer only: on AWS the events are on the EventBridge bus xl-events/);
    } finally {
      delete process.env.XL_EVENT_BUS;
    }
  });
});
