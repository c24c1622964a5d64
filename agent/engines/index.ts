// The engines after a task's driver, in order: code generation checks, the test run, the review
// verdict, then coverage (which reads the report the test run wrote). Each one applies to a
// completed result only, so the first failure is the task's.
import { enginesFor } from '../../core/engines/index.ts';
import type { Task } from '../../core/plan.ts';
import type { DriverResult } from '../drivers/types.ts';
import { applyCodegen } from './codegen.ts';
import type { EngineContext } from './context.ts';
import { applyCoverage } from './coverage.ts';
import { applyReview } from './review.ts';
import { applyTests } from './testgen.ts';

export type { EngineContext } from './context.ts';

/** Never throws for the task's own problems: they are results. */
export async function applyEngines(task: Task, workspace: string, result: DriverResult, ctx: EngineContext & { input?: Record<string, unknown> }): Promise<DriverResult> {
  const engines = enginesFor(task);
  const driven = result;
  if (engines.codegen) result = await applyCodegen(task, engines.codegen, workspace, result, ctx);
  if (engines.tests) result = await applyTests(task, engines.tests, workspace, result, ctx);
  if (engines.review) result = applyReview(engines.review, ctx.input ?? {}, result);
  return engineSourced(driven, await applyCoverage(task, workspace, result));
}

/** A failure the engines made of a result (a gate, a check) says so: its source is `engine`. */
function engineSourced(before: DriverResult, after: DriverResult): DriverResult {
  if (after.status !== 'failed' || after.error.source) return after;
  return { ...after, error: { ...after.error, source: before.status === 'failed' ? before.error.source ?? 'engine' : 'engine' } };
}
