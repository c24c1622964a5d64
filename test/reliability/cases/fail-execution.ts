// `escalation: "fail-execution"`: a task whose failure escalates ends the whole execution now, though
// its failureStrategy is "continue". Each trial's plan (parallel, maxConcurrency 2):
//   slow     a monitor task that blocks until the case opens its gate (after the execution ended);
//   broken   a monitor task that fails for good (exit 3) once slow has started, and escalates;
//   later-*  monitor tasks not dispatched yet (beyond maxConcurrency), so not claimed.
// Expected: FAILED within a few heartbeats of broken's failure; slow failed as cancelled, its command
// killed (its shell gone before the gate opens, so no commit); later-* skipped, never started; no task
// run twice.
//
// Every fifth trial adds a busy fleet: two tasks of another type (`security`, the poison case's, on
// its low queue, which that case does not use) dispatched at once (maxConcurrency 4) while that
// type's only agent is held by a task of another execution, so they wait on their queue unclaimed.
// They must be skipped, and the execution must end as promptly; the blocker is released afterwards,
// and they must never run. (Found by this case: their dispatches' task tokens are reported only by an
// agent that receives the messages, so the execution stayed RUNNING until that type had a free
// agent; now a stopping execution whose tasks are all final ends at once, core/steps.ts endIfSettled.)
import { join } from 'node:path';
import { alive } from '../../support/processes.ts';
import { waitFor } from '../../e2e/harness.ts';
import { type Expectation, type TaskCheck, addTally } from '../account.ts';
import { type ReliabilityCase, eachTrial, settle, sizePool, startedShell, submit, tallyExecution } from '../suite.ts';

const TYPE = 'monitor';
const BUSY_TYPE = 'security';
/** From the escalating failure to the execution's end: a few of the agents' lease renewals (a third of the 6 s heartbeat each). */
const PROMPT_MS = 15_000;

const once: TaskCheck = (_task, entry) => (entry.starts.length <= 1 ? undefined : `started ${entry.starts.length} times`);
const never: TaskCheck = (_task, entry) => (entry.starts.length === 0 ? undefined : `started ${entry.starts.length} times, though its execution had failed`);

export const failExecution: ReliabilityCase = {
  name: 'fail-execution',
  cheap: false,
  breaker: { failureThreshold: 1_000_000 },
  agentType: TYPE,
  slots: 4,
  trials: (mode) => (mode === 'full' ? 20 : 3),
  async run(ctx) {
    const endedAfter: number[] = [];
    const goneAfter: number[] = [];
    let busyTrials = 0;
    try {
      const total = await eachTrial(ctx, async (trial) => {
        const busy = trial % 5 === 0;
        await ctx.agents(1);
        const id = (name: string) => `t${trial}-${name}`;
        const [slow, broken, blocker] = [id('slow'), id('broken'), id('blocker')];
        const later = [id('later-0'), id('later-1')];
        const waiting = busy ? [id('waiting-0'), id('waiting-1')] : [];

        let blocked: string | undefined;
        if (busy) {
          busyTrials++;
          await sizePool(ctx.layer, BUSY_TYPE, 1);
          blocked = await submit(ctx.layer, { pattern: 'sequential', tasks: [{ id: blocker, agentType: BUSY_TYPE, priority: 'low', command: ctx.ledger.command(blocker, ctx.ledger.waitForGate(blocker)) }] });
          await startedShell(ctx.ledger, blocker, 1);
        }
        const slowStarted = `until [ -s ${join(ctx.ledger.dir, slow)} ]; do sleep 0.05; done`;
        const executionId = await submit(ctx.layer, {
          pattern: 'parallel',
          maxConcurrency: 2 + waiting.length,
          tasks: [
            { id: slow, agentType: TYPE, failureStrategy: 'continue', command: ctx.ledger.command(slow, ctx.ledger.waitForGate(slow)) },
            {
              id: broken,
              agentType: TYPE,
              failureStrategy: 'continue',
              command: ctx.ledger.command(broken, `${slowStarted}; echo "the health check is misconfigured" >&2; exit 3`),
              recovery: { permanent: { escalation: 'fail-execution' } },
            },
            ...waiting.map((w) => ({ id: w, agentType: BUSY_TYPE, priority: 'low', failureStrategy: 'continue', command: ctx.ledger.command(w) })),
            ...later.map((l) => ({ id: l, agentType: TYPE, failureStrategy: 'continue', command: ctx.ledger.command(l) })),
          ],
        });
        const shell = await startedShell(ctx.ledger, slow, 1);
        const expectations: Expectation[] = [
          {
            taskId: broken,
            status: 'failed',
            errorType: 'permanent',
            attempts: 1,
            commits: 0,
            checks: [once, (task) => (task.error?.message === 'the health check is misconfigured' ? undefined : `error message "${task.error?.message}"`)],
          },
          {
            taskId: slow,
            status: 'failed',
            attempts: 1,
            commits: 0,
            checks: [once, (task) => (/fail-execution/.test(task.error?.message ?? '') && task.error.message.includes(broken) ? undefined : `error ${JSON.stringify(task.error)} does not say ${broken} escalated to fail-execution`)],
          },
          ...[...waiting, ...later].map((taskId): Expectation => ({ taskId, status: 'skipped', commits: 0, checks: [never] })),
        ];

        // Ended in time, or not: what a user polling GET /executions/{id} sees within PROMPT_MS of
        // broken's failure (plus the time to see that failure).
        const brokenFailed = await waitFor(`${broken} to fail`, async () => {
          const task = (await ctx.layer.request('GET', `/executions/${executionId}`)).body?.tasks?.find((t: any) => t.taskId === broken);
          return task?.status === 'failed' ? task : undefined;
        }, 60_000);
        const failedAt = Date.parse(brokenFailed.attemptLog?.at(-1)?.finishedAt ?? brokenFailed.finishedAt);
        const problems: string[] = [];
        const early = await settle(ctx.layer, executionId, Math.max(1_000, failedAt + PROMPT_MS - Date.now()));
        if (early.status === 'RUNNING') {
          const open = (early.tasks ?? []).filter((t: any) => !['completed', 'failed', 'skipped'].includes(t.status)).map((t: any) => `${t.taskId} ${t.status}`);
          problems.push(`${executionId}: still RUNNING ${PROMPT_MS / 1000} s after ${broken} failed and escalated (tasks not final: ${open.join(', ') || 'none'})`);
        } else {
          endedAfter.push(Date.parse(early.stoppedAt) - failedAt);
        }

        // Cancelled means killed: the shell must be gone before the gate opens (else it commits).
        try {
          await waitFor(`${slow}'s shell to be gone`, async () => !alive(shell) || undefined, 15_000);
          if (early.stoppedAt) goneAfter.push(Math.max(0, Date.now() - Date.parse(early.stoppedAt)));
        } catch {
          problems.push(`${executionId}/${slow}: its shell ${shell} still runs 15 s after its execution failed`);
        }
        ctx.ledger.openGate(slow);
        // The busy type's agent comes free: whatever waited for it must not run now.
        if (busy) ctx.ledger.openGate(blocker);
        const tally = await tallyExecution(ctx, executionId, 'FAILED', expectations, 60_000);
        if (blocked) {
          addTally(tally, await tallyExecution(ctx, blocked, 'SUCCEEDED', [{ taskId: blocker, status: 'completed', attempts: 1, commits: 1 }], 60_000));
          await sizePool(ctx.layer, BUSY_TYPE, 0);
        }
        tally.failures.unshift(...problems);
        return tally;
      });
      const max = (xs: number[]) => (xs.length ? `${(Math.max(...xs) / 1000).toFixed(1)} s` : '-');
      return {
        ...total,
        notes: `${ctx.trials} plans of 4 tasks (${busyTrials} with 2 more waiting for a busy type); ended at most ${max(endedAfter)} after the escalating failure; the cancelled shell gone at most ${max(goneAfter)} after the end`,
      };
    } finally {
      await sizePool(ctx.layer, BUSY_TYPE, 0).catch(() => undefined);
    }
  },
};
