// The ends of executions that no step records (a workflow that failed, timed out or was stopped),
// from two sources that must agree: Step Functions' status change events, delivered to the
// execution-events function (functions/execution-events.ts), and the reconcile that runs on a
// schedule (ExecutionReconciler): it drains the events that function failed to handle from their
// dead-letter queue, and asks Step Functions about executions the table still has RUNNING.
import type { ExecutionStore } from './aws/execution-store.ts';
import { type EventSink, executionEnded } from './events.ts';
import type { Pattern } from './plan.ts';
import { type ExecutionRecord, type ExecutionStatus, parseWorkflowRunName, workflowRunName } from './records.ts';
import { causeMessage } from './steps.ts';

/** The `detail` of a "Step Functions Execution Status Change" event, as far as it is read here. */
export interface StatusChange {
  executionArn?: string;
  name: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';
  stopDate?: number | null;
  error?: string | null;
  cause?: string | null;
}

export const STATUS_CHANGE = 'Step Functions Execution Status Change';

export interface EventLog {
  warn(message: string, details?: Record<string, unknown>): void;
  info?(message: string, details?: Record<string, unknown>): void;
}

export type StatusOutcome =
  | { kind: 'not-an-end' | 'not-an-execution' }
  | { kind: 'superseded'; executionId: string; run: number; current: number }
  | { kind: 'ended' | 'already-ended'; executionId: string; status: ExecutionStatus; message: string };

/**
 * What one status change does: a run that FAILED, TIMED_OUT or was ABORTED ends its execution with
 * the workflow's error as the message, and cancels the tasks still open. SUCCEEDED and RUNNING are
 * Finalize's and Prepare's to record. Only the execution's current workflow run counts: a run
 * superseded by a resume or a redrive (the local service reports the run that died with the layer as
 * Local.LayerStopped) is ignored. Idempotent: a second delivery changes nothing.
 */
export async function recordWorkflowStatus(executions: ExecutionStore, change: StatusChange, events?: EventSink): Promise<StatusOutcome> {
  const { status, name, error, cause, stopDate } = change;
  if (status === 'RUNNING' || status === 'SUCCEEDED') return { kind: 'not-an-end' };
  // Only pattern executions are named after an execution id (and run); batch children end through their parent.
  const found = await workflowRunOf(executions, name);
  if (!found) return { kind: 'not-an-execution' };
  const { execution, run } = found;
  const { executionId } = execution;
  const current = execution.workflowRun ?? 0;
  if (current !== run) return { kind: 'superseded', executionId, run, current };
  const message =
    status === 'ABORTED'
      ? (execution.message ?? 'the workflow was stopped')
      : `${error ?? status}: ${causeMessage({ Error: error ?? undefined, Cause: cause ?? undefined })}`;
  // Conditional on the run too: a resume or a redrive between the read and this write wins.
  const changed = await executions.setStatus(executionId, status, {
    from: ['PENDING', 'RUNNING'],
    stoppedAt: new Date(stopDate ?? Date.now()).toISOString(),
    message,
    run,
  });
  if (changed || status === 'ABORTED') await executions.cancelTasks(executionId, message);
  // Only the write that ended it tells: a stop by request (DELETE) has told already, from the API.
  const event = changed ? executionEnded(execution, status, message) : undefined;
  if (event) await events?.emit(event);
  return { kind: changed ? 'ended' : 'already-ended', executionId, status, message };
}

/** recordWorkflowStatus, logged; answers whether the execution's status changed. */
export async function recordWorkflowEnd(executions: ExecutionStore, change: StatusChange, log?: EventLog, events?: EventSink): Promise<boolean> {
  const outcome = await recordWorkflowStatus(executions, change, events);
  if (outcome.kind === 'superseded') log?.info?.('status of a superseded workflow run ignored', { ...outcome, status: change.status });
  if (outcome.kind === 'ended') log?.warn('execution ended by its workflow', { executionId: outcome.executionId, status: outcome.status, reason: outcome.message });
  return outcome.kind === 'ended';
}

/** The execution a workflow run's name belongs to: `<executionId>` is run 0, `<executionId>-r<n>` run n. */
async function workflowRunOf(executions: ExecutionStore, name: string): Promise<{ execution: ExecutionRecord; run: number } | undefined> {
  const first = await executions.getExecution(name);
  if (first) return { execution: first, run: 0 };
  const parsed = parseWorkflowRunName(name);
  const execution = parsed && (await executions.getExecution(parsed.executionId));
  return execution ? { execution, run: parsed!.run } : undefined;
}

/**
 * A status change event out of a dead-letter message: EventBridge's target DLQ holds the event
 * itself; a Lambda on-failure destination holds an invocation record with the event as
 * `requestPayload`. Anything else (a scheduled reconcile that failed, a stray message) is undefined.
 */
export function statusChangeOf(body: string): StatusChange | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const record = parsed as { requestPayload?: unknown };
  const event = (record && typeof record === 'object' && 'requestPayload' in record ? record.requestPayload : parsed) as {
    'detail-type'?: string;
    detail?: StatusChange;
  };
  if (!event || event['detail-type'] !== STATUS_CHANGE || typeof event.detail?.name !== 'string' || typeof event.detail.status !== 'string') return undefined;
  return event.detail;
}

/** The dead-letter queue of the execution-events function. */
export interface DeadLetters {
  /** Up to 10 messages, without waiting; each stays invisible for a while until deleted. */
  receive(): Promise<{ body: string; receipt: string }[]>;
  delete(receipt: string): Promise<void>;
}

/** Step Functions' view of a workflow run: its status, or undefined when it does not exist. */
export interface WorkflowRuns {
  describe(pattern: Pattern, runName: string): Promise<StatusChange | undefined>;
}

export interface ReconcilerDeps {
  executions: ExecutionStore;
  deadLetters: DeadLetters;
  workflows: WorkflowRuns;
  /**
   * Records the outcome of a run that SUCCEEDED with its execution still RUNNING (ExecutionSteps.finalize):
   * SUPERSEDED when a resume or a redrive has started another run since, whose execution it leaves alone.
   */
  finalize: (executionId: string, runName: string) => Promise<{ status: string }>;
  log?: EventLog;
  /** The execution.failed events of the ends it records. */
  events?: EventSink;
  /** Most dead letters handled per round (default 100): the rest wait for the next round. */
  maxDeadLetters?: number;
}

export interface ReconcileResult {
  /** Dead letters handled and deleted. */
  drained: number;
  /** Dead letters whose handling failed again: left on the queue for the next round. */
  kept: number;
  /** Executions whose end the sweep recorded. */
  ended: string[];
}

export class ExecutionReconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(): Promise<ReconcileResult> {
    const { drained, kept } = await this.drain();
    const ended = await this.sweep();
    return { drained, kept, ended };
  }

  /** (a) The events the function failed to handle, handled again through the same logic. */
  async drain(): Promise<{ drained: number; kept: number }> {
    const max = this.deps.maxDeadLetters ?? 100;
    let drained = 0;
    let kept = 0;
    while (drained + kept < max) {
      const messages = await this.deps.deadLetters.receive();
      if (messages.length === 0) break;
      for (const m of messages) {
        const change = statusChangeOf(m.body);
        try {
          if (change) await recordWorkflowEnd(this.deps.executions, change, this.deps.log, this.deps.events);
          else this.deps.log?.warn('dropping a dead letter that is no status change', { body: m.body.slice(0, 200) });
          await this.deps.deadLetters.delete(m.receipt);
          drained++;
        } catch (err) {
          // Back on the queue once its visibility times out; the queue's retention bounds the tries.
          kept++;
          this.deps.log?.warn('a dead letter failed again', { execution: change?.name, error: (err as Error).message });
        }
      }
    }
    return { drained, kept };
  }

  /**
   * (b) Executions RUNNING in the table whose workflow run has ended: their end, as the event would
   * record it. One DescribeExecution per RUNNING execution a round (RUNNING is written by Prepare,
   * inside the run, so the run exists); racing the event itself is harmless, both write conditionally.
   */
  async sweep(): Promise<string[]> {
    const ended: string[] = [];
    for (const execution of await this.deps.executions.listByStatus(['RUNNING'])) {
      const runName = workflowRunName(execution.executionId, execution.workflowRun ?? 0);
      const run = await this.deps.workflows.describe(execution.pattern, runName);
      if (!run || run.status === 'RUNNING') continue;
      const changed =
        run.status === 'SUCCEEDED'
          ? // For the run described: a resume or redrive since the listing above has started another, which goes on.
            (await this.deps.finalize(execution.executionId, runName)).status !== 'SUPERSEDED'
          : await recordWorkflowEnd(this.deps.executions, run, this.deps.log, this.deps.events);
      if (changed) ended.push(execution.executionId);
    }
    return ended;
  }
}
