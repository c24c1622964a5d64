// One received message: parsed, its task claimed with a lease (one conditional write), and the run
// carried to its end (run.ts). A message whose task cannot be claimed is dropped, relayed while
// another agent holds the task, or answered from the record when the task has finished.
import { randomUUID } from 'node:crypto';
import type { Message } from '@aws-sdk/client-sqs';
import type { ClaimResult } from '../../core/aws/execution-store.ts';
import { parseDispatch } from '../../core/dispatch.ts';
import { METRIC } from '../../core/metrics.ts';
import type { DispatchMessage } from '../../core/records.ts';
import { dispatchedAtOf, type HeldMessage } from '../custody.ts';
import { childLogger, type Run, type WorkerContext } from './context.ts';
import type { TaskInputs } from './inputs.ts';
import { keepAlive } from './lease.ts';
import { endWithoutReport, reportRecorded } from './report.ts';
import { execute } from './run.ts';

/** A received message and when the receive was sent. */
export type Received = Message & { receivedAt: number };

export async function handleMessage(ctx: WorkerContext, inputs: TaskInputs, queueUrl: string, m: Received): Promise<void> {
  const receipt = m.ReceiptHandle!;
  const held: HeldMessage = { queueUrl, receipt, body: m.Body ?? '', receivedAt: m.receivedAt, dispatchedAt: dispatchedAtOf(m) };
  try {
    const msg = parseDispatch(m.Body);
    if (!msg) {
      ctx.log.warn('dropped a message that is not a dispatch', { queueUrl, messageId: m.MessageId });
      await ctx.calls.deleteMessage(queueUrl, receipt);
      return;
    }
    const claimId = randomUUID();
    const claimedAt = ctx.clock.now();
    let claim = await ctx.deps.executions.claimTask({
      executionId: msg.executionId,
      index: msg.taskIndex,
      dispatchSeq: msg.dispatchSeq,
      agentId: ctx.config.agentId,
      claimId,
      leaseMs: ctx.leaseMs,
      now: claimedAt,
      dispatchedAt: held.dispatchedAt,
    });
    if (!claim.claimed && claim.reason === 'held' && claim.task?.claimId === claimId) {
      // Our own write landed but its answer was lost (the SDK retried it and the retry found the
      // condition false): the claim is ours.
      claim = { claimed: true, task: claim.task };
    }
    if (!claim.claimed) {
      await notClaimed(ctx, held, msg, claim);
      return;
    }
    const run: Run = {
      msg,
      log: childLogger(ctx.log, {
        executionId: msg.executionId,
        index: msg.taskIndex,
        taskId: claim.task.taskId,
        attempt: claim.task.attempts,
        dispatchSeq: msg.dispatchSeq,
      }),
      queueUrl,
      receipt,
      body: held.body,
      receivedAt: held.receivedAt,
      dispatchedAt: held.dispatchedAt,
      claimId,
      task: claim.task,
      claimedAt,
      phase: 'preparing',
      abort: new AbortController(),
      pgids: new Set(),
      session: {},
      ticking: false,
      claimed: ctx.clock.now(),
    };
    ctx.runs.add(run);
    ctx.taskMetrics.add(METRIC.tasksStarted, 'Count', 1);
    // From the first dispatch's send (a relayed copy keeps it) to this claim.
    if (run.dispatchedAt) ctx.taskMetrics.add(METRIC.queueWait, 'Milliseconds', Math.max(0, claimedAt - run.dispatchedAt));
    run.timer = setInterval(() => void keepAlive(ctx, run), ctx.config.heartbeatIntervalMs);
    try {
      if (ctx.handingBack) {
        run.end = 'handback';
        await endWithoutReport(ctx, run);
      } else {
        await execute(ctx, inputs, run);
      }
    } finally {
      clearInterval(run.timer);
      ctx.runs.delete(run);
      if (ctx.runs.size === 0) ctx.idleSince = ctx.clock.now();
    }
  } catch (err) {
    // An AWS error outside the report path: the message comes back after its visibility timeout
    // and a held claim after its lease; nothing is lost, so log and carry on.
    ctx.warnSparse('handle', 'a message could not be handled; it will be delivered again', err);
  }
}

/** A message whose task this agent cannot claim. */
async function notClaimed(ctx: WorkerContext, held: HeldMessage, msg: DispatchMessage, claim: Extract<ClaimResult, { claimed: false }>) {
  const { queueUrl, receipt } = held;
  const ref = { executionId: msg.executionId, index: msg.taskIndex, taskId: claim.task?.taskId, dispatchSeq: msg.dispatchSeq };
  switch (claim.reason) {
    case 'unknown':
      // Not dispatched by the layer (put on the queue by hand): dropped, never run.
      ctx.log.warn('dropped a message for a task that does not exist', ref);
      await ctx.calls.deleteMessage(queueUrl, receipt);
      return;
    case 'stale':
      ctx.log.info('dropped a stale dispatch', { ...ref, current: claim.task?.dispatchSeq });
      await ctx.calls.deleteMessage(queueUrl, receipt);
      return;
    case 'held':
      // Another agent's live lease (a second delivery, or the holder's relay past the visibility
      // cap): it will report. This delivery goes back as a fresh copy that returns after a
      // visibility timeout, so a held task's message never piles up receives toward the DLQ, and
      // a copy is claimed soon after the holder dies (agent/custody.ts).
      ctx.log.debug('task is held by another agent', { ...ref, holder: claim.task?.agentId });
      await ctx.custody.relay(held, ctx.relayDelaySeconds);
      return;
    case 'finished': {
      // Reported before, perhaps without the report reaching Step Functions: say it again (a
      // closed token answers TaskTimedOut or InvalidToken, which is fine), then drop.
      const task = claim.task!;
      await reportRecorded(ctx, msg, task);
      ctx.log.debug('dropped a dispatch of a finished task', { ...ref, status: task.status });
      await ctx.calls.deleteMessage(queueUrl, receipt);
      return;
    }
  }
}
