// The layer's events on AWS: the stack's EventBridge bus (infra/constructs/events.ts), one PutEvents
// entry per event, `source` xl and the event's kind as its `detail-type`, so rules match on kinds.
// The SDK call is a port (PutEvents): `@aws-sdk/client-eventbridge` is wired in functions/lib/deps.ts.
import { type EventSink, type LayerEvent } from '../events.ts';

/** The `source` of every event the layer puts on its bus (never `aws.*`, which EventBridge reserves). */
export const EVENT_SOURCE = 'xl';

/** PutEvents' request and response, as far as used here (the SDK's PutEventsCommand input and output). */
export interface PutEventsEntry {
  Source: string;
  DetailType: string;
  Detail: string;
  EventBusName: string;
  Time?: Date;
}
export type PutEvents = (input: { Entries: PutEventsEntry[] }) => Promise<{ FailedEntryCount?: number; Entries?: { ErrorCode?: string; ErrorMessage?: string }[] }>;

/**
 * An entry is at most 256 KB (PutEvents API reference, "Calculating PutEvents event entry size");
 * the layer's events are small but carry error messages, so those are cut to keep far below it.
 */
const MAX_MESSAGE_CHARS = 4096;

export function busEntry(event: LayerEvent, busName: string, at: Date): PutEventsEntry {
  const detail: Record<string, unknown> = { ...event };
  for (const key of ['message', 'reason'] as const) {
    const value = detail[key];
    if (typeof value === 'string' && value.length > MAX_MESSAGE_CHARS) detail[key] = value.slice(0, MAX_MESSAGE_CHARS) + '…';
  }
  return { Source: EVENT_SOURCE, DetailType: event.kind, Detail: JSON.stringify(detail), EventBusName: busName, Time: at };
}

export interface EventBusSinkOptions {
  putEvents: PutEvents;
  busName: string;
  log: { warn(message: string, fields?: Record<string, unknown>): void };
  /** Tries per event (default 3): a failed entry (throttled, an internal error) is sent again. */
  attempts?: number;
  now?: () => number;
}

/**
 * One PutEvents per event, as it happens: a Lambda may be frozen right after its step returns, so
 * nothing is held back for a batch. A partly failed call is retried for its failed entry (PutEvents
 * reports failures per entry, not as an error); what still fails is logged, never thrown.
 */
export function eventBusSink(opts: EventBusSinkOptions): EventSink {
  const attempts = opts.attempts ?? 3;
  return {
    async emit(event) {
      const entry = busEntry(event, opts.busName, new Date((opts.now ?? Date.now)()));
      let failure = '';
      for (let i = 0; i < attempts; i++) {
        try {
          const res = await opts.putEvents({ Entries: [entry] });
          if (!res.FailedEntryCount) return;
          const failed = res.Entries?.[0];
          failure = `${failed?.ErrorCode ?? 'failed'}: ${failed?.ErrorMessage ?? ''}`;
        } catch (err) {
          failure = (err as Error).message;
        }
      }
      opts.log.warn('an event could not be put on the bus', { event: event.kind, bus: opts.busName, error: failure });
    },
  };
}
