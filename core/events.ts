// The layer's events (the design's Monitor and Notification agents): what happened to executions,
// tasks, agents and breakers, as one shape. Producers take an EventSink; where the events go is the
// sink's business (a structured log line today; an event bus and a stream are the pool issue's).
import type { ErrorType } from './errors.ts';

export type LayerEvent =
  | { kind: 'breaker.opened' | 'breaker.half-open' | 'breaker.closed'; key: string; failures: number; reason?: string; /** When a probe may be taken (opened, half-open). */ nextProbeAt?: string }
  | { kind: 'task.escalated'; executionId: string; taskId: string; errorType: ErrorType; message: string; action: 'notify' | 'open-breaker' | 'fail-execution' }
  | { kind: 'task.dead-lettered'; executionId: string; taskId: string; queue: string; message: string }
  | { kind: 'execution.resumed' | 'execution.redriven'; executionId: string; tasks: number };

export type LayerEventKind = LayerEvent['kind'];

export interface EventSink {
  /** Never throws: an event that cannot be delivered must not fail the work that raised it. */
  emit(event: LayerEvent): Promise<void>;
}

/** A sink that writes each event as one structured log line (`{ event: kind, ...fields }`). */
export function logEventSink(log: { info(message: string, fields: Record<string, unknown>): void }): EventSink {
  return {
    emit(event) {
      log.info('layer event', { event: event.kind, ...event, at: new Date().toISOString() });
      return Promise.resolve();
    },
  };
}

/** Events dropped on the floor: for tests and code paths that have nowhere to send them. */
export const noEvents: EventSink = { emit: () => Promise.resolve() };
