// The steps the state machines call (docs/design.md, "State machines"): prepare a run, gate and
// dispatch each task, recover from its failures, and finalize the execution.
import { randomUUID } from 'node:crypto';
import { type AffinityAgents, preferredAgent } from './affinity.ts';
import { queueKey } from './agent-types.ts';
import { agentBreakerKey, type CircuitBreaker, failureBreakerKey } from './breakers.ts';
import { classifyStatesError } from './classify.ts';
import { type ErrorType, type TaskError, isErrorSource, isErrorType } from './errors.ts';
import { type EventSink, executionEnded } from './events.ts';
import { METRIC, METRIC_DIMENSION, type MetricsSink } from './metrics.ts';
import type { ExecutionStore } from './aws/execution-store.ts';
import { type AttemptLogEntry, type ExecutionRecord, type TaskRecord, workflowRunOfName } from './records.ts';
import { deriveOutcome, prepareBatches, type PreparedExecution } from './patterns.ts';
import { type EscalationPolicy, MAX_BREAKER_WAITS, type RecoveryDecision, decideRecovery, recoveryStrategy } from './recovery.ts';

export interface StepDeps {
  executions: ExecutionStore;
  breaker: CircuitBreaker;
  queueUrlPrefix: string;
  dispatchAllowanceSeconds: number;
  events: EventSink;
  /** TaskRetries, by error type (core/metrics.ts). */
  metrics?: MetricsSink;
  /** The agents of a type, for affinity (core/affinity.ts); without it every task goes to its type's queue. */
  agents?: AffinityAgents;
  /** An agent whose last heartbeat is older than this is not preferred (default 60 s: one heartbeat span). */
  agentFreshMs?: number;
  now?: () => number;
}

export interface TaskRef {
  executionId: string;
  taskIndex: number;
}

export interface Dispatch {
  QueueUrl: string;
  MessageBody: {
    executionId: string;
    taskIndex: number;
    dispatchSeq: number;
    dispatchTimeoutSeconds: number;
    probe: boolean;
    /** The breaker keys the agent reports this run's success to (core/breakers.ts successBreakerKeys). */
    breakers: string[];
  };
}

export type GateResult =
  | { action: 'dispatch'; dispatch: Dispatch }
  | { action: 'skip' }
  | {
      action: 'blocked';
      failure: { Error: ErrorType; Cause: string };
      /** No retry: it would be refused again. */
      final?: boolean;
      /** Refused by this circuit breaker, which lets a probe through at retryAt (ISO). */
      breaker?: string;
      retryAt?: string;
    };

export interface Failure {
  Error?: string;
  Cause?: string;
  /** Set by the state machine's GateFailed: the failure was the layer's own step, not the task's. */
  source?: string;
}

export type RecoverResult = TaskRef & { action: 'retry' | 'done'; delaySeconds: number };

export class ExecutionSteps {
  private readonly now: () => number;
  constructor(private readonly deps: StepDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The execution's record; a workflow without one cannot go on (a permanent error). */
  private async requireExecution(executionId: string): Promise<ExecutionRecord> {
    return recorded(executionId, await this.deps.executions.getExecution(executionId));
  }

  async prepare({ executionId }: { executionId: string }): Promise<PreparedExecution> {
    const execution = await this.requireExecution(executionId);
    // The task records' recovery overrides size the batches (their worst-case history).
    const [tasks, started] = await Promise.all([
      this.deps.executions.listTasks(executionId),
      this.deps.executions.setStatus(executionId, 'RUNNING', { from: ['PENDING'] }),
    ]);
    // Once per run: the conditional write lets only the first Prepare of a run through.
    if (started) await this.deps.events.emit({ kind: 'execution.started', executionId, name: execution.name, run: execution.workflowRun ?? 0 });
    return prepareBatches(execution, tasks);
  }

  /**
   * Before each dispatch: skip when the run is stopping, wait when the breaker is open. The task's
   * dispatch write and the execution's read go out together (one round trip along a chain, not
   * two). No task runs after a stop: Recover marks the execution stopping, then skips the pending
   * and queued tasks, each by a write conditional on that status. A read that misses the stop was
   * served before it, so that skip comes after this dispatch write was sent: either the write finds
   * the task skipped and fails its condition (Gate skips), or the skip finds it pending or queued
   * and skips it, and the agent that receives this dispatch cannot claim it and reports the skip
   * (as when the write lands before the read: whichever lands first, the outcome is the same).
   */
  async gate({ executionId, taskIndex }: TaskRef): Promise<GateResult> {
    const [task, record] = await Promise.all([
      this.deps.executions.prepareDispatch(executionId, taskIndex),
      this.deps.executions.getExecution(executionId),
    ]);
    if (!task) return { action: 'skip' }; // completed, skipped or cancelled meanwhile
    const execution = recorded(executionId, record);
    if (isStopping(execution)) {
      const reason = execution.stopping ? `task ${execution.stopping.taskId} failed with failureStrategy "stop"` : `execution ${execution.status}`;
      await this.deps.executions.skipTask(executionId, taskIndex, reason);
      return { action: 'skip' };
    }
    // A cached result (core/result-cache.ts) completes the task here, with no agent: before the
    // budget and the breakers, which guard runs this task no longer needs.
    if (task.cacheKey) {
      const hit = await this.deps.executions.getCachedResult(task.cacheKey, this.now());
      if (hit) {
        if (await this.deps.executions.completeFromCache(executionId, taskIndex, hit)) this.deps.metrics?.add(METRIC.cacheHits, 'Count', 1);
        // Completed now, or skipped by a stop meanwhile: either way there is nothing to dispatch.
        return { action: 'skip' };
      }
    }
    if (execution.budgetUsd !== undefined && (execution.spentUsd ?? 0) >= execution.budgetUsd) {
      const cause = `the plan's budget of ${execution.budgetUsd} USD is spent (${roundUsd(execution.spentUsd ?? 0)} USD recorded)`;
      // Every task Gate refuses from now on would say so: the event goes out with the first refusal only.
      if (await this.deps.executions.markBudgetSpent(executionId)) {
        await this.deps.events.emit({ kind: 'budget.spent', executionId, budgetUsd: execution.budgetUsd, spentUsd: roundUsd(execution.spentUsd ?? 0) });
      }
      return { action: 'blocked', failure: { Error: 'resource', Cause: cause }, final: true };
    }
    // Every breaker the task needs (recorded at submit; records from before: its agent type's).
    const admission = await this.deps.breaker.admitAll(task.breakers ?? [agentBreakerKey(task.agentType)], randomUUID());
    if (!admission.allowed) {
      return { action: 'blocked', failure: { Error: 'dependency', Cause: admission.reason }, breaker: admission.key, retryAt: admission.retryAt };
    }
    return {
      action: 'dispatch',
      dispatch: {
        QueueUrl: (await this.affinityQueue(task)) ?? this.deps.queueUrlPrefix + queueKey(task.agentType, task.priority),
        MessageBody: {
          executionId,
          taskIndex,
          dispatchSeq: task.dispatchSeq,
          dispatchTimeoutSeconds: this.deps.dispatchAllowanceSeconds + task.timeoutSeconds,
          probe: admission.probe,
          breakers: admission.report,
        },
      },
    };
  }

  /**
   * The direct queue of an agent of the task's type that ran its affinity key lately and is alive,
   * when there is one (core/affinity.ts). A failure to look is no reason to hold the task back.
   */
  private async affinityQueue(task: TaskRecord): Promise<string | undefined> {
    if (!task.affinity || !this.deps.agents) return undefined;
    try {
      const agents = await this.deps.agents.list(task.agentType);
      return preferredAgent(agents, task.affinity, this.now(), this.deps.agentFreshMs ?? 60_000)?.directQueueUrl;
    } catch {
      return undefined;
    }
  }

  /**
   * After a failed dispatch (docs/design.md, "Recovery"): classify, then carry out the task's
   * RecoveryStrategy for that error type: a retry after its backoff, the fallback once the retries
   * are spent (another agent type, a default output, a skip), or the final failure with its
   * escalation. A task that timed out while still waiting in its queue is dispatched again (that
   * wait never counts against it), and so is one an open breaker refused when it waits for the probe.
   */
  async recover(state: TaskRef & { failure?: Failure; gate?: GateResult }): Promise<RecoverResult> {
    const { executionId, taskIndex } = state;
    const blocked = state.gate?.action === 'blocked' ? state.gate : undefined;
    const failure: Failure = blocked ? blocked.failure : (state.failure ?? {});
    const [execution, task] = await Promise.all([
      this.deps.executions.getExecution(executionId),
      this.deps.executions.getTask(executionId, taskIndex),
    ]);
    const done = { executionId, taskIndex, action: 'done' as const, delaySeconds: 0 };
    const retry = (delaySeconds: number) => ({ executionId, taskIndex, action: 'retry' as const, delaySeconds });
    if (!execution || !task) return done;
    // The agent completed it but its callback came late (TaskTimedOut): the result stands.
    if (task.status === 'completed' || task.status === 'skipped') return done;
    // The layer's Gate step failed (GateFailed), possibly before the task left `pending`.
    const layerFailure = failure.source === 'layer';
    // Pending after any other failure: an earlier attempt of this Recover (a retried Lambda) already
    // recorded the retry; counting it again, or failing the task, would be wrong.
    if (task.status === 'pending' && !layerFailure) return { executionId, taskIndex, action: 'retry', delaySeconds: 0 };

    if (task.status === 'queued' && failure.Error === 'States.Timeout') return retry(0); // never claimed: dispatch again
    const error = failureError(failure, task);
    const errorType = error.type;
    const stopping = isStopping(execution);

    // Circuit breakers (core/breakers.ts): the failure counts against the key it says something
    // about (by its type and source); a refusal by an open breaker is not a new failure.
    const breakerKey = blocked ? undefined : failureBreakerKey(task, error);
    if (breakerKey) await this.deps.breaker.recordFailure(breakerKey);

    // An open breaker refused it, and its recovery waits for the breaker's probe rather than failing.
    if (blocked && !blocked.final && !stopping && errorType === 'dependency') {
      const strategy = recoveryStrategy(task, 'dependency');
      if (strategy.onOpen === 'wait' && (task.breakerWaits ?? 0) < MAX_BREAKER_WAITS && (await this.deps.executions.recordBreakerWait(executionId, taskIndex))) {
        return retry(breakerWaitSeconds(blocked.retryAt, this.now()));
      }
    }

    // What this attempt did, for the task's attemptLog: a refusal before any claim is no attempt.
    const ran = !blocked && task.attempts > 0 && (task.status === 'failed' || task.status === 'running');
    const entry = (next: AttemptLogEntry['next'], delaySeconds?: number): AttemptLogEntry | undefined =>
      ran ? attemptEntry(task, error, new Date(this.now()).toISOString(), next, delaySeconds) : undefined;

    // An open breaker refuses fast (the design's circuit breaker): no retry would be admitted sooner
    // than its probe, so the refusal is final unless the recovery waits for the probe (above).
    const final = stopping || blocked?.final === true || blocked?.breaker !== undefined;
    const strategy = recoveryStrategy(task, errorType);
    const decision: RecoveryDecision = final ? { action: 'fail' } : decideRecovery(strategy, task.retries?.[errorType] ?? 0, { fallbackUsed: task.fallbackFrom !== undefined });

    const retried = decision.action === 'retry' && (await this.deps.executions.recordRetry(executionId, taskIndex, errorType, error, { entry: entry('retry', decision.delaySeconds), fromPending: layerFailure }));
    if (decision.action === 'retry' && retried) {
      this.deps.metrics?.add(METRIC.retries, 'Count', 1, { [METRIC_DIMENSION.errorType]: errorType });
      return retry(decision.delaySeconds);
    }
    if (decision.action === 'fallback') {
      const fb = decision.fallback;
      if (fb.action === 'agent-type') {
        if (await this.deps.executions.reassign(executionId, taskIndex, fb.agentType, error, entry('fallback', 0))) return retry(0);
      } else {
        const settle = fb.action === 'skip' ? { action: 'skip' as const, reason: fb.reason ?? `skipped by its recovery after a ${errorType} failure: ${error.message}` } : fb;
        if (await this.deps.executions.settleByFallback(executionId, taskIndex, settle, error, entry('fallback'))) return done;
      }
    }

    if (await this.deps.executions.failTask(executionId, taskIndex, error, entry('none'))) {
      await this.deps.events.emit({ kind: 'task.failed', executionId, taskId: task.taskId, agentType: task.agentType, errorType, message: error.message.slice(0, 1024), attempts: task.attempts });
    }
    const escalation = decision.action === 'fail' ? decision.escalation : undefined;
    if (escalation) await this.escalate(escalation, execution, task, error);
    if (task.failureStrategy === 'stop' && escalation !== 'fail-execution') {
      await this.deps.executions.markStopping(executionId, {
        taskId: task.taskId,
        stage: execution.stages[task.stage]?.name ?? '',
      });
      // Tasks no agent has claimed yet are skipped; an agent whose claim then fails reports the skip.
      await this.deps.executions.skipWaitingTasks(executionId, `task ${task.taskId} failed with failureStrategy "stop"`);
    }
    if (escalation === 'fail-execution' || task.failureStrategy === 'stop') await this.endIfSettled(executionId);
    return done;
  }

  /**
   * A stopping execution whose tasks are all final ends now, as Finalize would end it. Its workflow
   * run may still wait for the skipped tasks' dispatches, whose tokens are in their queued messages
   * until an agent of their type is free to receive and report them: on a busy fleet that can take
   * long, and the execution's status must not wait for it (Finalize's later write changes nothing).
   */
  private async endIfSettled(executionId: string): Promise<void> {
    const [execution, tasks] = await Promise.all([this.deps.executions.getExecution(executionId), this.deps.executions.listTasks(executionId)]);
    if (!execution || !isStopping(execution)) return;
    if (tasks.some((t) => t.status !== 'completed' && t.status !== 'failed' && t.status !== 'skipped')) return;
    const outcome = deriveOutcome(execution, tasks);
    const ended = await this.deps.executions.setStatus(executionId, outcome.status, {
      from: ['PENDING', 'RUNNING'],
      stoppedAt: new Date(this.now()).toISOString(),
      result: outcome.result,
      run: execution.workflowRun ?? 0,
    });
    if (ended) await this.emitEnd(execution, outcome.status);
  }

  /** The end of an execution, told once: only the write that changed its status emits it. */
  private async emitEnd(execution: ExecutionRecord, status: ExecutionRecord['status']): Promise<void> {
    const event = executionEnded(execution, status);
    if (event) await this.deps.events.emit(event);
  }

  /**
   * The escalation policy of a task that failed for good: an event for people (`notify`), its
   * breaker opened at once (`open-breaker`), or the whole execution ended now (`fail-execution`):
   * unclaimed tasks are skipped and running ones cancelled, whatever their failureStrategy.
   */
  private async escalate(policy: EscalationPolicy, execution: ExecutionRecord, task: TaskRecord, error: TaskError): Promise<void> {
    await this.deps.events.emit({ kind: 'task.escalated', executionId: execution.executionId, taskId: task.taskId, errorType: error.type, message: error.message, action: policy });
    if (policy === 'open-breaker') {
      await this.deps.breaker.trip(agentBreakerKey(task.agentType), `task ${task.taskId} of ${execution.executionId} escalated: ${error.message}`);
    } else if (policy === 'fail-execution') {
      const reason = `task ${task.taskId} failed (${error.type}) and its recovery escalates to fail-execution`;
      await this.deps.executions.markStopping(execution.executionId, { taskId: task.taskId, stage: execution.stages[task.stage]?.name ?? '', escalated: true });
      await this.deps.executions.cancelTasks(execution.executionId, reason);
    }
  }

  /**
   * The execution's end, from its tasks. `runName` (the state machine passes its execution's name) ties
   * the write to that workflow run: a Finalize retried, or a reconcile's, that comes after a redrive or
   * a resume has started a new run must not end the new run with the old run's outcome (its tasks,
   * reopened, would read as incomplete: FAILED).
   */
  async finalize({ executionId, runName }: { executionId: string; runName?: string }): Promise<{ status: string }> {
    const execution = await this.requireExecution(executionId);
    const run = runName === undefined ? undefined : workflowRunOfName(executionId, runName);
    if (runName !== undefined && run === undefined) {
      throw Object.assign(new Error(`workflow run ${runName} is not one of execution ${executionId}`), { name: 'permanent' });
    }
    if (run !== undefined && run !== (execution.workflowRun ?? 0)) return { status: 'SUPERSEDED' };
    const tasks = await this.deps.executions.listTasks(executionId);
    const outcome = deriveOutcome(execution, tasks);
    const ended = await this.deps.executions.setStatus(executionId, outcome.status, {
      from: ['PENDING', 'RUNNING'],
      stoppedAt: new Date().toISOString(),
      result: outcome.result,
      run, // when known, the write is conditional on it too: a redrive between the read above and it wins
    });
    if (ended) await this.emitEnd(execution, outcome.status);
    return { status: outcome.status };
  }
}

/** The execution's record; a workflow without one cannot go on (a permanent error). */
function recorded(executionId: string, execution: ExecutionRecord | undefined): ExecutionRecord {
  if (!execution) throw Object.assign(new Error(`execution ${executionId} has no record`), { name: 'permanent' });
  return execution;
}

/**
 * The error of a failed dispatch: what the agent recorded on the task (with its source) when it
 * reported this failure itself, else the classifier's reading of the Step Functions error.
 */
function failureError(failure: Failure, task: TaskRecord): TaskError {
  if (task.status === 'failed' && task.error && isErrorType(failure.Error) && task.error.type === failure.Error) return task.error;
  const error = classifyStatesError(failure.Error, causeMessage(failure));
  // The state machine names the source itself where it knows it (GateFailed: the layer's own step).
  if (isErrorSource(failure.source)) return { ...error, source: failure.source };
  // A dispatch that timed out on a claimed task: its agent died or hung.
  if (failure.Error === 'States.Timeout' && task.status === 'running') return { ...error, message: `the task did not finish within its timeout (agent ${task.agentId ?? '?'})` };
  return isErrorType(failure.Error) && error.source === 'layer' ? { type: error.type, message: error.message } : error;
}

function attemptEntry(task: TaskRecord, error: TaskError, now: string, next: AttemptLogEntry['next'], delaySeconds?: number): AttemptLogEntry {
  return {
    attempt: task.attempts,
    ...(task.agentId ? { agentId: task.agentId } : {}),
    agentType: task.agentType,
    ...(task.startedAt ? { startedAt: task.startedAt } : {}),
    finishedAt: task.status === 'failed' && task.finishedAt ? task.finishedAt : now,
    status: 'failed',
    errorType: error.type,
    ...(error.source ? { source: error.source } : {}),
    message: error.message.slice(0, 1024),
    next,
    ...(delaySeconds !== undefined ? { delaySeconds } : {}),
  };
}

/** Until the breaker's next probe (at least 5 s, at most 15 min: a Wait per loop, each in the history). */
function breakerWaitSeconds(retryAt: string | undefined, now: number): number {
  const until = retryAt ? Math.ceil((Date.parse(retryAt) - now) / 1000) : 30;
  return Math.min(900, Math.max(5, Number.isFinite(until) ? until : 30));
}

/** The human message in a Catch's Cause: agents send plain text, Lambda sends JSON. */
export function causeMessage(failure: Failure): string {
  const cause = failure.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    if (parsed && typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // plain text
  }
  if (cause) return cause.slice(0, 4096);
  if (failure.Error === 'States.Timeout') return 'the task did not finish within its timeout';
  return failure.Error ?? 'unknown error';
}

const roundUsd = (usd: number) => Math.round(usd * 1e4) / 1e4;

/** A "stop" task failed, or the execution ended (cancelled, timed out): no task is dispatched any more. */
function isStopping(execution: ExecutionRecord): boolean {
  return execution.stopping !== undefined || !['PENDING', 'RUNNING'].includes(execution.status);
}
