// Execution history: aws-local-stepfunctions' event log turned into AWS history events.
//
// What the library logs: StateEntered / StateExited / StateFailed / StateRetried / StateCaught per
// state (nested Map iterations and Parallel branches included), MapIteration* and the execution's
// own start and end. What AWS adds around a Task (TaskScheduled, TaskStarted, TaskSubmitted,
// TaskSucceeded/Failed/TimedOut, or the LambdaFunction* events of a plain function ARN) is derived
// from those, so the number of events per state is AWS's:
//   Task:      TaskStateEntered, TaskScheduled, TaskStarted, [TaskSubmitted], TaskSucceeded | TaskFailed
//              | TaskTimedOut, TaskStateExited (a retry repeats Scheduled..Failed; a caught failure
//              is followed by TaskStateExited)
//   Map:       MapStateEntered, MapStateStarted, MapIteration{Started,Succeeded|Failed} per item,
//              MapStateSucceeded | MapStateFailed, MapStateExited
//   Parallel:  ParallelStateEntered, ParallelStateStarted, ..., ParallelStateSucceeded|Failed, ParallelStateExited
//   Pass/Wait/Choice/Succeed: <Type>StateEntered, <Type>StateExited; Fail: FailStateEntered
// Not derivable: TaskScheduled's resolved `parameters` and TaskSucceeded's raw `output` (the log
// only has state input and state output; both are left out rather than guessed), and exact
// timestamps of the derived events (they carry the timestamp of the library event they come from).
// Events of concurrent Map iterations arrive in the order the library forwards them.
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import type { StateMachine } from 'aws-local-stepfunctions';
import { readReferencePath, type CompiledMachine, type TaskSpec } from './definition.ts';
import type { ExecutionRecord } from './types.ts';

/** One entry of the library's event log (the type is not exported by the package). */
export type LibraryEvent = ReturnType<StateMachine['run']>['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

/** A JSON value kept as is until the history is read or written: no serialisation per event. */
export class Raw {
  constructor(readonly value: unknown) {}
  toJSON(): string {
    return JSON.stringify(this.value) ?? 'null';
  }
}

/** A history event as kept and persisted: AWS's shape, timestamp in epoch ms. */
export interface StoredEvent {
  id: number;
  previousEventId: number;
  timestamp: number;
  type: string;
  [details: string]: unknown;
}

type AnyState = { name: string; type: string; input: unknown; output?: unknown };

/** AWS fails an execution whose history reaches this many events; the last one is ExecutionFailed. */
export const HISTORY_EVENT_LIMIT = 25_000;

export class HistoryRecorder {
  readonly events: StoredEvent[];
  /** The history is one event short of the limit: only the closing event may follow. */
  full = false;
  /** States entered and not yet exited, by lane (Map index + state name), for *StateAborted. */
  private readonly open = new Map<string, string>();
  private readonly caught = new Set<string>();

  constructor(
    private readonly machine: CompiledMachine | undefined,
    private readonly region: string,
    events: StoredEvent[] = [],
  ) {
    this.events = events;
  }

  push(type: string, detailsKey?: string, details?: object, timestamp = Date.now(), closing = false): void {
    if (!closing && this.events.length >= HISTORY_EVENT_LIMIT - 1) {
      this.full = true;
      return;
    }
    const id = this.events.length + 1;
    const event: StoredEvent = { id, previousEventId: id - 1, timestamp, type };
    if (detailsKey) event[detailsKey] = details ?? {};
    this.events.push(event);
  }

  started(rec: ExecutionRecord): void {
    this.push('ExecutionStarted', 'executionStartedEventDetails', { input: rec.input, inputDetails: { truncated: false } }, rec.startDate);
  }

  /** `outputJson`: the state output, already serialised by the caller to measure it. */
  record(e: LibraryEvent, outputJson?: string): void {
    const t = e.timestamp;
    switch (e.type) {
      case 'StateEntered': {
        const s = e.state as AnyState;
        const lane = laneOf(e);
        this.open.set(lane, s.type);
        this.caught.delete(lane);
        this.push(`${s.type}StateEntered`, 'stateEnteredEventDetails', { name: s.name, input: new Raw(s.input) }, t);
        if (s.type === 'Task') this.scheduled(this.machine?.tasks.get(s.name), t);
        else if (s.type === 'Map') this.push('MapStateStarted', 'mapStateStartedEventDetails', this.mapLength(s), t);
        else if (s.type === 'Parallel') this.push('ParallelStateStarted', undefined, undefined, t);
        return;
      }
      case 'StateExited': {
        const s = e.state as AnyState;
        const lane = laneOf(e);
        this.open.delete(lane);
        const wasCaught = this.caught.delete(lane);
        if (!wasCaught) {
          if (s.type === 'Task') this.succeeded(this.machine?.tasks.get(s.name), t);
          else if (s.type === 'Map') this.push('MapStateSucceeded', undefined, undefined, t);
          else if (s.type === 'Parallel') this.push('ParallelStateSucceeded', undefined, undefined, t);
        }
        const output = outputJson ?? new Raw(s.output);
        this.push(`${s.type}StateExited`, 'stateExitedEventDetails', { name: s.name, output }, t);
        return;
      }
      case 'StateFailed': {
        const s = e.state as AnyState;
        const error = e.Error;
        const cause = typeof e.Cause === 'string' ? e.Cause : (JSON.stringify(e.Cause) ?? '');
        if (s.type === 'Task') this.failed(this.machine?.tasks.get(s.name), error, cause, t);
        else if (s.type === 'Map') this.push('MapStateFailed', undefined, undefined, t);
        else if (s.type === 'Parallel') this.push('ParallelStateFailed', undefined, undefined, t);
        return;
      }
      case 'StateRetried': {
        const s = e.state as AnyState;
        if (s.type === 'Task') this.scheduled(this.machine?.tasks.get(s.name), t);
        else if (s.type === 'Map') this.push('MapStateStarted', 'mapStateStartedEventDetails', this.mapLength(s), t);
        else if (s.type === 'Parallel') this.push('ParallelStateStarted', undefined, undefined, t);
        return;
      }
      case 'StateCaught':
        this.caught.add(laneOf(e));
        return;
      case 'MapIterationStarted':
      case 'MapIterationSucceeded':
      case 'MapIterationFailed': {
        const key = `m${e.type.slice(1)}EventDetails`;
        this.push(e.type, key, { name: e.parentState.name, index: e.index }, t);
        return;
      }
      default:
        // ParallelBranch* have no AWS counterpart; the execution's own start and end events
        // are written by the service (started(), ended()), which knows the final status.
        return;
    }
  }

  ended(rec: ExecutionRecord): void {
    const t = rec.stopDate ?? Date.now();
    if (rec.status === 'ABORTED' || rec.status === 'TIMED_OUT') {
      for (const type of this.open.values()) {
        if (type === 'Task' || type === 'Map' || type === 'Parallel' || type === 'Wait') {
          this.push(`${type}StateAborted`, undefined, undefined, t);
        }
      }
    }
    this.open.clear();
    switch (rec.status) {
      case 'SUCCEEDED':
        this.push('ExecutionSucceeded', 'executionSucceededEventDetails', { output: rec.output, outputDetails: { truncated: false } }, t, true);
        return;
      case 'FAILED':
        this.push('ExecutionFailed', 'executionFailedEventDetails', compact({ error: rec.error, cause: rec.cause }), t, true);
        return;
      case 'ABORTED':
        this.push('ExecutionAborted', 'executionAbortedEventDetails', compact({ error: rec.error, cause: rec.cause }), t, true);
        return;
      case 'TIMED_OUT':
        this.push('ExecutionTimedOut', 'executionTimedOutEventDetails', compact({ error: rec.error, cause: rec.cause }), t, true);
        return;
    }
  }

  private scheduled(spec: TaskSpec | undefined, t: number): void {
    if (!spec) return;
    const timeoutInSeconds = spec.state.TimeoutSeconds;
    if (spec.integration === 'lambda-function') {
      this.push('LambdaFunctionScheduled', 'lambdaFunctionScheduledEventDetails', { resource: spec.state.Resource, timeoutInSeconds }, t);
      this.push('LambdaFunctionStarted', undefined, undefined, t);
      return;
    }
    const { resourceType, resource } = spec;
    this.push(
      'TaskScheduled',
      'taskScheduledEventDetails',
      compact({ resourceType, resource, region: this.region, timeoutInSeconds, heartbeatInSeconds: spec.state.HeartbeatSeconds }),
      t,
    );
    this.push('TaskStarted', 'taskStartedEventDetails', { resourceType, resource }, t);
    if (spec.pattern !== 'request-response') this.push('TaskSubmitted', 'taskSubmittedEventDetails', { resourceType, resource }, t);
  }

  private succeeded(spec: TaskSpec | undefined, t: number): void {
    if (!spec) return;
    if (spec.integration === 'lambda-function') this.push('LambdaFunctionSucceeded', 'lambdaFunctionSucceededEventDetails', {}, t);
    else this.push('TaskSucceeded', 'taskSucceededEventDetails', { resourceType: spec.resourceType, resource: spec.resource }, t);
  }

  private failed(spec: TaskSpec | undefined, error: string, cause: string, t: number): void {
    if (!spec) return;
    const timedOut = error === 'States.Timeout' || error === 'States.HeartbeatTimeout';
    if (spec.integration === 'lambda-function') {
      const type = timedOut ? 'LambdaFunctionTimedOut' : 'LambdaFunctionFailed';
      this.push(type, timedOut ? 'lambdaFunctionTimedOutEventDetails' : 'lambdaFunctionFailedEventDetails', { error, cause }, t);
      return;
    }
    const type = timedOut ? 'TaskTimedOut' : 'TaskFailed';
    const key = timedOut ? 'taskTimedOutEventDetails' : 'taskFailedEventDetails';
    this.push(type, key, { resourceType: spec.resourceType, resource: spec.resource, error, cause }, t);
  }

  private mapLength(s: AnyState): { length?: number } {
    const spec = this.machine?.maps.get(s.name);
    try {
      let items: unknown = s.input;
      if (spec?.InputPath === null) items = {};
      else if (spec?.InputPath) items = readReferencePath(spec.InputPath, items, undefined);
      if (spec?.ItemsPath) items = readReferencePath(spec.ItemsPath, items, undefined);
      return Array.isArray(items) ? { length: items.length } : {};
    } catch {
      return {};
    }
  }
}

function laneOf(e: { index?: number; state: { name: string } }): string {
  return `${e.index ?? ''}\u0000${e.state.name}`;
}

function compact<T extends Record<string, unknown>>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null) out[k] = v;
  return out as Partial<T>;
}

/** Stored events as the SDK returns them: Date timestamps, JSON data as strings. */
export function toHistoryEvents(events: StoredEvent[], includeExecutionData: boolean): HistoryEvent[] {
  return events.map((e) => {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(e)) {
      if (key === 'timestamp') out.timestamp = new Date(e.timestamp);
      else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const details: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(value)) {
          if ((k === 'input' || k === 'output') && !includeExecutionData) continue;
          details[k] = v instanceof Raw ? v.toJSON() : v;
        }
        out[key] = details;
      } else out[key] = value;
    }
    return out as unknown as HistoryEvent;
  });
}
