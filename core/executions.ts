// Submitting, reading and cancelling executions: what the API does, free of HTTP.
import { randomBytes } from 'node:crypto';
import { type ArtifactObject, artifactObject } from './artifacts.ts';
import { breakerKeysFor } from './breakers.ts';
import { planDemand } from './demand.ts';
import { ConflictError, NotFoundError, type TaskError, XlError } from './errors.ts';
import type { ExecutionStore } from './aws/execution-store.ts';
import { type EventSink, executionEnded, noEvents } from './events.ts';
import type { PayloadStore } from './aws/payload-store.ts';
import { mergeOutputs, stageLayout, stagesInData } from './patterns.ts';
import { type Pattern, type Plan, type Task, parsePlan, planHash, planTasks } from './plan.ts';
import { submitTimeCacheKey } from './result-cache.ts';
import type { AttemptLogEntry, ExecutionRecord, TaskCost, TaskRecord } from './records.ts';

/**
 * Starts and stops workflow executions (Step Functions in AWS and locally). An execution has one
 * current workflow run (`ExecutionRecord.workflowRun`, 0 when absent); a resume or a redrive starts
 * the next one over the same task records.
 */
export interface Workflows {
  /** Idempotent: starting a run that already exists is not an error. */
  start(pattern: Pattern, executionId: string, run?: number): Promise<void>;
  stop(pattern: Pattern, executionId: string, cause: string, run?: number): Promise<void>;
}

export interface ExecutionDeps {
  executions: ExecutionStore;
  payloads: PayloadStore;
  workflows: Workflows;
  /** Where `execution.resumed` and `execution.redriven` go. */
  events?: EventSink;
}

/** A redrive whose workflow run has not begun (Prepare) this long after it was recorded crashed on the way. */
const STRANDED_REDRIVE_MS = 60_000;

/** Execution statuses a redrive accepts: the ends that left work undone (docs/design.md, "Resume and redrive"). */
export const REDRIVABLE: readonly ExecutionRecord['status'][] = ['FAILED', 'TIMED_OUT', 'ABORTED'];

export interface TaskResult {
  taskId: string;
  status: 'pending' | 'running' | 'completed' | 'failed' | 'skipped';
  output?: Record<string, unknown>;
  error?: TaskError;
  agentId?: string;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  cost?: TaskRecord['cost'];
  artifacts?: TaskRecord['artifacts'];
  /** A running Claude Code task: its spend so far (as of `at`, the agent's last lease renewal). */
  progress?: TaskRecord['progress'];
  /** One entry per attempt that ended, oldest first (recovery's decisions included). */
  attemptLog?: AttemptLogEntry[];
  /** Why it was skipped (a stop, a cancel, its recovery's fallback). */
  skipReason?: string;
  /** The recovery's fallback that settled it, and the failure it stood in for. */
  recoveredBy?: TaskRecord['recoveredBy'];
  /** It ran on its recovery's fallback agent type instead of this one (the plan's). */
  fallbackFrom?: TaskRecord['fallbackFrom'];
  /** Its output and artifacts are those of this earlier run (its `cache`); no agent ran it. */
  cachedFrom?: TaskRecord['cachedFrom'];
}

export interface ExecutionView {
  executionId: string;
  name: string;
  pattern: Pattern;
  status: string;
  startedAt: string;
  stoppedAt?: string;
  message?: string;
  tasks: TaskResult[];
  result?: { status: 'completed' | 'failed'; stage?: string; data: Record<string, unknown> };
  /** What the execution's tasks have cost so far: finished runs, plus running ones' progress. */
  cost?: TaskCost;
  /** The plan's own limits (its budget). */
  limits?: { maxBudgetUsd: number };
  /** After a resume or a redrive: which workflow run is the current one (the first is 0), and when. */
  workflowRun?: number;
  resumedAt?: string;
  redrivenAt?: string;
  /** The plan's shape, for drawing it (the console): a parallel plan's bound, a pipeline's stages. */
  maxConcurrency?: number;
  stages?: { name: string; tasks: string[] }[];
}

const newExecutionId = () => `ex-${Date.now().toString(36)}-${randomBytes(6).toString('base64url')}`;

/** The status users see: RUNNING until the workflow ends (PENDING is an internal step). */
const visibleStatus = (s: ExecutionRecord['status']) => (s === 'PENDING' ? 'RUNNING' : s);

export class ExecutionService {
  constructor(private readonly deps: ExecutionDeps) {}

  /**
   * Validates and records the plan, then starts its workflow. The plan's name is the idempotency
   * key: the same plan again returns the same execution (created: false), another plan is a 409.
   */
  async submit(body: unknown): Promise<{ created: boolean; executionId: string; name: string; status: string }> {
    const plan = parsePlan(body);
    const hash = planHash(plan);
    let executionId = newExecutionId();
    const name = plan.name ?? executionId;

    if (plan.name) {
      const reservation = await this.deps.executions.reserveName(plan.name, executionId, hash);
      if (!reservation.reserved) {
        if (reservation.planHash !== hash) {
          throw new ConflictError(`an execution named "${plan.name}" exists with a different plan`);
        }
        const existing = await this.deps.executions.getExecution(reservation.executionId);
        if (existing) {
          // A submit that died between recording and starting is finished by its retry.
          if (existing.status === 'PENDING') await this.start(existing.pattern, existing.executionId, existing.workflowRun ?? 0);
          return { created: false, executionId: existing.executionId, name, status: visibleStatus(existing.status) };
        }
        executionId = reservation.executionId; // recorded name, no execution yet: finish creating it
      }
    }

    await this.record(plan, executionId, name, hash);
    await this.start(plan.pattern, executionId);
    return { created: true, executionId, name, status: 'RUNNING' };
  }

  /** Starts workflow run `run`; when it cannot start, the execution ends FAILED (if still in `from`). */
  private async start(pattern: Pattern, executionId: string, run = 0, from: ExecutionRecord['status'][] = ['PENDING']): Promise<void> {
    try {
      await this.deps.workflows.start(pattern, executionId, run);
    } catch (err) {
      await this.deps.executions.setStatus(executionId, 'FAILED', {
        from,
        run,
        stoppedAt: new Date().toISOString(),
        message: `the workflow could not be started: ${(err as Error).message}`,
      });
      throw new XlError('transient', `the workflow could not be started: ${(err as Error).message}`, 503);
    }
  }

  private async record(plan: Plan, executionId: string, name: string, hash: string): Promise<void> {
    const planKey = `plans/${executionId}.json`;
    await this.deps.payloads.putJson(planKey, plan);
    const entries = planTasks(plan);
    const tasks: TaskRecord[] = await Promise.all(
      entries.map(async ({ task, stage }, index) => ({
        executionId,
        index,
        taskId: task.id,
        stage,
        agentType: task.agentType,
        priority: task.priority,
        timeoutSeconds: task.timeoutSeconds,
        failureStrategy: task.failureStrategy,
        ...(task.recovery ? { recovery: task.recovery } : {}),
        breakers: breakerKeysFor(task),
        ...cacheFields(task, plan, stage),
        ...affinityOf(task),
        definition: await this.deps.payloads.store(`tasks/${executionId}/${index}.json`, task),
        status: 'pending' as const,
        attempts: 0,
        dispatchSeq: 0,
        retries: {},
      })),
    );
    const stages =
      plan.pattern === 'pipeline'
        ? stageLayout('pipeline', plan.stages.map((s) => ({ name: s.name, count: s.tasks.length })))
        : stageLayout(plan.pattern, [{ name: '', count: plan.tasks.length }]);
    await this.deps.executions.createExecution(
      {
        executionId,
        name,
        pattern: plan.pattern,
        status: 'PENDING',
        planHash: hash,
        planKey,
        input: await this.deps.payloads.store(`inputs/${executionId}.json`, plan.input),
        maxConcurrency: plan.pattern === 'parallel' ? plan.maxConcurrency : 1,
        stages,
        taskCount: tasks.length,
        startedAt: new Date().toISOString(),
        ...(plan.limits?.maxBudgetUsd !== undefined ? { budgetUsd: plan.limits.maxBudgetUsd } : {}),
        // In the same write as the record: the hint costs no request of its own.
        demand: planDemand(plan),
      },
      tasks,
    );
  }

  /** `statuses` as users see them: RUNNING takes in PENDING (an internal step). */
  async list(opts: { limit: number; nextToken?: string; statuses?: string[]; nameContains?: string }) {
    const statuses = opts.statuses?.flatMap((st) => (st === 'RUNNING' ? ['PENDING', 'RUNNING'] : [st])) as ExecutionRecord['status'][] | undefined;
    const page = await this.deps.executions.listExecutions({ ...opts, statuses });
    return {
      items: page.items.map((e) => ({
        executionId: e.executionId,
        name: e.name,
        pattern: e.pattern,
        status: visibleStatus(e.status),
        startedAt: e.startedAt,
        ...(e.stoppedAt ? { stoppedAt: e.stoppedAt } : {}),
        ...(e.spentUsd ? { costUsd: e.spentUsd } : {}),
      })),
      ...(page.nextToken ? { nextToken: page.nextToken } : {}),
    };
  }

  async describe(executionId: string): Promise<ExecutionView> {
    const execution = await this.deps.executions.getExecution(executionId);
    if (!execution) throw new NotFoundError(`no execution ${executionId}`);
    const records = (await this.deps.executions.listTasks(executionId)).sort((a, b) => a.index - b.index);
    const outputs = await Promise.all(records.map((t) => (t.output ? this.deps.payloads.load(t.output) : undefined)));
    const tasks = records.map((t, i) => taskResult(t, outputs[i]));
    const view: ExecutionView = {
      executionId,
      name: execution.name,
      pattern: execution.pattern,
      status: visibleStatus(execution.status),
      startedAt: execution.startedAt,
      ...(execution.stoppedAt ? { stoppedAt: execution.stoppedAt } : {}),
      ...(execution.message ? { message: execution.message } : {}),
      tasks,
      ...totalCost(records),
      ...(execution.budgetUsd !== undefined ? { limits: { maxBudgetUsd: execution.budgetUsd } } : {}),
      ...(execution.workflowRun ? { workflowRun: execution.workflowRun } : {}),
      ...(execution.resumedAt ? { resumedAt: execution.resumedAt } : {}),
      ...(execution.redrivenAt ? { redrivenAt: execution.redrivenAt } : {}),
      ...(execution.pattern === 'parallel' ? { maxConcurrency: execution.maxConcurrency } : {}),
      ...(execution.pattern === 'pipeline'
        ? { stages: execution.stages.map((s) => ({ name: s.name, tasks: records.filter((t) => t.index >= s.from && t.index < s.to).map((t) => t.taskId) })) }
        : {}),
    };
    if (execution.pattern === 'pipeline' && execution.result) {
      const input = await this.deps.payloads.load(execution.input);
      const lastStage = stagesInData(execution);
      const merged = records
        .map((t, i) => (t.stage < lastStage && t.status === 'completed' ? outputs[i] : undefined));
      view.result = { ...execution.result, data: mergeOutputs(input, merged) };
    }
    return view;
  }

  /**
   * GET /executions/{id}/tasks/{taskId}/artifacts/{name}: the object behind one of a task's
   * artifacts (core/artifacts.ts), read from the task's record only: no output is loaded.
   */
  async artifact(executionId: string, taskId: string, name: string): Promise<ArtifactObject> {
    const [execution, records] = await Promise.all([this.deps.executions.getExecution(executionId), this.deps.executions.listTasks(executionId)]);
    if (!execution) throw new NotFoundError(`no execution ${executionId}`);
    const task = records.find((t) => t.taskId === taskId);
    if (!task) throw new NotFoundError(`execution ${executionId} has no task ${taskId}`);
    return artifactObject(task, name, this.deps.payloads.bucketName);
  }

  /** DELETE /executions/{id}: the workflow is stopped and its running agent tasks lose their claims. */
  async cancel(executionId: string): Promise<void> {
    const execution = await this.deps.executions.getExecution(executionId);
    if (!execution) throw new NotFoundError(`no execution ${executionId}`);
    if (execution.status !== 'PENDING' && execution.status !== 'RUNNING') return;
    const ended = await this.deps.executions.setStatus(executionId, 'ABORTED', {
      from: ['PENDING', 'RUNNING'],
      stoppedAt: new Date().toISOString(),
      message: 'cancelled by request',
    });
    if (ended) await this.events.emit(executionEnded(execution, 'ABORTED', 'cancelled by request')!);
    await this.deps.workflows.stop(execution.pattern, executionId, 'cancelled by request', execution.workflowRun ?? 0);
    await this.deps.executions.cancelTasks(executionId, 'cancelled by request');
  }

  /**
   * Local mode, at start: an execution whose workflow run died with the layer goes on in a new run.
   * The caller has made sure no agent of the earlier run is alive. Its running tasks go back to
   * pending (a checkpoint their agent handed back stays), queued ones get a new dispatchSeq (the
   * dead run's messages become stale); completed, skipped and finally failed tasks are left as
   * they are, and the new run's Gate skips them. False when the execution is not running or
   * another resume won.
   */
  async resume(executionId: string): Promise<boolean> {
    const execution = await this.deps.executions.getExecution(executionId);
    if (!execution || (execution.status !== 'PENDING' && execution.status !== 'RUNNING')) return false;
    const from = execution.workflowRun ?? 0;
    if (!(await this.deps.executions.advanceWorkflowRun(executionId, from, { statuses: ['PENDING', 'RUNNING'] }))) return false;
    const tasks = await this.deps.executions.listTasks(executionId);
    for (const t of tasks) if (t.status === 'running' || t.status === 'queued') await this.deps.executions.releaseTask(t);
    await this.start(execution.pattern, executionId, from + 1, ['PENDING', 'RUNNING']);
    await this.events.emit({ kind: 'execution.resumed', executionId, tasks: tasks.filter(unfinished).length });
    return true;
  }

  /**
   * POST /executions/{id}/redrive: an execution that ended FAILED, TIMED_OUT or ABORTED runs again
   * in a new workflow run that re-runs only what did not complete: failed and skipped tasks go back
   * to pending with a fresh retry budget. The execution is reopened first (one conditional write
   * that only one of two concurrent redrives wins), then its tasks, then the run starts. A redrive
   * whose run has still not begun a minute later (PENDING: it crashed in between) is carried on by
   * the next request, which reopens only tasks that ended before it and starts the same run.
   */
  async redrive(executionId: string): Promise<{ executionId: string; status: 'RUNNING'; workflowRun: number; tasks: number }> {
    const execution = await this.deps.executions.getExecution(executionId);
    if (!execution) throw new NotFoundError(`no execution ${executionId}`);
    const redriving = execution.status === 'PENDING' && execution.redrivenAt !== undefined;
    const unfinishedRedrive = redriving && Date.now() - Date.parse(execution.redrivenAt!) > STRANDED_REDRIVE_MS;
    if (redriving && !unfinishedRedrive) throw new ConflictError(`execution ${executionId} is being redriven (since ${execution.redrivenAt})`);
    if (!unfinishedRedrive && !REDRIVABLE.includes(execution.status)) {
      throw new ConflictError(
        `execution ${executionId} is ${visibleStatus(execution.status)}: only a ${REDRIVABLE.join(', ')} execution can be redriven`,
      );
    }
    let run = execution.workflowRun ?? 0;
    let since = execution.redrivenAt!;
    if (!unfinishedRedrive) {
      since = new Date().toISOString();
      if (!(await this.deps.executions.advanceWorkflowRun(executionId, run, { statuses: [execution.status], redrivenAt: since }))) {
        throw new ConflictError(`execution ${executionId} changed meanwhile (another redrive?): read it and try again`);
      }
      run += 1;
    }
    let reopened = 0;
    for (const t of await this.deps.executions.listTasks(executionId)) {
      if ((t.status === 'failed' || t.status === 'skipped') && (await this.deps.executions.reopenTask(executionId, t.index, since))) reopened++;
    }
    await this.start(execution.pattern, executionId, run);
    await this.events.emit({ kind: 'execution.redriven', executionId, tasks: reopened });
    return { executionId, status: 'RUNNING', workflowRun: run, tasks: reopened };
  }

  private get events(): EventSink {
    return this.deps.events ?? noEvents;
  }
}

/** A task a run still has to do something about. */
const unfinished = (t: TaskRecord) => t.status !== 'completed' && t.status !== 'skipped' && !(t.status === 'failed' && t.finalFailure);

function taskResult(t: TaskRecord, output: Record<string, unknown> | undefined): TaskResult {
  return {
    taskId: t.taskId,
    status: t.status === 'queued' ? 'pending' : t.status,
    ...(output !== undefined && t.status === 'completed' ? { output } : {}),
    ...(t.error && t.status !== 'completed' ? { error: t.error } : {}),
    ...(t.agentId ? { agentId: t.agentId } : {}),
    attempts: t.attempts,
    ...(t.startedAt ? { startedAt: t.startedAt } : {}),
    ...(t.finishedAt ? { finishedAt: t.finishedAt } : {}),
    ...(t.durationMs !== undefined ? { durationMs: t.durationMs } : {}),
    ...(t.cost ? { cost: t.cost } : {}),
    ...(t.artifacts ? { artifacts: t.artifacts } : {}),
    ...(t.progress && t.status === 'running' ? { progress: t.progress } : {}),
    ...attemptLogOf(t),
    ...(t.skipReason && t.status === 'skipped' ? { skipReason: t.skipReason } : {}),
    ...(t.recoveredBy ? { recoveredBy: t.recoveredBy } : {}),
    ...(t.fallbackFrom ? { fallbackFrom: t.fallbackFrom } : {}),
    ...(t.cachedFrom && t.status === 'completed' ? { cachedFrom: t.cachedFrom } : {}),
  };
}

/** The task's affinity key (CONTRACT.md: default its workspace repository), so Gate needs no bucket read. */
function affinityOf(task: Task): Pick<TaskRecord, 'affinity'> {
  const key = task.affinity ?? task.workspace?.repository;
  return key ? { affinity: key } : {};
}

/** A cached task's record carries its `cache`, and its key when that is known now (core/result-cache.ts). */
function cacheFields(task: Task, plan: Plan, stage: number): Pick<TaskRecord, 'cache' | 'cacheKey'> {
  if (!task.cache) return {};
  const key = submitTimeCacheKey(task, plan.input, stage, plan.pattern);
  return { cache: task.cache, ...(key ? { cacheKey: key } : {}) };
}

/**
 * The attempts that ended, as recorded by Recover and by hand-backs, plus the completed one, which
 * no step records (a success goes straight from the agent to Step Functions).
 */
function attemptLogOf(t: TaskRecord): { attemptLog?: AttemptLogEntry[] } {
  const log = [...(t.attemptLog ?? [])];
  if (t.status === 'completed' && !t.recoveredBy && t.attempts > 0 && !log.some((e) => e.attempt === t.attempts && e.status !== 'handed-back')) {
    log.push({
      attempt: t.attempts,
      ...(t.agentId ? { agentId: t.agentId } : {}),
      agentType: t.agentType,
      ...(t.startedAt ? { startedAt: t.startedAt } : {}),
      finishedAt: t.finishedAt ?? t.startedAt ?? '',
      status: 'completed',
    });
  }
  return log.length ? { attemptLog: log } : {};
}

/**
 * `{ cost }` summed over the tasks' recorded runs (the last attempt's: earlier attempts' spend is not
 * kept) and the running tasks' progress; nothing when no task has spent anything.
 */
function totalCost(records: TaskRecord[]): { cost?: TaskCost } {
  const spent = records.map((t) => (t.status === 'running' ? t.progress : t.cost)).filter((c): c is TaskCost => c !== undefined);
  if (!spent.length) return {};
  const sum = spent.reduce((a, c) => ({ usd: a.usd + c.usd, inputTokens: a.inputTokens + c.inputTokens, outputTokens: a.outputTokens + c.outputTokens, turns: a.turns + c.turns }), {
    usd: 0,
    inputTokens: 0,
    outputTokens: 0,
    turns: 0,
  });
  return { cost: { ...sum, usd: Math.round(sum.usd * 1e6) / 1e6 } };
}
