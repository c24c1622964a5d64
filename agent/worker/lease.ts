// Beside a running task, every heartbeat interval: the claim's lease is renewed and the message kept
// hidden (relayed past SQS's visibility cap). A renewal that finds the claim gone ends the run as
// lost; a stop or a preemption ends it as handed back.
import { killProcessGroup } from '../drivers/process.ts';
import type { HeldMessage } from '../custody.ts';
import type { Run, RunEnd, WorkerContext } from './context.ts';

/** Every heartbeat interval while a task runs: renew the lease, then the message's visibility. */
export async function keepAlive(ctx: WorkerContext, run: Run): Promise<void> {
  if (run.ticking || run.end === 'lost') return;
  run.ticking = true;
  try {
    if (run.phase !== 'reporting') {
      const cost = run.session.cost;
      const renewed = await ctx.deps.executions.renewLease(
        run.msg.executionId,
        run.msg.taskIndex,
        run.claimId,
        ctx.clock.now() + ctx.leaseMs,
        cost ? { ...cost, at: new Date(ctx.clock.now()).toISOString() } : undefined,
      );
      // The phase may have moved on while the call was out (finishClaim ends the lease too).
      if (!renewed && (run.phase as Run['phase']) !== 'reporting' && run.end !== 'handback') {
        if (!run.end) claimLost(run);
        return;
      }
    }
    if ((run.end as RunEnd | undefined) !== 'lost') await extendVisibility(ctx, run);
  } catch (err) {
    ctx.warnSparse('lease', 'could not renew a lease; trying again next interval', err);
  } finally {
    run.ticking = false;
  }
}

/**
 * The message stays hidden while the task runs, up to the visibility cap; past it, it is relayed
 * and the lease alone says the task is held (agent/custody.ts).
 */
async function extendVisibility(ctx: WorkerContext, run: Run): Promise<void> {
  if (!run.receipt) return;
  const held: HeldMessage = { queueUrl: run.queueUrl, receipt: run.receipt, body: run.body, receivedAt: run.receivedAt, dispatchedAt: run.dispatchedAt };
  if (!ctx.custody.passesCap(held, ctx.clock.now(), ctx.visibilitySeconds)) {
    await ctx.calls.changeVisibility(run.queueUrl, run.receipt, ctx.visibilitySeconds);
    return;
  }
  if (await ctx.custody.relay(held, ctx.relayDelaySeconds)) {
    run.receipt = undefined;
    run.log.info('relayed the message of a task running past the visibility cap', {
      heldForSeconds: Math.round((ctx.clock.now() - run.receivedAt) / 1000),
    });
  }
}

/** Another agent (or the layer) holds the task now: the run's processes go at once. */
export function claimLost(run: Run): void {
  run.end = 'lost';
  clearInterval(run.timer);
  for (const pgid of run.pgids) killProcessGroup(pgid);
  run.abort.abort(new Error('claim lost'));
}

/** Asks a run to stop and hand its task back (a stop, or a preemption); a finishing run finishes. */
export function handBack(run: Run): void {
  if (run.end || run.phase === 'finishing' || run.phase === 'reporting') return;
  run.end = 'handback';
  // The lease stays renewed until the hand-back is written: saving the checkpoint takes a while.
  // The driver stops its processes (Claude Code gets a moment to save its session for the
  // checkpoint); whatever is left is killed when the driver returns. Not so for a lost claim,
  // where another agent may be running the task already.
  run.abort.abort(new Error('agent stopping'));
}
