// A worker frozen with SIGSTOP mid-task: its first run blocks on a gate; the case freezes the worker
// running it just after one of its heartbeats, so its lease runs out (two thirds of the heartbeat
// span) before it is declared dead (the whole span). The task must be claimed and completed by
// another agent; then the worker is thawed (SIGCONT). The thawed worker must find its claim lost,
// kill its run and record nothing: the gate opens only after the first run's shell is gone, so a
// run that went on would commit a second time, and a report would show as a second completion.
// What the layer cannot fence: SIGSTOP freezes the worker, not its command (a process group of its
// own), so a command that commits an outside side effect while its worker is frozen commits it again
// when the task reruns elsewhere. That is why the gate stays closed until after the thaw.
import { alive } from '../../support/processes.ts';
import { waitFor } from '../../e2e/harness.ts';
import { type Tally, addTally, emptyTally } from '../account.ts';
import { type ReliabilityCase, agentRecord, eachTrial, finishesOf, startedShell, submit, tallyExecution, taskWhen, trialTaskId } from '../suite.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const TYPE = 'tester';

/** The "claim lost" lines an agent wrote to the agents' log for an execution. */
function claimsLost(stateDir: string, agentId: string, executionId: string): number {
  const log = readFileSync(join(stateDir, 'agents.log'), 'utf8');
  return log.split('\n').filter((l) => l.includes('claim lost') && l.includes(`"agentId":"${agentId}"`) && l.includes(executionId)).length;
}

export const agentFrozen: ReliabilityCase = {
  name: 'agent-frozen',
  cheap: false,
  breaker: { failureThreshold: 1_000_000 },
  agentType: TYPE,
  trials: (mode) => (mode === 'full' ? 20 : 3),
  async run(ctx) {
    let thawedAlive = 0;
    let stoppedItself = 0;
    const total = await eachTrial(ctx, async (trial) => {
      await ctx.agents(2);
      const id = trialTaskId(trial);
      const command = ctx.ledger.command(id, `if [ "$XL_ATTEMPT" = 1 ]; then ${ctx.ledger.waitForGate(id)}; fi`);
      const executionId = await submit(ctx.layer, { pattern: 'sequential', tasks: [{ id, agentType: TYPE, command }] });
      const shell = await startedShell(ctx.ledger, id, 1);
      const running = await taskWhen(ctx.layer, executionId, id, 'the task to run', (t) => t.status === 'running' && t.agentId);
      const frozen = await agentRecord(ctx.layer, running.agentId);
      // Just after a heartbeat: the most time between the lease running out and the agent counting as dead.
      await waitFor('a heartbeat of the agent', async () => (await agentRecord(ctx.layer, frozen.agentId)).lastHeartbeatAt !== frozen.lastHeartbeatAt, 15_000);
      process.kill(frozen.runtime.pid, 'SIGSTOP');
      const checks: Tally = emptyTally();
      try {
        await taskWhen(ctx.layer, executionId, id, 'another agent to claim the task', (t) => t.attempts >= 2 && t.agentId !== frozen.agentId, 30_000);
      } finally {
        // On a loaded machine the health monitor may declare the frozen agent dead first, and the
        // pool kill it: then this trial is a death, not a thaw (the notes count them), and is tallied all the same.
        try {
          if (alive(frozen.runtime.pid)) {
            process.kill(frozen.runtime.pid, 'SIGCONT');
            thawedAlive++;
          }
        } catch {
          // killed between the look and the signal
        }
      }
      try {
        await waitFor('the thawed agent to kill its lost run', async () => !alive(shell), 15_000);
      } catch {
        checks.failures.push(`${executionId}/${id}: the first run's shell ${shell} still runs 15 s after its agent was thawed`);
      }
      ctx.ledger.openGate(id);
      const tally = await tallyExecution(ctx, executionId, 'SUCCEEDED', [{
        taskId: id,
        status: 'completed',
        attempts: 2,
        commits: 1,
        checks: [
          (task) => (task.agentId !== frozen.agentId ? undefined : `completed by the frozen agent ${frozen.agentId}`),
          (_task, entry) => (entry.commits.join(',') === '2' ? undefined : `committed by attempts [${entry.commits.join(',')}], expected [2]`),
        ],
      }], 60_000);
      // The thawed agent records no end of its run (a lost claim is not reported).
      const byFrozen = (finishesOf(ctx.layer).get(`${executionId}/${id}`) ?? []).filter((f) => f.attempt === 1);
      if (byFrozen.length) checks.failures.push(`${executionId}/${id}: the thawed agent recorded attempt 1 as ${byFrozen.map((f) => f.status).join(', ')}`);
      if (claimsLost(ctx.layer.stateDir, frozen.agentId, executionId)) stoppedItself++;
      return addTally(tally, checks);
    });
    if (thawedAlive === 0) total.failures.push('no trial thawed a live agent: every frozen agent was declared dead and killed first, so the case tested nothing of a thaw');
    return { ...total, notes: `one task per trial; ${thawedAlive}/${ctx.trials} agents thawed alive, ${stoppedItself} of them killed their lost run themselves` };
  },
};
