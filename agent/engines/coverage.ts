// Coverage in a task's workspace: after a tester's (or any task with `coverageTargets`) driver has
// completed, the worker looks for the coverage report the task's tests wrote, adds its figures to
// the task's output and fails the task when the targets are missed (core/engines/coverage.ts).
import { join } from 'node:path';
import {
  COVERAGE_REPORT_PATHS,
  type Coverage,
  type CoverageCheck,
  type CoverageTargets,
  checkCoverage,
  describeCoverageFailures,
  parseCoverage,
} from '../../core/engines/coverage.ts';
import type { Task } from '../../core/plan.ts';
import type { DriverResult } from '../drivers/types.ts';
import { readWorkspaceFileIfPresent } from './context.ts';

export interface WorkspaceCoverage {
  /** The report's path, relative to the workspace (one of COVERAGE_REPORT_PATHS). */
  path: string;
  coverage: Coverage;
  /** When targets were given. */
  check?: CoverageCheck;
}

/**
 * The first report among COVERAGE_REPORT_PATHS in the workspace, parsed (and checked against the
 * targets when given). Undefined when there is none. Throws when the report found cannot be used:
 * unreadable, malformed, too large, not a regular file, or a link that leads out of the workspace
 * (the worker may read files the task's command cannot, so a report must be the command's own).
 */
export async function analyzeWorkspaceCoverage(workspace: string, targets?: CoverageTargets): Promise<WorkspaceCoverage | undefined> {
  for (const path of COVERAGE_REPORT_PATHS) {
    const text = await readWorkspaceFileIfPresent(workspace, join(workspace, path), `the coverage report ${path}`);
    if (text === undefined) continue;
    const coverage = parseCoverage(path, text);
    return { path, coverage, ...(targets ? { check: checkCoverage(coverage, targets) } : {}) };
  }
  return undefined;
}

/**
 * The coverage step of a task run, between its driver and its workspace's removal. It applies to a
 * completed task that has `coverageTargets` or is a tester's; others pass through unchanged.
 * - A report found: the output gets `coverage` (and `coverageCheck` when targets were given).
 * - Targets missed, no report, or an unusable report while targets were given: the task fails as a
 *   validation error (its work is done but does not meet its quality gate; not retried).
 * - A tester without targets and an unusable report: the output gets `coverageError` instead.
 * Never throws.
 */
export async function applyCoverage(task: Pick<Task, 'agentType' | 'coverageTargets'>, workspace: string, result: DriverResult): Promise<DriverResult> {
  const targets = task.coverageTargets;
  if (result.status !== 'completed' || (!targets && task.agentType !== 'tester')) return result;
  const failed = (message: string): DriverResult => ({ status: 'failed', error: { type: 'validation', message }, ...(result.cost ? { cost: result.cost } : {}) });
  let found: WorkspaceCoverage | undefined;
  try {
    found = await analyzeWorkspaceCoverage(workspace, targets);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (targets) return failed(`coverage targets could not be checked: ${message}`);
    return { ...result, output: { ...result.output, coverageError: message } };
  }
  if (!found) {
    if (targets) return failed(`coverage targets could not be checked: no coverage report in the workspace (looked for ${COVERAGE_REPORT_PATHS.join(', ')})`);
    return result;
  }
  if (found.check && !found.check.passed) return failed(`${describeCoverageFailures(found.check)} (${found.path})`);
  const { format, lines, branches, functions, files } = found.coverage;
  return {
    ...result,
    output: {
      ...result.output,
      coverage: { format, lines, ...(branches ? { branches } : {}), ...(functions ? { functions } : {}), files },
      ...(found.check ? { coverageCheck: found.check } : {}),
    },
  };
}
