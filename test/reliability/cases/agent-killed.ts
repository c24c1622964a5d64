// A worker SIGKILLed mid-task: its first run blocks on a gate; the case kills the worker running it
// (its pid from GET /agents `runtime.pid`). The layer must reap the run's processes, and the task
// must run again on another agent and complete once. The gate opens only after the first run's shell
// is gone, so a run that outlived its agent would commit a second time and show as doubled.
import { alive } from '../../support/processes.ts';
import { waitFor } from '../../e2e/harness.ts';
import { type Tally, emptyTally, addTally } from '../account.ts';
import { type ReliabilityCase, agentRecord, startedShell, submit, tallyExecution, taskWhen, trialTaskId } from '../suite.ts';

const TYPE = 'coder';

export const agentKilled: ReliabilityCase = {
  name: 'agent-killed',
  cheap: false,
  agentType: TYPE,
  trials: (mode) => (mode === 'full' ? 20 : 5),
  async run(ctx) {
    const total: Tally = emptyTally();
    let unreaped = 0;
    for (let trial = 0; trial < ctx.trials; trial++) {
      await ctx.agents(2);
      const id = trialTaskId(trial);
      const command = ctx.ledger.command(id, `if [ "$XL_ATTEMPT" = 1 ]; then ${ctx.ledger.waitForGate(id)}; fi`);
      const executionId = await submit(ctx.layer, { pattern: 'sequential', tasks: [{ id, agentType: TYPE, command }] });
      const shell = await startedShell(ctx.ledger, id, 1);
      const running = await taskWhen(ctx.layer, executionId, id, 'the task to run', (t) => t.status === 'running' && t.agentId);
      const victim = await agentRecord(ctx.layer, running.agentId);
      process.kill(victim.runtime.pid, 'SIGKILL');

      const checks: Tally = emptyTally();
      try {
        await waitFor('the killed run\'s shell to be reaped', async () => !alive(shell), 15_000);
      } catch {
        unreaped++;
        checks.failures.push(`${executionId}/${id}: the first run's shell ${shell} outlived its agent by 15 s`);
      }
      ctx.ledger.openGate(id);
      const tally = await tallyExecution(ctx, executionId, 'SUCCEEDED', [{
        taskId: id,
        status: 'completed',
        attempts: 2,
        commits: 1,
        checks: [
          (task) => (task.agentId !== victim.agentId ? undefined : `completed by the killed agent ${victim.agentId}`),
          (_task, entry) => (entry.commits.join(',') === '2' ? undefined : `committed by attempts [${entry.commits.join(',')}], expected [2]`),
        ],
      }], 60_000);
      addTally(addTally(total, tally), checks);
    }
    return { ...total, notes: `one task per trial; ${ctx.trials - unreaped}/${ctx.trials} killed runs reaped before the gate opened` };
  },
};
