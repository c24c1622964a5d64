// A default output: each task's command fails for good (exit 3, permanent: no retries) and its
// recovery says `fallback: { action: "default-output", output }`. Expected: completed with that output
// and `recoveredBy` naming the failure, started once, nothing committed; the plan SUCCEEDS though its
// tasks are "stop" tasks. In pipelines, the next stage's task receives the default output in its data.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { type Expectation, type TaskCheck, addTally } from '../account.ts';
import { type ReliabilityCase, submit, tallyExecution, trialTaskId } from '../suite.ts';

const TYPE = 'logger';
const FAIL = 'echo "the log store refused the batch" >&2; exit 3';

const defaultOf = (taskId: string) => ({ logs: 'not collected', task: taskId });
const recovery = (taskId: string) => ({ permanent: { fallback: { action: 'default-output', output: defaultOf(taskId) } } });

const recovered: TaskCheck[] = [
  (task) => {
    const r = task.recoveredBy;
    return r?.action === 'default-output' && r.error?.type === 'permanent' && r.error?.source === 'command' && r.error?.message === 'the log store refused the batch'
      ? undefined
      : `recoveredBy ${JSON.stringify(r)}, expected default-output after the command's permanent failure`;
  },
  (task) => (task.error === undefined ? undefined : `completed with an error ${JSON.stringify(task.error)}`),
  (_task, entry) => (entry.starts.length === 1 ? undefined : `started ${entry.starts.length} times, expected once (permanent: no retry)`),
];

export const defaultOutput: ReliabilityCase = {
  name: 'default-output',
  cheap: true,
  breaker: { failureThreshold: 1_000_000 },
  agentType: TYPE,
  slots: 8,
  // Trials: the tasks of the parallel plan; a tenth as many pipelines beside it.
  trials: (mode) => (mode === 'full' ? 100 : 20),
  async run(ctx) {
    await ctx.agents(2);
    const ids = Array.from({ length: ctx.trials }, (_, i) => trialTaskId(i));
    const many = await submit(ctx.layer, {
      pattern: 'parallel',
      maxConcurrency: ctx.trials,
      tasks: ids.map((id) => ({ id, agentType: TYPE, command: ctx.ledger.command(id, FAIL), recovery: recovery(id) })),
    });
    // Pipelines: stage one's task fails into its default output; stage two's records the data it got
    // (beside its ledger) and its output says so.
    const pipelines = await Promise.all(Array.from({ length: Math.max(2, ctx.trials / 10) }, async (_, p) => {
      const [first, second] = [`p${p}-collect`, `p${p}-report`];
      const executionId = await submit(ctx.layer, {
        pattern: 'pipeline',
        input: { pipeline: p },
        stages: [
          { name: 'collect', tasks: [{ id: first, agentType: TYPE, command: ctx.ledger.command(first, FAIL), recovery: recovery(first) }] },
          { name: 'report', tasks: [{ id: second, agentType: TYPE, command: ctx.ledger.command(second, 'printf %s "$XL_INPUT" > "$L.input"') }] },
        ],
      });
      return { executionId, first, second, p };
    }));

    const tally = await tallyExecution(ctx, many, 'SUCCEEDED', ids.map((taskId): Expectation => ({ taskId, status: 'completed', attempts: 1, commits: 0, defaultOutput: defaultOf(taskId), checks: recovered })), 120_000 + ctx.trials * 2_000);
    for (const { executionId, first, second, p } of pipelines) {
      const data = { pipeline: p, ...defaultOf(first) };
      const received: TaskCheck = () => {
        const file = join(ctx.ledger.dir, `${second}.input`);
        const got = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
        return got !== undefined && isDeepStrictEqual(JSON.parse(got), data) ? undefined : `its input was ${got ?? 'never written'}, expected the data ${JSON.stringify(data)}`;
      };
      const one = await tallyExecution(ctx, executionId, 'SUCCEEDED', [
        { taskId: first, status: 'completed', attempts: 1, commits: 0, defaultOutput: defaultOf(first), checks: recovered },
        { taskId: second, status: 'completed', attempts: 1, commits: 1, checks: [received] },
      ], 60_000);
      // The pipeline's result carries the default output into its data, as the contract says.
      const result = one.execution.result;
      if (result?.status !== 'completed' || result?.data?.logs !== 'not collected') one.failures.push(`${executionId}: result ${JSON.stringify(result)}, expected completed data holding the default output`);
      addTally(tally, one);
    }
    const ms = Date.parse(tally.execution.stoppedAt) - Date.parse(tally.execution.startedAt);
    return { ...tally, notes: `${ctx.trials} tasks in one plan (${(ms / 1000).toFixed(1)} s) and ${pipelines.length} two-stage pipelines` };
  },
};
