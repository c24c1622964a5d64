// A task timeout: commands that would sleep 5 s under `timeoutSeconds: 1`. Each attempt is killed at
// its timeout; after the timeout's retries (the contract's default: one) the task fails as
// `timeout`. The command never gets past its kill: no commit in the ledger, no process left.
import { alive } from '../../support/processes.ts';
import { waitFor } from '../../e2e/harness.ts';
import { type ReliabilityCase, tallyExecution, submit, trialTaskId } from '../suite.ts';

const SLEEP_SECONDS = 5;

export const taskTimeout: ReliabilityCase = {
  name: 'task-timeout',
  cheap: true,
  breaker: { failureThreshold: 1_000_000 },
  agentType: 'documenter',
  slots: 8,
  trials: (mode) => (mode === 'full' ? 100 : 20),
  async run(ctx) {
    await ctx.agents(3);
    const ids = Array.from({ length: ctx.trials }, (_, i) => trialTaskId(i));
    const executionId = await submit(ctx.layer, {
      pattern: 'parallel',
      maxConcurrency: ctx.trials,
      tasks: ids.map((id) => ({
        id,
        agentType: 'documenter',
        timeoutSeconds: 1,
        // Every task fails: "continue" keeps one from stopping the others.
        failureStrategy: 'continue',
        command: ctx.ledger.command(id, `sleep ${SLEEP_SECONDS}`),
      })),
    });
    const tally = await tallyExecution(
      ctx,
      executionId,
      'SUCCEEDED',
      ids.map((taskId) => ({
        taskId,
        status: 'failed',
        errorType: 'timeout',
        attempts: 2,
        commits: 0,
        checks: [(_task, entry) => (entry.starts.length === 2 ? undefined : `started ${entry.starts.length} times, expected 2`)],
      })),
      120_000 + ctx.trials * 2_000,
    );
    // Killed means gone: no shell of any attempt may still be alive (it would commit when its sleep ends).
    const shells = ids.flatMap((id) => ctx.ledger.entry(id).starts.map((s) => ({ id, pid: s.pid })));
    try {
      await waitFor('every timed-out command to be gone', async () => shells.every((s) => !alive(s.pid)), 3_000);
    } catch {
      for (const s of shells.filter((x) => alive(x.pid))) tally.failures.push(`${executionId}/${s.id}: shell ${s.pid} still runs after the task failed`);
    }
    const ms = Date.parse(tally.execution.stoppedAt) - Date.parse(tally.execution.startedAt);
    return { ...tally, notes: `${ctx.trials} tasks in one plan, ${shells.length} attempts killed, ${(ms / 1000).toFixed(1)} s` };
  },
};
