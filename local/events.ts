// GET /events of the local layer: the layer's recent events, kept in a bounded ring in memory, as
// JSON or as a stream of server-sent events (`Accept: text/event-stream`). Ids increase
// monotonically and start at the layer's boot time in ms, so an id from an earlier run of the layer
// is below this run's: a client that reconnects with `Last-Event-ID` gets only what it has not seen,
// and one whose id is older than the ring (or unknown) gets all the ring holds.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type EventSink, type LayerEvent, type LayerEventKind, type StampedEvent, parseKindFilter } from '#core/events.ts';

export const DEFAULT_RING_CAPACITY = 1000;
export const DEFAULT_HEARTBEAT_MS = 15_000;

export class EventRing implements EventSink {
  private readonly items: StampedEvent[] = [];
  private lastId: number;
  private readonly listeners = new Set<(event: StampedEvent) => void>();
  private readonly capacity: number;
  private readonly now: () => number;

  constructor(opts: { capacity?: number; firstId?: number; now?: () => number } = {}) {
    this.capacity = opts.capacity ?? DEFAULT_RING_CAPACITY;
    this.now = opts.now ?? Date.now;
    this.lastId = (opts.firstId ?? this.now()) - 1;
  }

  emit(event: LayerEvent): Promise<void> {
    const stamped = { id: String(++this.lastId), at: new Date(this.now()).toISOString(), ...event } as StampedEvent;
    this.items.push(stamped);
    if (this.items.length > this.capacity) this.items.shift();
    for (const listener of this.listeners) listener(stamped);
    return Promise.resolve();
  }

  /** The events after `lastEventId`; all the ring holds when that id is not one it can continue from. */
  since(lastEventId?: string): StampedEvent[] {
    const n = lastEventId !== undefined && /^\d+$/.test(lastEventId.trim()) ? Number(lastEventId) : undefined;
    const first = this.items.length ? Number(this.items[0]!.id) : this.lastId + 1;
    if (n === undefined || n < first - 1 || n > this.lastId) return [...this.items];
    return this.items.slice(n - first + 1);
  }

  /** Calls `listener` with each new event until the returned function is called. */
  subscribe(listener: (event: StampedEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }
}

/** One server-sent event: its id (for Last-Event-ID) and the event as JSON on one data line. */
export function sseFrame(event: StampedEvent): string {
  return `id: ${event.id}\ndata: ${JSON.stringify(event)}\n\n`;
}

function jsonReply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * GET /events. Query: `kind` (comma-separated kinds or families), `after` (an event id, for clients
 * that cannot send Last-Event-ID). JSON: `{ items, lastEventId }`. A stream: the events after
 * Last-Event-ID first, then each as it happens, and a comment line every heartbeat so proxies and
 * clients see the connection alive.
 */
export function serveEvents(ring: EventRing, req: IncomingMessage, res: ServerResponse, opts: { heartbeatMs?: number } = {}): void {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  let wanted: ((kind: LayerEventKind) => boolean) | undefined;
  try {
    wanted = parseKindFilter(url.searchParams.get('kind') ?? undefined);
  } catch (err) {
    return jsonReply(res, 400, { error: { type: 'validation', message: (err as Error).message, details: [{ path: '/kind', message: 'unknown kind' }] } });
  }
  const keep = (e: StampedEvent) => !wanted || wanted(e.kind);
  const header = req.headers['last-event-id'];
  const lastEventId = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('after') ?? undefined;
  const backlog = ring.since(lastEventId).filter(keep);

  if (!String(req.headers.accept ?? '').includes('text/event-stream')) {
    return jsonReply(res, 200, { items: backlog, ...(backlog.length ? { lastEventId: backlog.at(-1)!.id } : {}) });
  }
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  // How long a client waits before it reconnects (EventSource's default is up to the browser).
  res.write('retry: 2000\n\n');
  for (const event of backlog) res.write(sseFrame(event));
  // Between since() and subscribe() nothing runs (emit is synchronous): no event falls in a gap.
  const unsubscribe = ring.subscribe((event) => {
    if (keep(event)) res.write(sseFrame(event));
  });
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), opts.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
  heartbeat.unref();
  res.once('close', () => {
    clearInterval(heartbeat);
    unsubscribe();
  });
}
