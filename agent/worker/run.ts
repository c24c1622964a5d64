// Running a claimed task: its definition and input read, a fresh workspace (the repository cloned
// into it, a handed-back run's checkpoint restored), the driver, the engines, the changes collected
// and the Claude Code transcript kept; then the report (report.ts). A run that ends early (a lost
// claim, a hand-back) ends without a report of its result.
import { constants } from 'node:fs';
import { mkdir, open, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { classifyAgentError } from '../../core/classify.ts';
import type { Task } from '../../core/plan.ts';
import type { CachedResult } from '../../core/result-cache.ts';
import { cacheKey } from '../../core/result-cache.ts';
import { retry } from '../agent-calls.ts';
import type { RunDirs } from '../checkpoint.ts';
import { claudeConfigDir, claudeProjectDir } from '../drivers/claude-code.ts';
import { killProcessGroup } from '../drivers/process.ts';
import { type Driver, type DriverResult, driverNameFor } from '../drivers/types.ts';
import { applyEngines } from '../engines/index.ts';
import { type Prepared, prepareWorkspace } from '../engines/workspace-git.ts';
import type { Run, WorkerContext } from './context.ts';
import type { TaskInputs } from './inputs.ts';
import { completeFromCache, endWithoutReport, report, skipWithoutExecution } from './report.ts';

/** A Claude Code run's session transcript, kept as an artifact of its task. */
export const TRANSCRIPT_ARTIFACT = 'claude-transcript.jsonl';
/** Transcripts past this are cut to their last part (the end is where a run went wrong). */
const TRANSCRIPT_MAX_BYTES = 16 * 1024 * 1024;

export async function execute(ctx: WorkerContext, inputs: TaskInputs, run: Run): Promise<void> {
  const { msg, task } = run;
  let result: DriverResult | undefined;
  let definition: Task | undefined;
  let skipping = false;
  let fromCache: CachedResult | undefined;
  try {
    const execution = await inputs.execution(msg.executionId);
    if (!execution) {
      skipping = true;
      await skipWithoutExecution(ctx, run);
      return;
    }
    definition = await ctx.deps.payloads.load(task.definition);
    // Its recovery's fallback moved it to this agent type: it runs as one (profile, engines).
    if (task.fallbackFrom) definition = { ...definition, agentType: task.agentType };
    const input = await inputs.inputFor(execution, task);
    if (run.end) return await endWithoutReport(ctx, run);
    const driver = ctx.deps.drivers[driverNameFor(definition)];
    if (!driver) {
      result = {
        status: 'failed',
        error: { type: 'permanent', source: 'agent', message: `this agent has no ${driverNameFor(definition)} driver` },
      };
    } else {
      run.phase = 'running';
      const workspace = await ctx.deps.workspaces.create(task.taskId);
      // The run's HOME, beside the workspace (not in it): Claude Code's sessions and settings.
      const home = `${workspace}.home`;
      const ownHome = driver.name === 'claude-code'; // a command's HOME is its workspace
      let privateDir: string | undefined;
      try {
        if (ownHome) await mkdir(home, { mode: 0o700 });
        // The task's repository is cloned first; a clone that fails is the task's result.
        const prepared = await prepareWorkspace(ctx.deps.git, definition, workspace);
        privateDir = prepared.checkout?.privateDir;
        const dirs = { workspace, home, ...(prepared.checkout ? { checkout: prepared.checkout } : {}) };
        if (!prepared.failed && task.cache) fromCache = await lookUpCache(ctx, run, definition, input, prepared.checkout);
        if (!fromCache) result = await runDriver(ctx, run, { definition, driver, input, dirs, prepared, ownHome });
      } finally {
        run.ranTo = ctx.clock.now();
        for (const pgid of run.pgids) {
          killProcessGroup(pgid); // leftovers of a driver that did not clean up (the command driver does)
          ctx.pgids?.remove(pgid);
        }
        ctx.removeLater(workspace);
        if (ownHome) ctx.removeLater(home);
        if (privateDir) ctx.removeLater(privateDir);
      }
    }
  } catch (err) {
    if (skipping) throw err;
    fromCache = undefined;
    if (run.end) return await endWithoutReport(ctx, run);
    // The agent itself failed around the task (an AWS or disk error): a transient failure,
    // which the task's recovery strategy retries.
    result = { status: 'failed', error: classifyAgentError(err, 'the agent could not run the task') };
  }
  if (run.end) return await endWithoutReport(ctx, run);
  if (fromCache) {
    run.phase = 'reporting';
    return await completeFromCache(ctx, run, fromCache);
  }
  run.phase = 'reporting';
  await report(ctx, run, result!, definition);
}


/** The driver, then the engines, the collection of the changes and the transcript: the run itself. */
async function runDriver(
  ctx: WorkerContext,
  run: Run,
  { definition, driver, input, dirs, prepared, ownHome }: {
    definition: Task;
    driver: Driver;
    input: Record<string, unknown>;
    dirs: RunDirs & { home: string };
    prepared: Prepared;
    ownHome: boolean;
  },
): Promise<DriverResult> {
  const { msg, task } = run;
  const { workspace, home } = dirs;
  // A run handed back earlier left its state: this attempt continues from it.
  const restored = prepared.failed ? {} : await restore(ctx, run, dirs);
  const onSpawn = (pgid: number) => {
    run.pgids.add(pgid);
    ctx.pgids?.add(pgid);
    if (run.end) killProcessGroup(pgid); // lost or handed back while it was starting
  };
  run.ranFrom = ctx.clock.now();
  let result = prepared.failed ?? restored.failed ?? await driver.run(definition, {
    workspace,
    ...(ownHome ? { home } : {}),
    session: run.session,
    ...(restored.resume ? { resume: restored.resume } : {}),
    input,
    signal: run.abort.signal,
    env: {
      XL_TASK_ID: task.taskId,
      XL_EXECUTION_ID: msg.executionId,
      XL_ATTEMPT: String(task.attempts),
      XL_WORKSPACE: workspace,
    },
    onSpawn,
  });
  // A finished run is finished: a stop or a preemption no longer hands it back.
  if (!run.end) run.phase = 'finishing';
  if (run.end === 'handback') await saveCheckpoint(ctx, run, dirs);
  // The engines (code checks, generated tests, review gates, coverage) read the workspace
  // before it goes; their commands run like the task's own (same user, same reaping).
  result = await applyEngines(definition, workspace, result, {
    commands: ctx.deps.drivers.command,
    signal: run.abort.signal,
    input,
    startedAt: run.ranFrom,
    now: () => ctx.clock.now(),
    onSpawn,
  });
  // Its changes become artifacts (and a pushed branch) before the workspace goes.
  if (prepared.checkout && !run.end) {
    result = await ctx.deps.git!.collect(prepared.checkout, { executionId: msg.executionId, taskId: task.taskId, attempt: task.attempts }, result);
  }
  // A Claude Code run's transcript stays with its result, completed or failed: what it did, turn by turn.
  if (ownHome && !run.end) result = await keepTranscript(ctx, run, workspace, home, result);
  return result;
}

/**
 * A cached task whose key Gate could not know (a branch's commit, a later pipeline stage's data):
 * the key from what the agent has now, and the entry under it. The key stays on the run, so a
 * completed run is stored under it (report.ts). A cache that cannot be read is a miss.
 */
async function lookUpCache(
  ctx: WorkerContext,
  run: Run,
  definition: Task,
  input: Record<string, unknown>,
  checkout: Parameters<NonNullable<WorkerContext['deps']['git']>['head']>[0] | undefined,
): Promise<CachedResult | undefined> {
  if (run.task.cacheKey && !run.task.fallbackFrom) {
    run.cacheKey = run.task.cacheKey; // Gate looked it up already, moments ago
    return undefined;
  }
  try {
    const commit = checkout ? await ctx.deps.git!.head(checkout) : undefined;
    // As it runs here: a fallback's result is its agent type's, not the plan's.
    run.cacheKey = cacheKey({ definition, input, commit });
    return await ctx.deps.executions.getCachedResult(run.cacheKey, ctx.clock.now());
  } catch (err) {
    ctx.warnSparse('cache', 'could not read the result cache; running the task', err);
    return undefined;
  }
}

/**
 * Before the driver: the state a handed-back run saved. One that cannot be restored fails this
 * attempt as transient; the failure clears the checkpoint, so the retry starts afresh.
 */
async function restore(ctx: WorkerContext, run: Run, dirs: RunDirs): Promise<{ resume?: { sessionId?: string }; failed?: DriverResult }> {
  const checkpoint = run.task.checkpoint;
  if (!checkpoint || !ctx.deps.checkpoints) return {};
  try {
    const { sessionId } = await ctx.deps.checkpoints.restore(checkpoint, dirs);
    run.log.info('resuming from a checkpoint', { from: checkpoint.attempt, sessionId: sessionId ?? null });
    return { resume: sessionId ? { sessionId } : {} };
  } catch (err) {
    return { failed: { status: 'failed', error: { ...classifyAgentError(err, `the checkpoint of attempt ${checkpoint.attempt} could not be restored`), type: 'transient' } } };
  }
}

/** A run being handed back: its state, for the attempt that takes the task next. Never throws. */
async function saveCheckpoint(ctx: WorkerContext, run: Run, dirs: RunDirs): Promise<void> {
  if (!ctx.deps.checkpoints) return;
  try {
    const ids = { executionId: run.msg.executionId, taskId: run.task.taskId, attempt: run.task.attempts };
    run.checkpoint = await ctx.deps.checkpoints.save(dirs, ids, run.session.id);
  } catch (err) {
    ctx.warnSparse('checkpoint', 'could not save a checkpoint; the next attempt starts afresh', err);
  }
}

/** Adds the run's Claude Code session transcript to its artifacts (when there is one). Never throws. */
async function keepTranscript(ctx: WorkerContext, run: Run, workspace: string, home: string, result: DriverResult): Promise<DriverResult> {
  const sessionId = run.session.id;
  if (!sessionId) return result;
  try {
    const file = join(claudeProjectDir(claudeConfigDir(home), await realpath(workspace)), `${sessionId}.jsonl`);
    const body = await readTranscript(file);
    if (!body) return result;
    const key = `artifacts/${run.msg.executionId}/${run.task.taskId}/${run.task.attempts}/${TRANSCRIPT_ARTIFACT}`;
    const bytes = await retry(() => ctx.deps.payloads.putBytes(key, body, 'application/x-ndjson'));
    return { ...result, artifacts: [...(result.artifacts ?? []), { name: TRANSCRIPT_ARTIFACT, uri: ctx.deps.payloads.uri(key), bytes }] };
  } catch (err) {
    ctx.warnSparse('transcript', 'could not keep a Claude Code transcript', err);
    return result;
  }
}

/** The transcript file (the agent's user wrote it: a regular file, no link), at most its last TRANSCRIPT_MAX_BYTES. */
async function readTranscript(file: string): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return undefined;
    const length = Math.min(stat.size, TRANSCRIPT_MAX_BYTES);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, stat.size - length);
    return buf;
  } finally {
    await handle.close();
  }
}
