// The steps the state machines call (docs/design.md, "State machines"): prepare a run, gate and
// dispatch each task, recover from its failures, and finalize the execution.
import { randomUUID } from 'node:crypto';
import { queueKey } from './agent-types.ts';
import { agentTypeBreakerKey, type CircuitBreaker } from './breakers.ts';
import { classifyErrorName, isErrorSource, type ErrorType, type TaskError } from './errors.ts';
import type { ExecutionStore } from './aws/execution-store.ts';
import type { ExecutionRecord } from './records.ts';
import { deriveOutcome, prepareBatches, type PreparedExecution } from './patterns.ts';
import { decideRecovery, recoveryStrategy } from './recovery.ts';

export interface StepDeps {
  executions: ExecutionStore;
  breaker: CircuitBreaker;
  queueUrlPrefix: string;
  dispatchAllowanceSeconds: number;
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
  };
}

export type GateResult =
  | { action: 'dispatch'; dispatch: Dispatch }
  | { action: 'skip' }
  | { action: 'blocked'; failure: { Error: ErrorType; Cause: string }; /** No retry: it would be refused again. */ final?: boolean };

export interface Failure {
  Error?: string;
  Cause?: string;
  /** Set by the state machine's GateFailed: the failure was the layer's own step, not the task's. */
  source?: string;
}

export type RecoverResult = TaskRef & { action: 'retry' | 'done'; delaySeconds: number };

export class ExecutionSteps {
  constructor(private readonly deps: StepDeps) {}

  /** The execution's record; a workflow without one cannot go on (a permanent error). */
  private async requireExecution(executionId: string): Promise<ExecutionRecord> {
    const execution = await this.deps.executions.getExecution(executionId);
    if (!execution) throw Object.assign(new Error(`execution ${executionId} has no record`), { name: 'permanent' });
    return execution;
  }

  async prepare({ executionId }: { executionId: string }): Promise<PreparedExecution> {
    const execution = await this.requireExecution(executionId);
    // The task records' recovery overrides size the batches (their worst-case history).
    const [tasks] = await Promise.all([
      this.deps.executions.listTasks(executionId),
      this.deps.executions.setStatus(executionId, 'RUNNING', { from: ['PENDING'] }),
    ]);
    return prepareBatches(execution, tasks);
  }

  /**
   * Before each dispatch: skip when the run is stopping, wait when the breaker is open. The task is
   * marked queued before the execution is read, and Recover marks the execution stopping before it
   * skips queued tasks: whichever comes second sees the other, so no task is dispatched after a stop.
   */
  async gate({ executionId, taskIndex }: TaskRef): Promise<GateResult> {
    const task = await this.deps.executions.prepareDispatch(executionId, taskIndex);
    if (!task) return { action: 'skip' }; // completed, skipped or cancelled meanwhile
    const execution = await this.requireExecution(executionId);
    if (isStopping(execution)) {
      const reason = execution.stopping ? `task ${execution.stopping.taskId} failed with failureStrategy "stop"` : `execution ${execution.status}`;
      await this.deps.executions.skipTask(executionId, taskIndex, reason);
      return { action: 'skip' };
    }
    if (execution.budgetUsd !== undefined && (execution.spentUsd ?? 0) >= execution.budgetUsd) {
      const cause = `the plan's budget of ${execution.budgetUsd} USD is spent (${roundUsd(execution.spentUsd ?? 0)} USD recorded)`;
      return { action: 'blocked', failure: { Error: 'resource', Cause: cause }, final: true };
    }
    const admission = await this.deps.breaker.admit(agentTypeBreakerKey(task.agentType), randomUUID());
    if (!admission.allowed) return { action: 'blocked', failure: { Error: 'dependency', Cause: admission.reason } };
    return {
      action: 'dispatch',
      dispatch: {
        QueueUrl: this.deps.queueUrlPrefix + queueKey(task.agentType, task.priority),
        MessageBody: {
          executionId,
          taskIndex,
          dispatchSeq: task.dispatchSeq,
          dispatchTimeoutSeconds: this.deps.dispatchAllowanceSeconds + task.timeoutSeconds,
          probe: admission.probe,
        },
      },
    };
  }

  /**
   * After a failed dispatch: classify, then retry with backoff, re-dispatch a task that timed out
   * while still waiting in its queue (that wait never counts against it), or record the failure.
   */
  async recover(state: TaskRef & { failure?: Failure; gate?: GateResult }): Promise<RecoverResult> {
    const { executionId, taskIndex } = state;
    const failure: Failure = state.gate?.action === 'blocked' ? state.gate.failure : (state.failure ?? {});
    const [execution, task] = await Promise.all([
      this.deps.executions.getExecution(executionId),
      this.deps.executions.getTask(executionId, taskIndex),
    ]);
    const done = { executionId, taskIndex, action: 'done' as const, delaySeconds: 0 };
    if (!execution || !task) return done;
    // The agent completed it but its callback came late (TaskTimedOut): the result stands.
    if (task.status === 'completed' || task.status === 'skipped') return done;
    // The layer's Gate step failed (GateFailed), possibly before the task left `pending`.
    const layerFailure = failure.source === 'layer';
    // Pending after any other failure: an earlier attempt of this Recover (a retried Lambda) already
    // recorded the retry; counting it again, or failing the task, would be wrong.
    if (task.status === 'pending' && !layerFailure) return { executionId, taskIndex, action: 'retry', delaySeconds: 0 };

    const errorType = classifyErrorName(failure.Error);
    const message = causeMessage(failure);
    if (errorType === 'timeout' && task.status === 'queued' && failure.Error === 'States.Timeout') {
      return { executionId, taskIndex, action: 'retry', delaySeconds: 0 }; // never claimed: dispatch again
    }
    // A refusal by the open breaker is not a new failure of the dependency.
    const refused = state.gate?.action === 'blocked';
    if (errorType === 'dependency' && !refused) await this.deps.breaker.recordFailure(agentTypeBreakerKey(task.agentType));

    const error: TaskError = { type: errorType, message, ...(isErrorSource(failure.source) && { source: failure.source }) };
    const stopping = isStopping(execution);
    const final = state.gate?.action === 'blocked' && state.gate.final === true;
    if (!stopping && !final) {
      const decision = decideRecovery(recoveryStrategy(task, errorType), task.retries?.[errorType] ?? 0);
      if (decision.retry && (await this.deps.executions.recordRetry(executionId, taskIndex, errorType, error, { fromPending: layerFailure }))) {
        return { executionId, taskIndex, action: 'retry', delaySeconds: decision.delaySeconds };
      }
    }
    await this.deps.executions.failTask(executionId, taskIndex, error);
    if (task.failureStrategy === 'stop') {
      await this.deps.executions.markStopping(executionId, {
        taskId: task.taskId,
        stage: execution.stages[task.stage]?.name ?? '',
      });
      // Tasks no agent has claimed yet are skipped; an agent whose claim then fails reports the skip.
      await this.deps.executions.skipWaitingTasks(executionId, `task ${task.taskId} failed with failureStrategy "stop"`);
    }
    return done;
  }

  async finalize({ executionId }: { executionId: string }): Promise<{ status: string }> {
    const execution = await this.requireExecution(executionId);
    const tasks = await this.deps.executions.listTasks(executionId);
    const outcome = deriveOutcome(execution, tasks);
    await this.deps.executions.setStatus(executionId, outcome.status, {
      from: ['PENDING', 'RUNNING'],
      stoppedAt: new Date().toISOString(),
      result: outcome.result,
    });
    return { status: outcome.status };
  }
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
