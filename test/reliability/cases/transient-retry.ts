// A transient failure that succeeds on retry: each task's command exits 75 (EX_TEMPFAIL) the first
// time (a marker file beside its ledger says it did) and commits the second. Expected: completed,
// 2 attempts, started twice, committed once, by the second attempt.
import type { TaskCheck } from '../account.ts';
import { type ReliabilityCase, tallyExecution, submit, trialTaskId } from '../suite.ts';

/** What every task of this case must also show; further checks of the record go here. */
export const transientChecks: TaskCheck[] = [
  (_task, entry) => {
    const starts = entry.starts.map((s) => s.attempt).join(',');
    return starts === '1,2' ? undefined : `started as attempts [${starts}], expected [1,2]`;
  },
  (_task, entry) => (entry.commits.join(',') === '2' ? undefined : `committed by attempts [${entry.commits.join(',')}], expected [2]`),
  // The attempt log says what happened: the first attempt failed transiently (its command's exit 75),
  // recovery chose a retry, and the second completed.
  (task) => {
    const log = (task.attemptLog ?? []) as { attempt: number; status: string; errorType?: string; source?: string; next?: string }[];
    const seen = log.map((e) => `${e.attempt}:${e.status}${e.errorType ? `:${e.errorType}:${e.source}:${e.next}` : ''}`).join(' ');
    return seen === '1:failed:transient:command:retry 2:completed' ? undefined : `attemptLog [${seen}], expected [1:failed:transient:command:retry 2:completed]`;
  },
];

export const transientRetry: ReliabilityCase = {
  name: 'transient-retry',
  cheap: true,
  breaker: { failureThreshold: 1_000_000 },
  agentType: 'architect',
  slots: 8,
  trials: (mode) => (mode === 'full' ? 100 : 20),
  async run(ctx) {
    await ctx.agents(2);
    const ids = Array.from({ length: ctx.trials }, (_, i) => trialTaskId(i));
    const failOnce = 'if [ ! -e "$L.marker" ]; then : > "$L.marker"; exit 75; fi';
    const executionId = await submit(ctx.layer, {
      pattern: 'parallel',
      maxConcurrency: ctx.trials,
      tasks: ids.map((id) => ({ id, agentType: 'architect', command: ctx.ledger.command(id, failOnce) })),
    });
    const tally = await tallyExecution(
      ctx,
      executionId,
      'SUCCEEDED',
      ids.map((taskId) => ({ taskId, status: 'completed', attempts: 2, commits: 1, checks: transientChecks })),
      120_000 + ctx.trials * 2_000,
    );
    const ms = Date.parse(tally.execution.stoppedAt) - Date.parse(tally.execution.startedAt);
    return { ...tally, notes: `${ctx.trials} tasks in one plan, ${(ms / 1000).toFixed(1)} s` };
  },
};
