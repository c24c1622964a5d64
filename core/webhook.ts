// The local layer's webhook (XL_WEBHOOK_URL): each event POSTed as JSON, signed so the receiver can
// tell it came from the layer and is fresh. The signature is an HMAC-SHA256 with XL_WEBHOOK_SECRET
// over `<timestamp>.<body>`: the timestamp is signed with the body, so a captured request cannot be
// replayed later under a new timestamp, and a receiver refuses timestamps outside its tolerance.
// Delivery never blocks the producer: it is queued, retried with exponential backoff and full
// jitter, then logged and dropped. On AWS the webhook is an EventBridge API destination instead.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { EventSink, LayerEvent, StampedEvent } from './events.ts';

export const SIGNATURE_HEADER = 'x-xl-signature';
export const TIMESTAMP_HEADER = 'x-xl-timestamp';
export const EVENT_ID_HEADER = 'x-xl-event-id';
/** How old a signed timestamp a receiver accepts by default (and how far in the future). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** `sha256=<hex>` of `<timestamp>.<body>` (timestamp in Unix seconds). */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export type Verdict = { ok: true } | { ok: false; reason: string };

/** What a receiver checks: the signature over this timestamp and body, and the timestamp's age. */
export function verifyWebhook(
  secret: string,
  request: { signature: string | undefined; timestamp: string | undefined; body: string },
  opts: { nowSeconds?: number; toleranceSeconds?: number } = {},
): Verdict {
  const { signature, timestamp, body } = request;
  if (!signature || !timestamp) return { ok: false, reason: `missing ${signature ? TIMESTAMP_HEADER : SIGNATURE_HEADER}` };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: `${TIMESTAMP_HEADER} is not Unix seconds` };
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  const tolerance = opts.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(now - Number(timestamp)) > tolerance) return { ok: false, reason: `timestamp is more than ${tolerance} s from now: a replay or a skewed clock` };
  const expected = Buffer.from(signWebhook(secret, Number(timestamp), body));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature does not match' };
  return { ok: true };
}

export interface WebhookOptions {
  url: string;
  secret: string;
  /** Tries per event (default 5), then the event is logged and dropped. */
  attempts?: number;
  /** Backoff: a random wait up to min(cap, base * 2^retry) (full jitter). Defaults 500 ms and 30 s. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** Events waiting or in delivery at most (default 1000); above it new events are dropped, logged. */
  maxPending?: number;
  log: { warn(message: string): void };
  /** Seams for tests: the clock, the waits and the randomness. */
  fetch?: typeof fetch;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** Statuses worth another try: the receiver was busy, timed out or failed; any other 4xx will not change. */
const retryable = (status: number) => status >= 500 || status === 408 || status === 429;

/** XL_WEBHOOK_URL must be http(s); XL_WEBHOOK_SECRET is required with it (an unsigned webhook proves nothing). */
export function webhookFromEnv(env: NodeJS.ProcessEnv): { url: string; secret: string } | undefined {
  const url = env.XL_WEBHOOK_URL?.trim();
  if (!url) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`XL_WEBHOOK_URL is not a URL: "${url}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`XL_WEBHOOK_URL must be http or https, got ${parsed.protocol}`);
  const secret = env.XL_WEBHOOK_SECRET;
  if (!secret) throw new Error('XL_WEBHOOK_URL is set but XL_WEBHOOK_SECRET is not: the webhook is signed with it (X-XL-Signature)');
  return { url, secret };
}

export class WebhookSink implements EventSink {
  private readonly pending = new Set<Promise<void>>();
  private seq = 0;
  private readonly bootId = Date.now().toString(36);

  constructor(private readonly opts: WebhookOptions) {}

  /** Queues the event's delivery and returns at once. */
  emit(event: LayerEvent): Promise<void> {
    if (this.pending.size >= (this.opts.maxPending ?? 1000)) {
      this.opts.log.warn(`webhook: ${this.pending.size} events pending, ${event.kind} dropped`);
      return Promise.resolve();
    }
    const stamped = { id: `${this.bootId}-${++this.seq}`, at: new Date(this.now()).toISOString(), ...event } as StampedEvent;
    const delivery = this.deliver(stamped).finally(() => this.pending.delete(delivery));
    this.pending.add(delivery);
    return Promise.resolve();
  }

  /** Resolves once every queued delivery has succeeded or been dropped (the layer's stop, tests). */
  async idle(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private async deliver(event: StampedEvent): Promise<void> {
    const { url, secret } = this.opts;
    const attempts = this.opts.attempts ?? 5;
    const body = JSON.stringify(event);
    const send = this.opts.fetch ?? fetch;
    const sleep = this.opts.sleep ?? ((ms: number) => new Promise<void>((ok) => setTimeout(ok, ms).unref()));
    let last = '';
    let tries = 0;
    for (let attempt = 0; attempt < attempts; attempt++) {
      tries++;
      if (attempt > 0) {
        const cap = Math.min(this.opts.maxDelayMs ?? 30_000, (this.opts.baseDelayMs ?? 500) * 2 ** (attempt - 1));
        await sleep(Math.floor((this.opts.random ?? Math.random)() * cap));
      }
      // Signed per attempt: a retry minutes later still passes the receiver's freshness check.
      const timestamp = Math.floor(this.now() / 1000);
      try {
        const res = await send(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'agent-execution-layer',
            [EVENT_ID_HEADER]: event.id,
            [TIMESTAMP_HEADER]: String(timestamp),
            [SIGNATURE_HEADER]: signWebhook(secret, timestamp, body),
          },
          body,
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
        });
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) return;
        last = `HTTP ${res.status}`;
        if (!retryable(res.status)) break;
      } catch (err) {
        last = (err as Error).message;
      }
    }
    this.opts.log.warn(`webhook: ${event.kind} ${event.id} dropped after ${tries} ${tries === 1 ? 'try' : 'tries'}: ${last}`);
  }
}
