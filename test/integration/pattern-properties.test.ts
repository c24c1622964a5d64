// Property tests of the three patterns' semantics (CONTRACT.md "Semantics", README "Recovery") over
// generated plans: the state machines the CDK app synthesizes, run by the local Step Functions
// service with the real steps handler, records and queues, and fake agents that follow each task's
// script (test/support/pattern-rig.ts). Each run is checked against the GET /executions/{id} view
// (ExecutionService.describe) and the agents' timeline.
//
// XL_FC_RUNS sets the runs per pattern (default 8), XL_FC_SEED replays a reported seed. Measured on
// the 2-core machine: synthesis 5-9 s, a plan about 130 ms (up to ~650 ms); the default takes about
// 17 s in all, XL_FC_RUNS=100 (300 plans) about 50 s.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorType } from '#core/errors.ts';
import type { ExecutionView, TaskResult } from '#core/executions.ts';
import type { PlanInput } from '#core/plan.ts';
import { type AttemptScript, type PatternRig, type Run, startPatternRig } from '../support/pattern-rig.ts';

function wholeNumber(name: string, fallback?: number): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw)) throw new Error(`${name} must be a whole number, got "${raw}"`);
  return Number(raw);
}
const RUNS = wholeNumber('XL_FC_RUNS', 8)!;
const SEED = wholeNumber('XL_FC_SEED');
if (RUNS < 1) throw new Error(`XL_FC_RUNS must be at least 1, got ${RUNS}`);
const AGENT_TYPES = ['coder', 'tester'] as const;

let rig: PatternRig;
const runMs: number[] = [];
/** Parallel plans with room for maxConcurrency > 1 tasks at once, and how many reached it: shows the bound is exercised. */
const bound = { reached: 0, plans: 0 };

beforeAll(async () => {
  rig = await startPatternRig({ agentTypes: AGENT_TYPES });
});
afterAll(async () => {
  await rig?.close();
  if (runMs.length) {
    const mean = runMs.reduce((a, b) => a + b, 0) / runMs.length;
    console.info(
      `pattern properties: synth ${Math.round(rig.synthMs)} ms; ${runMs.length} plans, ${Math.round(mean)} ms each on average, ${Math.round(Math.max(...runMs))} ms at most; ` +
        `parallel plans that reached maxConcurrency > 1: ${bound.reached} of ${bound.plans}`,
    );
  }
});

// ---- generated plans ----------------------------------------------------------------------------

/** What a task's script does, and the recovery that goes with it. */
type Kind =
  | 'ok' // completes
  | 'permanent' // fails for good
  | 'transient-then-ok' // a transient failure, then success on the retry
  | 'transient-exhausted' // transient failures until its retries are spent
  | 'default-output' // fails; its fallback completes it with a default output
  | 'skip-fallback' // fails; its fallback skips it
  | 'fail-execution'; // fails; its escalation ends the execution

interface TaskSpec {
  kind: Kind;
  failureStrategy: 'stop' | 'continue';
  agentType: (typeof AGENT_TYPES)[number];
  priority: 'high' | 'normal' | 'low';
  /** Of each attempt, ms. */
  delays: number[];
  output: Record<string, unknown>;
  defaultOutput: Record<string, unknown>;
  /** The recovery's maxRetries for transient failures. */
  retries: number;
  /** Its failure waits until the run is stopping (plain tests only). */
  afterStopping?: boolean;
}

interface PlanShape {
  pattern: 'sequential' | 'parallel' | 'pipeline';
  input: Record<string, number>;
  maxConcurrency: number;
  /** One stage for sequential and parallel plans. */
  stages: TaskSpec[][];
}

// Few keys, so that outputs overwrite each other and the order of the merge shows.
const smallObject = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer({ min: 0, max: 999 }), { maxKeys: 3 });

const kind: fc.Arbitrary<Kind> = fc.oneof(
  { weight: 14, arbitrary: fc.constant('ok' as const) },
  { weight: 2, arbitrary: fc.constant('permanent' as const) },
  { weight: 2, arbitrary: fc.constant('transient-then-ok' as const) },
  { weight: 1, arbitrary: fc.constant('transient-exhausted' as const) },
  { weight: 1, arbitrary: fc.constant('default-output' as const) },
  { weight: 1, arbitrary: fc.constant('skip-fallback' as const) },
  { weight: 1, arbitrary: fc.constant('fail-execution' as const) },
);

const taskSpec: fc.Arbitrary<TaskSpec> = fc.record({
  kind,
  failureStrategy: fc.constantFrom('stop' as const, 'continue' as const),
  agentType: fc.constantFrom(...AGENT_TYPES),
  priority: fc.constantFrom('high' as const, 'normal' as const, 'low' as const),
  delays: fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 3, maxLength: 3 }),
  output: smallObject,
  defaultOutput: smallObject,
  retries: fc.integer({ min: 0, max: 2 }),
});

const flatPlan = (pattern: 'sequential' | 'parallel') =>
  fc.record({
    pattern: fc.constant(pattern),
    input: smallObject,
    maxConcurrency: fc.integer({ min: 1, max: 5 }),
    stages: fc.array(taskSpec, { minLength: 1, maxLength: 12 }).map((tasks) => [tasks]),
  });
const pipelinePlan = fc.record({
  pattern: fc.constant('pipeline' as const),
  input: smallObject,
  maxConcurrency: fc.constant(1),
  stages: fc.array(fc.array(taskSpec, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }),
});

const ZERO_BACKOFF = { strategy: 'fixed', baseSeconds: 0, capSeconds: 0, jitter: 'none' } as const;
const PERMANENT = { type: 'permanent' as ErrorType, source: 'command' as const, message: 'scripted permanent failure' };
const TRANSIENT = { type: 'transient' as ErrorType, source: 'command' as const, message: 'scripted transient failure' };

/** Retries of a transient-then-ok task: at least one, or it could not succeed. */
const transientRetries = (s: TaskSpec) => (s.kind === 'transient-then-ok' ? Math.max(1, s.retries) : s.retries);

/** The plan's task and the agents' script for it. */
function planTask(s: TaskSpec, id: string): { task: Record<string, unknown>; script: AttemptScript[] } {
  const base = { id, agentType: s.agentType, priority: s.priority, command: 'true', failureStrategy: s.failureStrategy };
  const ok = (i: number): AttemptScript => ({ delayMs: s.delays[i]!, complete: s.output });
  const fail = (i: number, error = PERMANENT): AttemptScript => ({ delayMs: s.delays[i]!, fail: error, ...(s.afterStopping ? { afterStopping: true } : {}) });
  const transient = { transient: { maxRetries: transientRetries(s), backoff: ZERO_BACKOFF } };
  switch (s.kind) {
    case 'ok':
      return { task: base, script: [ok(0)] };
    case 'permanent':
      return { task: base, script: [fail(0)] };
    case 'transient-then-ok':
      return { task: { ...base, recovery: transient }, script: [fail(0, TRANSIENT), ok(1)] };
    case 'transient-exhausted':
      return { task: { ...base, recovery: transient }, script: Array.from({ length: s.retries + 1 }, (_, i) => fail(i, TRANSIENT)) };
    case 'default-output':
      return { task: { ...base, recovery: { permanent: { fallback: { action: 'default-output', output: s.defaultOutput } } } }, script: [fail(0)] };
    case 'skip-fallback':
      return { task: { ...base, recovery: { permanent: { fallback: { action: 'skip', reason: 'best effort' } } } }, script: [fail(0)] };
    case 'fail-execution':
      return { task: { ...base, recovery: { permanent: { escalation: 'fail-execution' } } }, script: [fail(0)] };
  }
}

/** What a task ends as when nothing stops it first. */
function expectedEnd(s: TaskSpec): { status: TaskResult['status']; attempts: number; output?: Record<string, unknown>; errorType?: ErrorType } {
  switch (s.kind) {
    case 'ok':
      return { status: 'completed', attempts: 1, output: s.output };
    case 'transient-then-ok':
      return { status: 'completed', attempts: 2, output: s.output };
    case 'transient-exhausted':
      return { status: 'failed', attempts: s.retries + 1, errorType: 'transient' };
    case 'default-output':
      return { status: 'completed', attempts: 1, output: s.defaultOutput };
    case 'skip-fallback':
      return { status: 'skipped', attempts: 1 };
    case 'permanent':
    case 'fail-execution':
      return { status: 'failed', attempts: 1, errorType: 'permanent' };
  }
}

/** The task ends the run when it fails for good: its failureStrategy is "stop", or it escalates to fail-execution. */
const stops = (s: TaskSpec) => expectedEnd(s).status === 'failed' && (s.failureStrategy === 'stop' || s.kind === 'fail-execution');

// ---- running one plan ---------------------------------------------------------------------------

interface Observed {
  shape: PlanShape;
  specs: TaskSpec[];
  ids: string[];
  stageOf: number[];
  view: ExecutionView;
  /** Per task index, its claims in time order. */
  runsOf: Run[][];
  runs: Run[];
  /** The Recover call that settled each task: when it was called and when it returned (ms, process clock). */
  settled: Map<number, { calledAt: number; at: number }>;
}

let planCount = 0;

/** `promise`, or an error saying `what` when it takes longer than `ms`. */
async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function runPlan(shape: PlanShape): Promise<Observed> {
  const started = performance.now();
  const prefix = `p${++planCount}`;
  const specs = shape.stages.flat();
  const stageOf = shape.stages.flatMap((tasks, k) => tasks.map(() => k));
  const built = specs.map((s, i) => planTask(s, `${prefix}-t${i}`));
  built.forEach(({ task, script }) => rig.agents.script(task.id as string, script));
  const tasks = built.map((b) => b.task);
  let start = 0;
  const stages = shape.stages.map((st, k) => ({ name: `stage-${k}`, tasks: tasks.slice(start, (start += st.length)) }));
  const plan =
    shape.pattern === 'pipeline'
      ? { pattern: 'pipeline', input: shape.input, stages }
      : shape.pattern === 'parallel'
        ? { pattern: 'parallel', input: shape.input, maxConcurrency: shape.maxConcurrency, tasks }
        : { pattern: 'sequential', input: shape.input, tasks };

  const { executionId } = await rig.service.submit(plan as PlanInput);
  await within(20_000, rig.ended(executionId), `execution ${executionId} of ${JSON.stringify(plan)} did not end`);
  const view = await rig.service.describe(executionId);
  const runs = rig.agents.runs.filter((r) => r.executionId === executionId).sort((a, b) => a.claimCalledAt - b.claimCalledAt);
  const settled = new Map(rig.recovered.filter((r) => r.executionId === executionId).map((r) => [r.taskIndex, r]));
  runMs.push(performance.now() - started);
  expect(rig.agents.anomalies).toEqual([]);
  return { shape, specs, ids: built.map((b) => b.task.id as string), stageOf, view, runs, runsOf: specs.map((_, i) => runs.filter((r) => r.index === i)), settled };
}

// ---- properties every pattern has ---------------------------------------------------------------

/** Every task ends once, as its script and recovery say, run at most once per dispatch, attempts as claimed. */
function checkEveryTask(o: Observed): void {
  const { view, specs } = o;
  // Results in plan order.
  expect(view.tasks.map((t) => t.taskId)).toEqual(o.ids);
  const anyStop = specs.some(stops);
  // SUCCEEDED exactly when no task fails for good with "stop" (or escalates to fail-execution).
  expect(view.status).toBe(anyStop ? 'FAILED' : 'SUCCEEDED');
  const escalates = specs.some((s) => s.kind === 'fail-execution');

  specs.forEach((spec, i) => {
    const t = view.tasks[i]!;
    const runs = o.runsOf[i]!;
    const end = expectedEnd(spec);
    const where = `task ${i} (${spec.kind}, ${spec.failureStrategy}): ${JSON.stringify(t)}`;
    expect(['completed', 'failed', 'skipped'], where).toContain(t.status);
    expect(t.attempts, where).toBe(runs.length);
    expect(runs.map((r) => r.attempt), where).toEqual(runs.map((_, k) => k + 1));
    // One claim per dispatch, and at most one run completed.
    expect(new Set(runs.map((r) => r.dispatchSeq)).size, where).toBe(runs.length);
    expect(runs.filter((r) => r.result === 'completed').length, where).toBeLessThanOrEqual(1);
    expect(runs.length, where).toBeLessThanOrEqual(end.attempts);
    if (!anyStop) expect(runs.length, where).toBe(end.attempts);

    if (runs.length === 0) {
      // Never claimed: only a stop skips a task before it runs.
      expect(t.status, where).toBe('skipped');
      expect(anyStop, where).toBe(true);
      return;
    }
    expect(t.attemptLog?.length, where).toBe(runs.length);
    // Every attempt but the last one failed transiently, and was retried.
    for (const r of runs.slice(0, -1)) expect(r.result, where).toBe('failed');
    const last = runs.at(-1)!;
    if (last.result === 'lost') {
      // Cancelled while it ran: only an escalation to fail-execution does that.
      expect(escalates, where).toBe(true);
      expect(t.status, where).toBe('failed');
      expect(t.error?.message, where).toMatch(/^cancelled: .*fail-execution/);
    } else if (last.result === 'completed') {
      expect(t.status, where).toBe('completed');
      expect(t.output, where).toEqual(spec.output);
    } else if (runs.length < end.attempts) {
      // Retries cut short by a stop: it fails when the stop comes while an attempt runs, and is
      // skipped (as unclaimed) when it comes while the task waits for its next attempt.
      expect(anyStop, where).toBe(true);
      expect(t.error?.type, where).toBe('transient');
      expect(['failed', 'skipped'], where).toContain(t.status);
      if (t.status === 'skipped') expect(t.skipReason, where).toMatch(/failureStrategy "stop"|fail-execution/);
    } else if (fallsBack(spec) && t.status === 'failed') {
      // Its failure came after the run began stopping: a stopping run takes no recovery, not even a
      // fallback that runs nothing (the contract leaves this open: see the test at the end).
      expect(stopAt(o, 'calledAt'), where).toBeLessThan(o.settled.get(i)!.at);
      expect(t.error?.type, where).toBe('permanent');
      expect(t.attemptLog?.at(-1)?.next, where).toBe('none');
    } else {
      expect(t.status, where).toBe(end.status);
      if (end.status === 'failed') expect(t.error?.type, where).toBe(end.errorType);
      if (spec.kind === 'default-output') {
        expect(t, where).toMatchObject({ output: spec.defaultOutput, recoveredBy: { action: 'default-output', error: { type: 'permanent' } } });
        expect(t.output, where).toEqual(spec.defaultOutput);
      }
      if (spec.kind === 'skip-fallback') expect(t, where).toMatchObject({ skipReason: 'best effort', recoveredBy: { action: 'skip' } });
    }
  });
}

const fallsBack = (s: TaskSpec) => s.kind === 'default-output' || s.kind === 'skip-fallback';

/**
 * Bounds of when the run began stopping (Infinity when it did not): the first stopping task's
 * Recover marks the run stopping after it was called (`calledAt`) and before it returns (`at`).
 */
function stopAt(o: Observed, bound: 'calledAt' | 'at'): number {
  const times = o.view.tasks
    .map((t, i) => (t.status === 'failed' && stops(o.specs[i]!) ? o.settled.get(i)?.[bound] : undefined))
    .filter((at): at is number => at !== undefined);
  return Math.min(Infinity, ...times);
}

/** Once the first task that stops the run has settled, no further claim succeeds. */
function checkNothingStartsAfterAStop(o: Observed): void {
  const at = stopAt(o, 'at');
  const late = o.runs.filter((r) => r.claimCalledAt > at);
  expect(late, 'tasks claimed after the run stopped').toEqual([]);
}

const property = (arb: fc.Arbitrary<PlanShape>, check: (o: Observed) => void) =>
  fc.assert(
    fc.asyncProperty(arb, async (shape) => check(await runPlan(shape))),
    { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) },
  );
/** The test's timeout: room for shrinking a failure, and for slow runs on a busy machine. */
const timeout = (perRunMs: number) => 60_000 + RUNS * perRunMs;

// ---- the patterns -------------------------------------------------------------------------------

describe('pattern semantics over generated plans', () => {
  it('sequential: tasks run one at a time in plan order; a "stop" failure skips the rest; "continue" goes on', async () => {
    await property(flatPlan('sequential'), (o) => {
      checkEveryTask(o);
      // Each attempt is claimed after the previous one ended, in plan order (retries in place).
      o.runs.forEach((r, k) => {
        if (k === 0) return;
        const before = o.runs[k - 1]!;
        expect(r.index).toBeGreaterThanOrEqual(before.index);
        expect(r.claimCalledAt).toBeGreaterThan(before.finishedAt!);
      });
      // The whole outcome is fixed by the scripts: everything up to the first stopper runs, the rest is skipped.
      const firstStop = o.specs.findIndex(stops);
      o.specs.forEach((spec, i) => {
        const t = o.view.tasks[i]!;
        if (firstStop === -1 || i <= firstStop) {
          expect(t).toMatchObject({ status: expectedEnd(spec).status, attempts: expectedEnd(spec).attempts });
        } else {
          expect(t).toMatchObject({ status: 'skipped', attempts: 0 });
          expect(t.skipReason).toMatch(/failureStrategy "stop"|fail-execution/);
        }
      });
      checkNothingStartsAfterAStop(o);
    });
  }, timeout(3000));

  it('parallel: at most maxConcurrency tasks run at once, results in plan order, unclaimed tasks skipped after a stop', async () => {
    await property(flatPlan('parallel'), (o) => {
      checkEveryTask(o);
      // Running = from the claim until the agent records its end: never more than maxConcurrency at once.
      const edges = o.runs.flatMap((r) => [
        { at: r.claimedAt, d: 1 },
        { at: r.finishCalledAt!, d: -1 },
      ]);
      edges.sort((a, b) => a.at - b.at || a.d - b.d);
      let running = 0;
      let most = 0;
      for (const e of edges) most = Math.max(most, (running += e.d));
      expect(most).toBeLessThanOrEqual(o.shape.maxConcurrency);
      if (o.shape.maxConcurrency > 1 && o.specs.length >= o.shape.maxConcurrency) {
        bound.plans++;
        if (most === o.shape.maxConcurrency) bound.reached++;
      }
      // Claimed tasks finish and are reported (checkEveryTask); only an escalation cancels one.
      if (!o.specs.some((s) => s.kind === 'fail-execution')) expect(o.runs.filter((r) => r.result === 'lost')).toEqual([]);
      checkNothingStartsAfterAStop(o);
    });
  }, timeout(3000));

  it('pipeline: stages in order, each task gets data = input + earlier stages\' outputs, and the result says how it ended', async () => {
    await property(pipelinePlan, (o) => {
      checkEveryTask(o);
      const { view, stageOf, shape } = o;
      // No task of a stage starts before every task of the stages before it ended.
      for (const r of o.runs) {
        for (const before of o.runs.filter((b) => stageOf[b.index]! < stageOf[r.index]!)) {
          expect(r.claimCalledAt).toBeGreaterThan(before.finishedAt!);
        }
      }
      // data: the plan's input shallow-merged with the outputs of earlier stages' completed tasks, in task order.
      const dataBefore = (stage: number) =>
        Object.assign({}, shape.input, ...view.tasks.filter((t, i) => stageOf[i]! < stage && t.status === 'completed').map((t) => t.output));
      for (const r of o.runs) expect(r.input, `input of task ${r.index} in stage ${stageOf[r.index]}`).toEqual(dataBefore(stageOf[r.index]!));
      // The result: completed with all the data, or failed at the stage that stopped, with the data so far.
      const stoppers = view.tasks.map((t, i) => (t.status === 'failed' && stops(o.specs[i]!) ? stageOf[i]! : undefined)).filter((k) => k !== undefined);
      if (view.status === 'SUCCEEDED') {
        expect(view.result).toEqual({ status: 'completed', data: dataBefore(shape.stages.length) });
      } else {
        const stage = Math.min(...stoppers);
        expect(new Set(stoppers)).toEqual(new Set([stage]));
        expect(view.result).toEqual({ status: 'failed', stage: `stage-${stage}`, data: dataBefore(stage + 1) });
        // Later stages never start.
        expect(o.runs.filter((r) => stageOf[r.index]! > stage)).toEqual([]);
      }
      checkNothingStartsAfterAStop(o);
    });
  }, timeout(3000));
});

// Found by the parallel property (seed -1861587058, shrunk to: parallel, maxConcurrency 2,
// [permanent "stop", default-output "stop" failing 5 ms later, ok]). Once a run is stopping, Recover
// takes no recovery at all, so a fallback that runs nothing (a default output, a skip) is not taken
// either, and the same plan ends its task completed or failed depending on which failure is
// recovered first. The contract does not say which is right; this pins what the layer does now.
describe('a stop and a fallback', () => {
  const spec = (kind: Kind, failureStrategy: 'stop' | 'continue', delayMs: number): TaskSpec => ({
    kind,
    failureStrategy,
    agentType: 'coder',
    priority: 'normal',
    delays: [delayMs, 0, 0],
    output: {},
    defaultOutput: { verdict: 'unknown' },
    retries: 0,
  });

  it('a claimed task that fails after the run began stopping fails for good, without its default output', async () => {
    // The second task fails only once the first one's failure has made the run stop.
    const o = await runPlan({ pattern: 'parallel', input: {}, maxConcurrency: 2, stages: [[spec('permanent', 'stop', 0), { ...spec('default-output', 'continue', 0), afterStopping: true }]] });
    expect(o.view.status).toBe('FAILED');
    expect(o.runsOf[1]).toHaveLength(1);
    expect(o.view.tasks[1]).toMatchObject({ status: 'failed', attempts: 1, error: { type: 'permanent' }, attemptLog: [expect.objectContaining({ status: 'failed', next: 'none' })] });
    expect(o.view.tasks[1]!.output).toBeUndefined();
    expect(o.view.tasks[1]!.recoveredBy).toBeUndefined();
  });
});
