// The layer's events (the design's Monitor and Notification agents): what happened to executions,
// tasks, agents and breakers, as one shape. Producers take an EventSink; where the events go is the
// sink's business: a structured log line everywhere, the stack's EventBridge bus on AWS
// (core/aws/event-bus.ts), GET /events and a signed webhook locally (local/events.ts, core/webhook.ts).
// Delivery is at least once: a step retried by Lambda may emit its event again.
import type { AgentType } from './agent-types.ts';
import type { ErrorType } from './errors.ts';
import type { ExecutionStatus } from './records.ts';

export type LayerEvent =
  | { kind: 'breaker.opened' | 'breaker.half-open' | 'breaker.closed'; key: string; failures: number; reason?: string; /** When a probe may be taken (opened, half-open). */ nextProbeAt?: string }
  | { kind: 'task.escalated'; executionId: string; taskId: string; errorType: ErrorType; message: string; action: 'notify' | 'open-breaker' | 'fail-execution' }
  | { kind: 'task.dead-lettered'; executionId: string; taskId: string; queue: string; message: string }
  | { kind: 'execution.resumed' | 'execution.redriven'; executionId: string; tasks: number }
  | { kind: 'execution.started'; executionId: string; name: string; run: number }
  | { kind: 'execution.succeeded'; executionId: string; name: string; status: 'SUCCEEDED' }
  | { kind: 'execution.failed'; executionId: string; name: string; status: Exclude<ExecutionStatus, 'PENDING' | 'RUNNING' | 'SUCCEEDED'>; message?: string }
  /** A task failed for good: its retries and fallback spent, or its failure final. */
  | { kind: 'task.failed'; executionId: string; taskId: string; agentType: AgentType; errorType: ErrorType; message: string; attempts: number }
  | { kind: 'agent.unhealthy'; agentId: string; agentType: AgentType; reason: string }
  | { kind: 'agent.replaced'; agentId: string; agentType: AgentType }
  /** The pool started an agent; `requestedAt` is when it decided to (its start time runs from there). */
  | { kind: 'agent.started'; agentId: string; agentType: AgentType; requestedAt: string }
  | { kind: 'budget.spent'; executionId: string; budgetUsd: number; spentUsd: number };

export type LayerEventKind = LayerEvent['kind'];

/** Every kind, for filters (`?kind=`, `xl events --kind`) and the stack's rules. */
export const LAYER_EVENT_KINDS = [
  'execution.started',
  'execution.succeeded',
  'execution.failed',
  'execution.resumed',
  'execution.redriven',
  'task.failed',
  'task.escalated',
  'task.dead-lettered',
  'agent.started',
  'agent.unhealthy',
  'agent.replaced',
  'breaker.opened',
  'breaker.half-open',
  'breaker.closed',
  'budget.spent',
] as const satisfies readonly LayerEventKind[];

/**
 * What a person is told (the stack's notification topic): ends and failures that want a look. The
 * rest (starts, resumes, half-open probes, closes) are for machines: the bus, the webhook, the stream.
 */
export const NOTIFY_KINDS = [
  'execution.succeeded',
  'execution.failed',
  'task.failed',
  'task.escalated',
  'task.dead-lettered',
  'agent.replaced',
  'breaker.opened',
  'budget.spent',
] as const satisfies readonly LayerEventKind[];

/**
 * A `kind` filter: comma-separated kinds or families (`execution` is every `execution.*`). Throws,
 * naming the known kinds, on one that matches none.
 */
export function parseKindFilter(spec: string | undefined): ((kind: LayerEventKind) => boolean) | undefined {
  const parts = (spec ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) return undefined;
  const matches = (part: string, kind: string) => kind === part || kind.startsWith(`${part}.`);
  for (const part of parts) {
    if (!LAYER_EVENT_KINDS.some((k) => matches(part, k))) throw new Error(`unknown event kind "${part}": kinds are ${LAYER_EVENT_KINDS.join(', ')} (or a family: execution, task, agent, breaker, budget)`);
  }
  return (kind) => parts.some((p) => matches(p, kind));
}

/** An event as it leaves the layer: its id (per sink), when it happened, and its fields. */
export type StampedEvent = LayerEvent & { id: string; at: string };

/** The end of an execution as its event (succeeded, or failed with how it ended). */
export function executionEnded(execution: { executionId: string; name: string }, status: ExecutionStatus, message?: string): LayerEvent | undefined {
  const { executionId, name } = execution;
  if (status === 'SUCCEEDED') return { kind: 'execution.succeeded', executionId, name, status };
  if (status === 'PENDING' || status === 'RUNNING') return undefined;
  return { kind: 'execution.failed', executionId, name, status, ...(message ? { message } : {}) };
}

export interface EventSink {
  /** Never throws: an event that cannot be delivered must not fail the work that raised it. */
  emit(event: LayerEvent): Promise<void>;
}

/** A sink that writes each event as one structured log line (`{ event: kind, ...fields }`). */
export function logEventSink(log: { info(message: string, fields: Record<string, unknown>): void }): EventSink {
  return {
    emit(event) {
      // `message` is the log line's own key (Powertools drops a field of that name): the event's goes as `reason`.
      const { message, ...fields } = event as LayerEvent & { message?: string };
      log.info('layer event', { event: event.kind, ...fields, ...(message !== undefined ? { reason: message } : {}), at: new Date().toISOString() });
      return Promise.resolve();
    },
  };
}

/** Events dropped on the floor: for tests and code paths that have nowhere to send them. */
export const noEvents: EventSink = { emit: () => Promise.resolve() };

/** Every sink gets every event; one that throws (against its contract) costs the others nothing. */
export function fanOut(sinks: readonly (EventSink | undefined)[]): EventSink {
  const all = sinks.filter((s): s is EventSink => s !== undefined);
  return {
    async emit(event) {
      await Promise.all(all.map((s) => s.emit(event).catch(() => undefined)));
    },
  };
}

let registered: EventSink | undefined;

/** The embedded local layer registers its sinks (the GET /events ring, the webhook); handlers pick them up in process. */
export function registerEventSink(sink: EventSink | undefined): void {
  registered = sink;
}

export function registeredEventSink(): EventSink | undefined {
  return registered;
}
