// A TaskBatch whose every task uses all its retries stays under AWS's 25,000 history events (issue 8
// scope 6: a batch's size follows a measured worst case). Each trial builds 1,000-task plans of
// several recovery shapes, lets Prepare cut them (core/patterns.ts prepareBatches, from each task's
// retryBudget), and runs the batch with the most worst-case events on the local Step Functions service
// with stand-in steps and agents (test/support/task-batch-history.ts): every dispatch fails and Recover
// grants the task's whole budget, so each task is dispatched 1 + retryBudget times. The shapes of a
// trial: the defaults, 2 retries of each type, 20 retries of one type (drawn), a fallback agent type on
// an error type (drawn), onOpen "wait" (with 0-5 dependency retries, drawn), and a plan whose tasks'
// shapes are drawn one by one. onOpen "wait" loops are run as whole retries (with a Dispatch), which
// costs more history than the real wait loop: the measure errs on the safe side.
//   lost:    a task of a batch that did not SUCCEED (a history at the cap fails it), or dispatched
//            fewer times than its budget allows;
//   doubled: dispatched more times than its budget allows.
// The history must stay within the cap less HISTORY_EVENTS.margin, the room Prepare keeps for the
// steps' own Lambda retries.
import { AGENT_TYPES } from '#core/agent-types.ts';
import { ERROR_TYPES, type ErrorType } from '#core/errors.ts';
import { HISTORY_EVENTS, prepareBatches, retryBudget, stageLayout, worstCaseTaskEvents } from '#core/patterns.ts';
import { parsePlan, planTasks } from '#core/plan.ts';
import { type BatchRun, runBatch } from '../../support/task-batch-history.ts';
import { type Tally, addTally, emptyTally } from '../account.ts';
import { between, runSeed, seededRandom } from '../random.ts';
import { type ReliabilityCase, eachTrial } from '../suite.ts';

const PLAN_TASKS = 1000;
const TASK_TYPE = 'coder';
/** Error types a task can retry (permanent and validation take retries only when a plan asks). */
const RETRIED: ErrorType[] = ['transient', 'timeout', 'resource', 'dependency'];

type Recovery = Record<string, object> | undefined;

interface Shape {
  name: string;
  /** The recovery of task i. */
  recovery(i: number): Recovery;
}

const everyType = (maxRetries: number) => Object.fromEntries(ERROR_TYPES.map((t) => [t, { maxRetries }]));

function uniformShapes(random: () => number): Shape[] {
  const many = ERROR_TYPES[between(random, 0, ERROR_TYPES.length - 1)]!;
  const carrier = RETRIED[between(random, 0, RETRIED.length - 1)]!;
  // Another type than the tasks' own (coder): a plan may not fall back to the type that failed.
  const others = AGENT_TYPES.filter((t) => t !== TASK_TYPE);
  const fallbackType = others[between(random, 0, others.length - 1)]!;
  const dependencyRetries = between(random, 0, 5);
  return [
    { name: 'defaults', recovery: () => undefined },
    { name: '2-each', recovery: () => everyType(2) },
    { name: `20-${many}`, recovery: () => ({ [many]: { maxRetries: 20 } }) },
    { name: `fallback-on-${carrier}`, recovery: () => ({ [carrier]: { fallback: { action: 'agent-type', agentType: fallbackType } } }) },
    { name: `onOpen-wait`, recovery: () => ({ dependency: { maxRetries: dependencyRetries, onOpen: 'wait' } }) },
  ];
}

/** Tasks of all the uniform shapes and more, drawn per task. */
function mixedShape(random: () => number): Shape {
  const choices = [...uniformShapes(random), { name: '20-each', recovery: () => everyType(20) }, { name: 'none', recovery: () => everyType(0) }];
  const drawn = Array.from({ length: PLAN_TASKS }, () => choices[between(random, 0, choices.length - 1)]!.recovery(0));
  return { name: 'mixed', recovery: (i) => drawn[i] };
}

/** The batch of a 1,000-task parallel plan of `shape` that Prepare gives the most worst-case events: its tasks' budgets. */
function largestBatch(shape: Shape): number[] {
  // Parsed as a user's plan is, so each shape is one the API accepts.
  const plan = parsePlan({
    pattern: 'parallel',
    maxConcurrency: 40,
    tasks: Array.from({ length: PLAN_TASKS }, (_, i) => ({ id: `t${i}`, agentType: TASK_TYPE, command: 'true', recovery: shape.recovery(i) })),
  });
  const tasks = planTasks(plan).map(({ task }, index) => ({ index, recovery: task.recovery }));
  const prepared = prepareBatches({ executionId: 'e', pattern: 'parallel', maxConcurrency: 40, taskCount: PLAN_TASKS, stages: stageLayout('parallel', [{ name: '', count: PLAN_TASKS }]) }, tasks);
  if (!('batches' in prepared)) throw new Error('a parallel plan is prepared as batches');
  const cost = (b: { from: number; to: number }) => tasks.slice(b.from, b.to).reduce((sum, t) => sum + worstCaseTaskEvents(t), 0);
  const worst = prepared.batches.reduce((a, b) => (cost(b) > cost(a) ? b : a));
  return tasks.slice(worst.from, worst.to).map((t) => retryBudget(t));
}

/** Runs the batch with every task failing and using its whole budget; tallies it and answers its event count. */
async function measure(shape: Shape): Promise<Tally & { events: number; size: number }> {
  const budgets = largestBatch(shape);
  const run: BatchRun = { count: budgets.length, fails: () => true, retries: (i) => budgets[i]! };
  const { status, types, dispatches } = await runBatch(run);
  const tally: Tally & { events: number; size: number } = { tasks: budgets.length, lost: 0, doubled: 0, failures: [], events: types.length, size: budgets.length };
  const where = `${shape.name} (${budgets.length} tasks)`;
  budgets.forEach((budget, i) => {
    const sent = dispatches.get(i) ?? 0;
    if (status !== 'SUCCEEDED' || sent < budget + 1) tally.lost++;
    else if (sent > budget + 1) tally.doubled++;
  });
  if (status !== 'SUCCEEDED') tally.failures.push(`${where}: the batch ended ${status} after ${types.length} events`);
  if (tally.lost || tally.doubled) tally.failures.push(`${where}: ${tally.lost} tasks dispatched fewer times than 1 + their budget, ${tally.doubled} more`);
  // Prepare fills a batch up to this (BATCH_TASK_EVENT_BUDGET plus the batch's own events): reaching
  // it exactly is a batch cut as tight as allowed, which the mixed plans often are.
  const ceiling = HISTORY_EVENTS.limit - HISTORY_EVENTS.margin;
  if (types.length > ceiling) tally.failures.push(`${where}: ${types.length} history events, over ${ceiling} (the cap less the steps' margin)`);
  return tally;
}

export const batchHistory: ReliabilityCase = {
  name: 'batch-history',
  cheap: false,
  trials: (mode) => (mode === 'full' ? 20 : 1),
  async run(ctx) {
    const seed = runSeed();
    const random = seededRandom(seed);
    /** Per shape: the largest batch and its most events. */
    const peaks = new Map<string, { size: number; events: number }>();
    const total = await eachTrial(ctx, async (trial) => {
      const tally = emptyTally();
      for (const shape of [...uniformShapes(random), mixedShape(random)]) {
        const began = Date.now();
        const r = await measure(shape);
        ctx.log(`trial ${trial}: ${shape.name}: ${r.size} tasks, ${r.events} events, ${((Date.now() - began) / 1000).toFixed(1)} s`);
        const key = shape.name.replace(/^20-.*/, '20-of-one-type').replace(/^fallback-on-.*/, 'fallback');
        const peak = peaks.get(key);
        if (!peak || r.events > peak.events) peaks.set(key, { size: r.size, events: r.events });
        addTally(tally, r);
      }
      return tally;
    });
    const peakNotes = [...peaks].map(([name, p]) => `${name} ${p.size} tasks ${p.events.toLocaleString('en')} events`).join('; ');
    return { ...total, notes: `seed ${seed}; peak per shape: ${peakNotes} (cap ${HISTORY_EVENTS.limit.toLocaleString('en')})` };
  },
};
