// The end of a run: its result recorded on the task (finishClaim, the claim's own conditional
// write), its outcome sent to Step Functions, its message deleted. Or, without a result of ours:
// a lost claim, or a run handed back with its checkpoint.
import { agentBreakerKey, successBreakerKeys } from '../../core/breakers.ts';
import { classifyAgentError } from '../../core/classify.ts';
import { METRIC, METRIC_DIMENSION } from '../../core/metrics.ts';
import type { Task } from '../../core/plan.ts';
import type { CachedResult } from '../../core/result-cache.ts';
import type { AttemptLogEntry, DispatchMessage, Stored, TaskRecord } from '../../core/records.ts';
import { withRecentKey } from '../../core/affinity.ts';
import { retry } from '../agent-calls.ts';
import { type DriverResult, driverNameFor } from '../drivers/types.ts';
import type { Run, WorkerContext, WorkerDeps } from './context.ts';

/** Records a run's result, reports it and deletes its message; then the "task finished" line. */
export async function report(ctx: WorkerContext, run: Run, result: DriverResult, definition: Task | undefined): Promise<void> {
  const { msg, task } = run;
  const ref = { executionId: msg.executionId, index: msg.taskIndex };
  const now = ctx.clock.now();
  const finishedAt = new Date(now).toISOString();
  const durationMs = now - run.claimedAt;
  const attempts = task.attempts;

  let outcome = result;
  let output: Stored<Record<string, unknown>> | undefined;
  if (outcome.status === 'completed') {
    const value = outcome.output;
    try {
      output = await retry(() => ctx.deps.payloads.store(`outputs/${msg.executionId}/${msg.taskIndex}-${attempts}.json`, value));
    } catch (err) {
      outcome = { status: 'failed', error: classifyAgentError(err, 'the output could not be stored') };
    }
  }
  const finished = await finish(
    ctx,
    run,
    outcome.status === 'completed'
      ? { status: 'completed', output, cost: outcome.cost, artifacts: outcome.artifacts, finishedAt, durationMs }
      : { status: 'failed', error: outcome.error, cost: outcome.cost, artifacts: outcome.artifacts, finishedAt, durationMs },
  );
  if (!finished) {
    // Another agent holds the task now (our lease ran out): its report counts, not ours.
    ctx.metrics.record(false, durationMs);
    run.log.warn('claim lost before the result was recorded', { attempt: attempts });
    return;
  }

  ctx.metrics.record(outcome.status === 'completed', durationMs);
  if (outcome.status === 'completed') ctx.taskMetrics.add(METRIC.tasksCompleted, 'Count', 1);
  else ctx.taskMetrics.add(METRIC.tasksFailed, 'Count', 1, { [METRIC_DIMENSION.errorType]: outcome.error.type });
  ctx.taskMetrics.add(METRIC.taskDuration, 'Milliseconds', durationMs);
  // What the run spent counts against the plan's budget (Gate checks it before each dispatch).
  const usd = outcome.cost?.usd ?? 0;
  if (usd > 0) {
    ctx.taskMetrics.add(METRIC.taskCost, 'None', usd);
    await retry(() => ctx.deps.executions.addSpend(msg.executionId, usd)).catch((err: unknown) => ctx.warnSparse('spend', 'could not add a run\'s spend to its execution', err));
  }
  // Before the callback: the workflow's next Gate may look for an agent that ran this key.
  await noteAffinity(ctx, run);
  const recorded = ctx.clock.now();
  if (outcome.status === 'completed') await ctx.calls.sendSuccess(msg.taskToken, { status: 'completed', attempts }, ref);
  else await ctx.calls.sendFailure(msg.taskToken, outcome.error, ref);
  const reported = ctx.clock.now();
  // A relayed copy (past the visibility cap) is found finished by whoever receives it, and dropped.
  if (run.receipt) await ctx.calls.deleteMessage(run.queueUrl, run.receipt);
  // Where the agent's share of a task's time goes: before the command, the command, recording the
  // result, the callback, and deleting the message.
  const phasesMs = {
    claim: (run.claimed ?? run.claimedAt) - run.claimedAt,
    prepare: (run.ranFrom ?? now) - (run.claimed ?? run.claimedAt),
    run: (run.ranTo ?? now) - (run.ranFrom ?? now),
    cleanup: now - (run.ranTo ?? now),
    record: recorded - now,
    callback: reported - recorded,
    delete: ctx.clock.now() - reported,
  };

  await reportToBreakers(ctx, msg, outcome);
  if (outcome.status === 'completed') await storeInCache(ctx, run, output, outcome.artifacts, finishedAt);
  run.log.info('task finished', {
    attempt: attempts,
    status: outcome.status,
    durationMs,
    phasesMs,
    ...(outcome.status === 'failed' ? { errorType: outcome.error.type, error: outcome.error.message.slice(0, 200) } : {}),
    ...(definition && !definition.command ? { driver: driverNameFor(definition) } : {}),
  });
}

/** A cached task's completed run becomes the entry under its key (core/result-cache.ts). Never throws. */
async function storeInCache(ctx: WorkerContext, run: Run, output: Stored<Record<string, unknown>> | undefined, artifacts: CachedResult['artifacts'], completedAt: string): Promise<void> {
  const ttlSeconds = run.task.cache?.ttlSeconds;
  if (!run.cacheKey || !ttlSeconds) return;
  try {
    await ctx.deps.executions.putCachedResult({
      key: run.cacheKey,
      executionId: run.msg.executionId,
      taskId: run.task.taskId,
      ...(output ? { output } : {}),
      ...(artifacts?.length ? { artifacts } : {}),
      completedAt,
      expiresAt: Math.floor(ctx.clock.now() / 1000) + ttlSeconds,
    });
  } catch (err) {
    ctx.warnSparse('cache', 'could not store a result in the cache', err);
  }
}

/**
 * A claimed task whose result the cache had (run.ts looked it up): completed with that run's output
 * and artifacts, no driver run, no cost; then reported like any completion.
 */
export async function completeFromCache(ctx: WorkerContext, run: Run, entry: CachedResult): Promise<void> {
  const { msg, task } = run;
  const ref = { executionId: msg.executionId, index: msg.taskIndex };
  const now = ctx.clock.now();
  const finished = await finish(ctx, run, {
    status: 'completed',
    output: entry.output,
    artifacts: entry.artifacts,
    cachedFrom: { executionId: entry.executionId, taskId: entry.taskId },
    finishedAt: new Date(now).toISOString(),
    durationMs: now - run.claimedAt,
  });
  if (!finished) {
    run.log.warn('claim lost before the cached result was recorded', { attempt: task.attempts });
    return;
  }
  ctx.taskMetrics.add(METRIC.cacheHits, 'Count', 1);
  await ctx.calls.sendSuccess(msg.taskToken, { status: 'completed', attempts: task.attempts }, ref);
  if (run.receipt) await ctx.calls.deleteMessage(run.queueUrl, run.receipt);
  run.log.info('task completed from the cache', { attempt: task.attempts, cachedFrom: entry });
}

/** The task's execution has no record (deleted): the task is skipped, not run. */
export async function skipWithoutExecution(ctx: WorkerContext, run: Run): Promise<void> {
  const { msg } = run;
  const ref = { executionId: msg.executionId, index: msg.taskIndex };
  run.phase = 'reporting';
  const finished = await finish(ctx, run, { status: 'skipped', finishedAt: new Date(ctx.clock.now()).toISOString() });
  if (!finished) return;
  await ctx.calls.sendSuccess(msg.taskToken, { status: 'skipped', attempts: run.task.attempts }, ref);
  if (run.receipt) await ctx.calls.deleteMessage(run.queueUrl, run.receipt);
  run.log.info('task skipped', { reason: 'no execution' });
}

/** Tells Step Functions the outcome recorded on a finished task (a closed token is fine). */
export async function reportRecorded(ctx: WorkerContext, msg: DispatchMessage, task: TaskRecord): Promise<void> {
  const ref = { executionId: msg.executionId, index: msg.taskIndex, dispatchSeq: msg.dispatchSeq };
  if (task.status === 'completed' || task.status === 'skipped') {
    await ctx.calls.sendSuccess(msg.taskToken, { status: task.status, attempts: task.attempts }, ref);
  } else if (task.status === 'failed' && task.error) {
    await ctx.calls.sendFailure(msg.taskToken, task.error, ref);
  }
}

/** The run ended without a result of ours: the claim was lost, or the task is handed back. */
export async function endWithoutReport(ctx: WorkerContext, run: Run): Promise<void> {
  clearInterval(run.timer);
  // A renewal still under way would extend the lease after the hand-back ends it.
  while (run.ticking) await ctx.sleep(10);
  const ref = { executionId: run.msg.executionId, index: run.msg.taskIndex, taskId: run.task.taskId, attempt: run.task.attempts };
  if (run.end === 'lost') {
    ctx.metrics.record(false, ctx.clock.now() - run.claimedAt);
    run.log.warn('claim lost; the command was killed', ref);
    // Ended by the layer (a cancel, an escalation's fail-execution) rather than taken by another
    // agent: its outcome goes to Step Functions now, not at the message's next delivery.
    // Otherwise the receipt handle may be another agent's now: leave the message alone.
    const current = await ctx.deps.executions.getTask(run.msg.executionId, run.msg.taskIndex).catch(() => undefined);
    if (current && current.dispatchSeq === run.msg.dispatchSeq && (current.status === 'failed' || current.status === 'skipped')) {
      try {
        await reportRecorded(ctx, run.msg, current);
        // Unless custody already relayed it (agent/custody.ts): then the copy is dropped when it comes.
        if (run.receipt) await ctx.calls.deleteMessage(run.queueUrl, run.receipt);
      } catch (err) {
        ctx.warnSparse('report', 'could not report a task the layer ended', err);
      }
    }
    return;
  }
  try {
    const entry: AttemptLogEntry = {
      attempt: run.task.attempts,
      agentId: ctx.config.agentId,
      agentType: run.task.agentType,
      ...(run.task.startedAt ? { startedAt: run.task.startedAt } : {}),
      finishedAt: new Date(ctx.clock.now()).toISOString(),
      status: 'handed-back',
      message: ctx.handingBack ? 'the agent stopped and handed the run back' : 'handed back for higher-priority work',
    };
    if (!(await ctx.deps.executions.handBack(run.msg.executionId, run.msg.taskIndex, run.claimId, run.checkpoint, entry))) {
      // The lease ran out meanwhile and another agent holds the task: its run counts, not our checkpoint.
      run.log.warn('could not hand a task back: another agent holds it now', ref);
      return;
    }
    if (run.receipt) await ctx.calls.changeVisibility(run.queueUrl, run.receipt, 0);
    // Past the visibility cap the message was relayed: a copy, visible at once, takes its place.
    else await ctx.custody.sendCopy({ queueUrl: run.queueUrl, body: run.body, receivedAt: run.receivedAt, dispatchedAt: run.dispatchedAt }, 0);
    run.log.info('task handed back', { ...ref, checkpoint: run.checkpoint?.key ?? null });
  } catch (err) {
    ctx.warnSparse('handback', 'could not hand a task back; its lease will run out', err);
  }
}

/**
 * finishClaim, retried. A retried conditional write whose first try did land fails its
 * condition, so a false answer is checked against the record before it counts as a lost claim.
 */
async function finish(ctx: WorkerContext, run: Run, result: Parameters<WorkerDeps['executions']['finishClaim']>[3]): Promise<boolean> {
  const { executionId, taskIndex } = run.msg;
  const done = await retry(() => ctx.deps.executions.finishClaim(executionId, taskIndex, run.claimId, result));
  if (done) return true;
  const current = await retry(() => ctx.deps.executions.getTask(executionId, taskIndex));
  return current?.claimId === run.claimId && current.status === result.status;
}

/**
 * Reports the run's success to the breakers Gate named (those with failures counted, and those
 * this run probes): a probe's success closes its breaker, any success resets a count. Failures are
 * recorded by the state machine's Recover step, which sees every failure, not only this agent's:
 * recording them here too would count them twice.
 */
async function reportToBreakers(ctx: WorkerContext, msg: DispatchMessage, outcome: DriverResult): Promise<void> {
  // A message from before `breakers` existed: `probe` meant the agent type's breaker.
  const keys = msg.breakers ?? (msg.probe ? [agentBreakerKey(ctx.config.agentType)] : []);
  for (const key of successBreakerKeys(keys, outcome)) {
    try {
      await ctx.deps.breaker.recordSuccess(key);
    } catch (err) {
      ctx.warnSparse('breaker', 'could not record a success with a circuit breaker', err);
    }
  }
}

/**
 * The run's affinity key goes onto the agent's record (core/affinity.ts), most recent last: one
 * write when the key is not the agent's latest already, none for a run of the same key again.
 */
async function noteAffinity(ctx: WorkerContext, run: Run): Promise<void> {
  const key = run.task.affinity;
  if (!key || !ctx.directQueueUrl || !ctx.deps.agents.setRecentKeys) return;
  const next = withRecentKey(ctx.recentKeys, key);
  if (!next) return;
  ctx.recentKeys = next;
  // This run is still counted in ctx.runs: it is ending.
  await ctx.deps.agents.setRecentKeys(ctx.config.agentId, next, ctx.runs.size - 1).catch((err: unknown) => ctx.warnSparse('affinity', 'could not record the run\'s affinity key', err));
}
