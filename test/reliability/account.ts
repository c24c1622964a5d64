// How the fault suite counts: each task's final record (GET /executions/{id}) against its ledger
// (what its commands did) and against the agents' log (which runs an agent recorded as finished).
//   lost:    the task did not reach its expected status with the expected output (a completed task's
//            output must name it and a run that committed), or it lacks its side effect, or its
//            execution did not end as expected in time;
//   doubled: the side effect was committed more than once, or one run's end (or a completion) was
//            recorded more than once.
// A run started again after its agent died is expected (started twice, committed once): not doubled.
import { isDeepStrictEqual } from 'node:util';
import type { ErrorType } from '#core/errors.ts';
import type { LedgerEntry } from './ledger.ts';

/** A run an agent recorded as finished: its "task finished" log line. */
export interface Finish {
  attempt: number;
  status: string;
}

/** Another expectation on a task: a message saying what is wrong, or undefined. */
export type TaskCheck = (task: any, entry: LedgerEntry) => string | undefined;

export interface Expectation {
  taskId: string;
  status: 'completed' | 'failed' | 'skipped';
  /** A failed task's error type. */
  errorType?: ErrorType;
  /** The record's attempt count. */
  attempts?: number;
  /** Side effects the task must have committed: 1, or 0 for a command that must never get past its kill. */
  commits: 0 | 1;
  /**
   * A completed task's output when no run of it produced one (its recovery's default output): the
   * record's output must equal it, and the ledger must show no commit (`commits: 0`).
   */
  defaultOutput?: unknown;
  checks?: TaskCheck[];
}

export interface Tally {
  tasks: number;
  lost: number;
  doubled: number;
  /** Expectations that did not hold, one line each (lost and doubled tasks included, with why). */
  failures: string[];
}

export const emptyTally = (): Tally => ({ tasks: 0, lost: 0, doubled: 0, failures: [] });

export function addTally(into: Tally, more: Tally): Tally {
  into.tasks += more.tasks;
  into.lost += more.lost;
  into.doubled += more.doubled;
  into.failures.push(...more.failures);
  return into;
}

/** Parses the agents' log (JSON lines) into the finished runs per `<executionId>/<taskId>`. */
export function parseFinishes(log: string): Map<string, Finish[]> {
  const out = new Map<string, Finish[]>();
  for (const line of log.split('\n')) {
    if (!line.includes('"task finished"')) continue;
    let entry: { msg?: string; executionId?: string; taskId?: string; attempt?: number; status?: string };
    try {
      entry = JSON.parse(line);
    } catch {
      continue; // a line cut by a worker's death
    }
    if (entry.msg !== 'task finished' || !entry.executionId || !entry.taskId) continue;
    const key = `${entry.executionId}/${entry.taskId}`;
    out.set(key, [...(out.get(key) ?? []), { attempt: Number(entry.attempt), status: String(entry.status) }]);
  }
  return out;
}

/**
 * Tallies one execution. `execution` is its last GET /executions/{id} answer; `expectedStatus` what
 * it should have ended as (a different or missing end is a failure, and its unfinished tasks are lost).
 */
export function account(opts: {
  execution: any;
  expectedStatus: string;
  expectations: Expectation[];
  ledger: (taskId: string) => LedgerEntry;
  finishes: Map<string, Finish[]>;
}): Tally {
  const { execution, expectations } = opts;
  const tally: Tally = { tasks: expectations.length, lost: 0, doubled: 0, failures: [] };
  const executionId = execution?.executionId ?? '?';
  if (execution?.status !== opts.expectedStatus) {
    tally.failures.push(`execution ${executionId}: ${execution?.status ?? 'no record'}, expected ${opts.expectedStatus}${execution?.message ? ` (${execution.message})` : ''}`);
  }
  const records = new Map<string, any>((execution?.tasks ?? []).map((t: any) => [t.taskId, t]));
  for (const want of expectations) {
    const task = records.get(want.taskId);
    const entry = opts.ledger(want.taskId);
    const finishes = opts.finishes.get(`${executionId}/${want.taskId}`) ?? [];
    const where = `${executionId}/${want.taskId}`;

    const lostBecause = lostReason(want, task, entry);
    if (lostBecause) {
      tally.lost++;
      tally.failures.push(`${where}: lost: ${lostBecause}`);
    }
    const doubledBecause = doubledReason(entry, finishes);
    if (doubledBecause) {
      tally.doubled++;
      tally.failures.push(`${where}: doubled: ${doubledBecause}`);
    }
    if (!task) continue;
    if (want.commits === 0 && entry.commits.length > 0) tally.failures.push(`${where}: committed (attempts ${entry.commits.join(', ')}) though it had to be stopped first`);
    if (want.attempts !== undefined && task.attempts !== want.attempts) tally.failures.push(`${where}: ${task.attempts} attempts, expected ${want.attempts}`);
    if (want.errorType && task.error?.type !== want.errorType) tally.failures.push(`${where}: error ${JSON.stringify(task.error)}, expected type ${want.errorType}`);
    for (const check of want.checks ?? []) {
      const problem = check(task, entry);
      if (problem) tally.failures.push(`${where}: ${problem}`);
    }
  }
  return tally;
}

function lostReason(want: Expectation, task: any, entry: LedgerEntry): string | undefined {
  if (!task) return 'no task record';
  if (task.status !== want.status) return `status ${task.status}, expected ${want.status}`;
  if (entry.commits.length < want.commits) return `no side effect committed (ledger starts: ${entry.starts.map((s) => s.attempt).join(', ') || 'none'})`;
  if (want.status !== 'completed') return undefined;
  const output = task.output;
  if (want.defaultOutput !== undefined) {
    return isDeepStrictEqual(output, want.defaultOutput) ? undefined : `output ${JSON.stringify(output)}, expected the default output ${JSON.stringify(want.defaultOutput)}`;
  }
  if (output?.task !== want.taskId) return `output ${JSON.stringify(output)} is not this task's`;
  if (!entry.commits.includes(output.attempt)) return `output of attempt ${output.attempt}, which committed nothing (commits: ${entry.commits.join(', ') || 'none'})`;
  return undefined;
}

function doubledReason(entry: LedgerEntry, finishes: Finish[]): string | undefined {
  if (entry.commits.length > 1) return `side effect committed ${entry.commits.length} times (attempts ${entry.commits.join(', ')})`;
  const completions = finishes.filter((f) => f.status === 'completed');
  if (completions.length > 1) return `completion recorded ${completions.length} times (attempts ${completions.map((f) => f.attempt).join(', ')})`;
  const attempts = finishes.map((f) => f.attempt);
  const repeated = attempts.find((a, i) => attempts.indexOf(a) !== i);
  if (repeated !== undefined) return `attempt ${repeated}'s end recorded more than once`;
  return undefined;
}
