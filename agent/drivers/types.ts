// What an agent driver is: the part of the worker that actually runs a task (a shell command, or
// later Claude Code). Drivers know nothing of queues, leases or AWS; the worker does that.
import type { TaskError } from '../../core/errors.ts';
import type { Task } from '../../core/plan.ts';
import type { Artifact, TaskCost } from '../../core/records.ts';

export interface DriverContext {
  /** A fresh, empty directory that belongs to this run only; removed after it. */
  workspace: string;
  /** The task's input: the plan's input, or a pipeline's `data` for the task's stage. */
  input: Record<string, unknown>;
  /**
   * Aborted when the run must end now (claim lost, agent handing the task back). A driver kills
   * everything it started at once and resolves (its result is then ignored).
   */
  signal: AbortSignal;
  /**
   * Per-task variables for the task's process (XL_TASK_ID, XL_EXECUTION_ID, XL_ATTEMPT,
   * XL_WORKSPACE). Never secrets: a driver adds to these only what its own process needs.
   */
  env: Record<string, string>;
  /** Called with the id of each process group the driver starts, before it awaits it. */
  onSpawn(pgid: number): void;
  /**
   * A private directory outside the workspace for the run's HOME (Claude Code's config and session
   * transcripts live there, not among the task's files); removed after the run. Default: the workspace.
   */
  home?: string;
  /**
   * Filled by the driver as the run goes: the session id (what a checkpoint needs to resume the
   * run) and the cost so far (reported with each lease renewal, for `GET /executions/{id}`).
   */
  session?: { id?: string; cost?: TaskCost };
  /** The run resumes a checkpoint (agent/checkpoint.ts): the Claude Code session to continue. */
  resume?: { sessionId?: string };
}

export type DriverResult =
  | {
      status: 'completed';
      output: Record<string, unknown>;
      cost?: TaskCost;
      artifacts?: Artifact[];
    }
  | {
      status: 'failed';
      error: TaskError;
      cost?: TaskCost;
      /** What a failed run leaves to look at (a Claude Code run's transcript). */
      artifacts?: Artifact[];
    };

export interface Driver {
  /** The driver's name, e.g. `command` or `claude-code`. */
  readonly name: string;
  /** Runs the task to its end. Never throws for the task's own failures: they are results. */
  run(task: Task, ctx: DriverContext): Promise<DriverResult>;
}

/** Drivers by name. A task with `command` runs on `command`, one with `instructions` on `claude-code`. */
export type DriverRegistry = Partial<Record<string, Driver>>;

/** The driver name a task needs. */
export function driverNameFor(task: Pick<Task, 'command' | 'instructions'>): string {
  return task.command !== undefined ? 'command' : 'claude-code';
}
