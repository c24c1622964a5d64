// The test generation engine's agent part: after the task's run, the engine runs the framework
// itself in the workspace (as the task's user, through the command driver) with a machine-readable
// reporter, and parses the report (core/engines/testgen.ts) into the output's `tests`.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  REPORT_FILE,
  type TestResults,
  type TestSpec,
  describeTestFailures,
  parseTestReport,
  testCommand,
} from '../../core/engines/testgen.ts';
import type { Task } from '../../core/plan.ts';
import type { DriverResult } from '../drivers/types.ts';
import { type EngineContext, readWorkspaceFile, runScript, secondsLeft } from './context.ts';

/** Where a run writes its report ($XL_TEST_REPORT_DIR); removed after it is read. */
export const TEST_REPORT_DIR = '.xl-tests';

/** The report files a run left, by name (the texts, in name order); none when the folder is missing. */
async function reportTexts(workspace: string): Promise<string[]> {
  const dir = join(workspace, TEST_REPORT_DIR);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /\.(json|jsonl|xml)$/.test(n)).sort();
  } catch {
    return [];
  }
  const texts: string[] = [];
  for (const n of names) texts.push(await readWorkspaceFile(workspace, join(dir, n), `the test report ${TEST_REPORT_DIR}/${n}`));
  return texts;
}

/**
 * The test step of a completed run with `tests`:
 * - a report whose tests all pass (skips allowed): the output gets `tests`;
 * - failing tests, no test at all, or a report that cannot be read: validation failure (the run's
 *   work does not meet its gate; not retried by default);
 * - no report: the run's own failure (the framework not installed: permanent, with its message);
 * - the run timed out or was stopped: that failure.
 */
export async function applyTests(task: Task, spec: TestSpec, workspace: string, result: DriverResult, ctx: EngineContext): Promise<DriverResult> {
  if (result.status !== 'completed') return result;
  const cost = result.cost ? { cost: result.cost } : {};
  const fail = (type: 'validation' | 'permanent' | 'timeout' | 'transient' | 'resource' | 'dependency', message: string): DriverResult => ({ status: 'failed', error: { type, message }, ...cost });
  if (!ctx.commands) return fail('permanent', 'this agent has no command driver to run the tests with');
  const timeoutSeconds = secondsLeft(task, ctx);
  if (timeoutSeconds < 1) return fail('timeout', `timed out after ${task.timeoutSeconds} s (before the test run)`);

  const dir = join(workspace, TEST_REPORT_DIR);
  await rm(dir, { recursive: true, force: true }); // only this run's report counts
  try {
    const run = await runScript(task, workspace, testCommand(spec), {
      ctx,
      commands: ctx.commands,
      env: { XL_TEST_REPORT_DIR: dir, XL_TEST_REPORT: join(dir, REPORT_FILE[spec.framework]) },
      timeoutSeconds,
    });
    if (run.status === 'failed' && run.error.type !== 'permanent') return fail(run.error.type, `the test run did not finish: ${run.error.message}`);
    let texts: string[];
    try {
      texts = await reportTexts(workspace);
    } catch (err) {
      return fail('validation', (err as Error).message);
    }
    if (texts.length === 0) {
      if (run.status === 'failed') return fail('permanent', `the test run (${spec.framework}) failed without a report: ${run.error.message}`);
      return fail('validation', `the test run (${spec.framework}) wrote no report into $XL_TEST_REPORT_DIR`);
    }
    let tests: TestResults;
    try {
      tests = { framework: spec.framework, level: spec.level, ...parseTestReport(spec.framework, texts) };
    } catch (err) {
      return fail('validation', `the test run's report cannot be read: ${(err as Error).message}`);
    }
    if (tests.failed > 0) return fail('validation', describeTestFailures(tests));
    if (tests.total - tests.skipped === 0) return fail('validation', `no test ran (${spec.framework}, ${spec.level}): ${tests.total} found, ${tests.skipped} skipped`);
    if (run.status === 'failed') return fail('validation', `the test run (${spec.framework}) failed although its report shows no failing test: ${run.error.message}`);
    return { ...result, output: { ...result.output, tests } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
