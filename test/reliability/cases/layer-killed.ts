// The local layer SIGKILLed mid-plan and started again on the same state dir (README "Resume"): the
// plan must finish, tasks that had completed must not start again, and no task may be lost or commit
// twice. Each trial draws k: the plan's tasks before k run through, the ones from k on wait on a gate,
// and the layer is killed once the record shows the first k completed and the ledger shows waiting
// as many tasks from k as the plan, k's batch or k's stage lets run. Their runs die with the layer before
// committing; after the restart the gate opens only once their shells are gone, so a run that outlived
// its layer would commit twice and show as doubled. The trials go round four plans: sequential,
// parallel, pipeline, and a parallel plan of 200 tasks (two batches of default tasks).
//
// Cost: a layer start dominates a trial (15-50 s on a loaded machine). The layer a trial restarts is
// the next trial's, on the same state dir, so a case of n trials starts the layer n + 1 times.
import { AGENT_TYPES } from '#core/agent-types.ts';
import { prepareBatches, stageLayout } from '#core/patterns.ts';
import { type Layer, waitFor } from '../../e2e/harness.ts';
import { alive } from '../../support/processes.ts';
import { type Expectation, type Tally, addTally, emptyTally } from '../account.ts';
import { between, runSeed, seededRandom } from '../random.ts';
import { type CaseContext, type ReliabilityCase, eachTrial, submit, tallyExecution, trialTaskId } from '../suite.ts';

const TYPE = 'coder';
const AGENTS = 2;
const SLOTS = 4;
const STAGE_SIZE = 3;

interface PlanKind {
  name: string;
  count: number;
  /** Tasks from index k on that run at once while the first k have completed and the rest wait on the gate. */
  running(k: number): number;
  plan(tasks: object[]): object;
  /** The range k is drawn from. */
  ks: [number, number];
}

/** Where the batch holding task k ends: a batch waits for all its tasks before the next starts. */
function batchEnd(count: number, maxConcurrency: number, k: number): number {
  const prepared = prepareBatches({ executionId: 'e', pattern: 'parallel', maxConcurrency, taskCount: count, stages: stageLayout('parallel', [{ name: '', count }]) });
  if (!('batches' in prepared)) throw new Error('a parallel plan is prepared as batches');
  return prepared.batches.find((b) => b.from <= k && k < b.to)!.to;
}

const parallel = (count: number, maxConcurrency: number): PlanKind => ({
  name: count > 100 ? `parallel-${count}` : 'parallel',
  count,
  running: (k) => Math.min(maxConcurrency, batchEnd(count, maxConcurrency, k) - k),
  plan: (tasks) => ({ pattern: 'parallel', maxConcurrency, tasks }),
  ks: [0, count - 1],
});

export const PLAN_KINDS: PlanKind[] = [
  { name: 'sequential', count: 6, running: () => 1, plan: (tasks) => ({ pattern: 'sequential', tasks }), ks: [0, 5] },
  parallel(12, 4),
  {
    name: 'pipeline',
    count: 4 * STAGE_SIZE,
    // A stage's tasks run together: from k to the end of k's stage.
    running: (k) => STAGE_SIZE - (k % STAGE_SIZE),
    plan: (tasks) => ({
      pattern: 'pipeline',
      input: { base: 1 },
      stages: Array.from({ length: tasks.length / STAGE_SIZE }, (_, s) => ({ name: `stage${s}`, tasks: tasks.slice(s * STAGE_SIZE, (s + 1) * STAGE_SIZE) })),
    }),
    ks: [0, 4 * STAGE_SIZE - 1],
  },
  // Map concurrency 8 = the two agents' slots: no task from k on can hold a slot a task before k needs.
  // 200 tasks of the default recovery are two batches (112 and 88: core/patterns.ts).
  parallel(200, AGENTS * SLOTS),
];

const ENV = {
  XL_POOL: AGENT_TYPES.map((t) => `${t}=${t === TYPE ? `${AGENTS}..${AGENTS}` : '0..0'}`).join(','),
  XL_MAX_CONCURRENT_TASKS: `${TYPE}=${SLOTS}`,
  // The agents' "task finished" lines, which the tally reads for completions recorded twice.
  XL_LOG_LEVEL: 'info',
  // The killed layer's workers die with it, or are killed by the next layer: deaths the fleet did not
  // cause, which would open the type's breaker after five.
  XL_BREAKER_POLICY: JSON.stringify({ [`agent:${TYPE}`]: { failureThreshold: 1_000_000 } }),
};

/** The record of an execution as GET /executions/{id} shows it. */
async function executionOf(layer: Layer, executionId: string): Promise<any> {
  return (await layer.request('GET', `/executions/${executionId}`)).body;
}

export const layerKilled: ReliabilityCase = {
  name: 'layer-killed',
  cheap: false,
  trials: (mode) => (mode === 'full' ? 20 : 2),
  async run(ctx: CaseContext) {
    const seed = runSeed();
    const random = seededRandom(seed);
    let layer = await ctx.startLayer(ENV);
    const stateDir = layer.stateDir;
    const draws: string[] = [];
    const restartSeconds: number[] = [];
    const trialSeconds: number[] = [];
    let rerun = 0;
    const total = await eachTrial(ctx, async (trial) => {
      const began = Date.now();
      // A trial that stopped between the kill and the restart left no layer up.
      if (layer.process.exitCode !== null || layer.process.signalCode !== null) layer = await ctx.startLayer(ENV, { stateDir });
      // Quick mode's two trials: a small plan and the large one.
      const kind = ctx.mode === 'quick' ? PLAN_KINDS[trial === 0 ? 0 : 3]! : PLAN_KINDS[trial % PLAN_KINDS.length]!;
      const k = between(random, ...kind.ks);
      draws.push(`${kind.name}@${k}`);
      const gate = `trial${trial}`;
      const ids = Array.from({ length: kind.count }, (_, i) => trialTaskId(trial, i));
      const tasks = ids.map((id, i) => ({ id, agentType: TYPE, command: ctx.ledger.command(id, i >= k ? ctx.ledger.waitForGate(gate) : ':') }));
      const executionId = await submit(layer, kind.plan(tasks));
      try {
        const running = kind.running(k);
        const held = ids.slice(k);
        await waitFor(`${kind.name} plan: the first ${k} tasks completed and ${running} waiting on the gate`, async () => {
          const ex = await executionOf(layer, executionId);
          const done = ids.slice(0, k).every((id) => ex.tasks?.find((t: any) => t.taskId === id)?.status === 'completed');
          return done && held.filter((id) => ctx.ledger.entry(id).starts.length > 0).length >= running;
        }, 180_000);
        const before = await executionOf(layer, executionId);
        const completedBefore = new Set<string>(before.tasks.filter((t: any) => t.status === 'completed').map((t: any) => t.taskId));
        const killedShells = held.flatMap((id) => ctx.ledger.entry(id).starts.map((s) => s.pid));

        await layer.kill();
        const restarting = Date.now();
        layer = await ctx.startLayer(ENV, { stateDir });
        restartSeconds.push((Date.now() - restarting) / 1000);

        const checks: Tally = emptyTally();
        try {
          await waitFor('the killed layer\'s runs to be gone', async () => killedShells.every((pid) => !alive(pid)), 60_000);
        } catch {
          checks.failures.push(`${executionId}: shells ${killedShells.filter((pid) => alive(pid)).join(', ')} outlived their layer by 60 s`);
        }
        ctx.ledger.openGate(gate);
        const expectations: Expectation[] = ids.map((taskId) => ({
          taskId,
          status: 'completed',
          commits: 1,
          checks: [
            // Completed before the kill: its recorded result is reused, never run again.
            (_task, entry) => (completedBefore.has(taskId) && entry.starts.length !== 1 ? `completed before the kill, yet started ${entry.starts.length} times` : undefined),
            // The record counts every run the ledger saw start, the one killed with the layer included.
            (task, entry) => (task.attempts === entry.starts.length ? undefined : `${task.attempts} attempts recorded, ${entry.starts.length} started`),
          ],
        }));
        const tally = await tallyExecution({ layer, ledger: ctx.ledger }, executionId, 'SUCCEEDED', expectations, 300_000);
        if (!tally.execution?.resumedAt) checks.failures.push(`${executionId}: no resumedAt: the execution was not resumed (workflowRun ${tally.execution?.workflowRun})`);
        if (kind.name === 'pipeline' && tally.execution?.result?.data?.base !== 1) checks.failures.push(`${executionId}: the pipeline's data lost its input: ${JSON.stringify(tally.execution?.result)}`);
        rerun += ids.filter((id) => ctx.ledger.entry(id).starts.length > 1).length;
        trialSeconds.push((Date.now() - began) / 1000);
        return addTally(tally, checks);
      } finally {
        ctx.ledger.openGate(gate); // a stopped trial's plan drains instead of holding the agents
      }
    });
    const mean = (xs: number[]) => (xs.length ? (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1) : '-');
    return {
      ...total,
      notes: `seed ${seed}; kinds@k: ${draws.join(' ')}; ${rerun} runs killed mid-command and run again; a trial ${mean(trialSeconds)} s, of which the restart ${mean(restartSeconds)} s`,
    };
  },
};
