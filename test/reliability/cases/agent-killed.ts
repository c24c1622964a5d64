// A worker SIGKILLed mid-task: its first run blocks on a gate; the case kills the worker running it
// (its pid from GET /agents `runtime.pid`). The layer must reap the run's processes, and the task
// must run again on another agent and complete once. The gate opens only after the first run's shell
// is gone, so a run that outlived its agent would commit a second time and show as doubled.
import { alive } from '../../support/processes.ts';
import { waitFor } from '../../e2e/harness.ts';
import { type Tally, addTally, emptyTally } from '../account.ts';
import { type ReliabilityCase, agentRecord, eachTrial, startedShell, submit, tallyExecution, taskWhen, trialTaskId } from '../suite.ts';

const TYPE = 'coder';
const BREAKER = `agent:${TYPE}`;

export const agentKilled: ReliabilityCase = {
  name: 'agent-killed',
  cheap: false,
  breaker: { failureThreshold: 1_000_000 },
  agentType: TYPE,
  trials: (mode) => (mode === 'full' ? 20 : 3),
  async run(ctx) {
    let unreaped = 0;
    let counted = 0;
    const total = await eachTrial(ctx, async (trial) => {
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
      // The pool replaces the dead agent, and each replaced agent counts against its type's breaker
      // (five in ten minutes open it: the design's escalation). Each trial is one death in a healthy
      // fleet, so the breaker is reset once this one is counted.
      await waitFor('the killed agent to be replaced', async () => (await agentRecord(ctx.layer, victim.agentId)).status === 'terminated', 30_000);
      const breaker = (await ctx.layer.request('GET', '/breakers')).body.items.find((b: any) => b.key === BREAKER);
      if (breaker?.failures > 0 || breaker?.state !== 'closed') counted++;
      const reset = await ctx.layer.request('POST', `/breakers/${BREAKER}/reset`);
      if (reset.status !== 200) throw new Error(`POST /breakers/${BREAKER}/reset: ${reset.status} ${JSON.stringify(reset.body)}`);
      return addTally(tally, checks);
    });
    return { ...total, notes: `one task per trial; ${ctx.trials - unreaped}/${ctx.trials} killed runs reaped before the gate opened; ${counted} deaths counted by the breaker (reset after each)` };
  },
};
