// Coverage in a task's workspace: after a tester's (or any task with `coverageTargets`) driver has
// completed, the worker looks for the coverage report the task's tests wrote, adds its figures to
// the task's output and fails the task when the targets are missed (core/engines/coverage.ts).
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { join, relative, isAbsolute } from 'node:path';
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

/** Larger reports are refused rather than read into memory. */
export const COVERAGE_REPORT_MAX_BYTES = 64 * 1024 * 1024;

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
  const root = await realpath(workspace);
  for (const path of COVERAGE_REPORT_PATHS) {
    let real: string;
    try {
      real = await realpath(join(root, path));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new Error(`the coverage report ${path} could not be read: ${code ?? (err as Error).message}`, { cause: err });
    }
    const rel = relative(root, real);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`the coverage report ${path} leads out of the workspace`);
    const text = await readReport(real, path);
    const coverage = parseCoverage(path, text);
    return { path, coverage, ...(targets ? { check: checkCoverage(coverage, targets) } : {}) };
  }
  return undefined;
}

async function readReport(file: string, path: string): Promise<string> {
  // O_NONBLOCK: a FIFO planted at the path must not hang the agent; O_NOFOLLOW: no link swapped in.
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new Error(`the coverage report ${path} could not be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new Error(`the coverage report ${path} is not a regular file`);
    if (stat.size > COVERAGE_REPORT_MAX_BYTES) {
      throw new Error(`the coverage report ${path} is larger than ${COVERAGE_REPORT_MAX_BYTES / (1024 * 1024)} MiB`);
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
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
