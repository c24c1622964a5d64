// The agent's record, written on a timer and never per task: status, health, the current task and
// its counts. The heartbeat's answer carries the layer's requests: a preemption (yield a
// low-priority run) or a write-off (the record says terminated: stop).
import { assessHealth } from '../../core/health.ts';
import type { AgentRecord, AgentStatus } from '../../core/records.ts';
import type { Run, WorkerContext } from './context.ts';
import { handBack } from './lease.ts';

export function agentStatus(ctx: WorkerContext): AgentStatus {
  if (ctx.stopping) return 'draining';
  return ctx.runs.size > 0 ? 'busy' : 'idle';
}

function health(ctx: WorkerContext): AgentRecord['health'] {
  const metrics = ctx.metrics.snapshot();
  // The whole agent's use (its commands too, or the whole task on ECS) where it was sampled.
  const resources = ctx.resources.current;
  if (resources) {
    metrics.cpu = resources.cpuPercent;
    if (resources.memoryLimitBytes) metrics.memory = Math.round((resources.memoryBytes / resources.memoryLimitBytes) * 1000) / 10;
  }
  const assessed = assessHealth(metrics, ctx.metrics.count, ctx.config.capabilityIssues ?? []);
  // The agent's own trouble with AWS (a lease, a receive, a heartbeat failing lately).
  const recentTrouble = [...ctx.lastWarned.entries()].filter(([, t]) => Date.now() - t < 3 * ctx.config.heartbeatIntervalMs).map(([kind]) => kind);
  if (recentTrouble.length) assessed.issues.push({ check: 'performance', severity: 'warning', message: `recent trouble: ${recentTrouble.join(', ')}` });
  const overall = assessed.overall === 'healthy' && recentTrouble.length ? 'degraded' : assessed.overall;
  return {
    overall,
    metrics,
    issues: assessed.issues,
    lastCheck: new Date(ctx.clock.now()).toISOString(),
    ...(resources ? { resources, history: ctx.resources.history } : {}),
  };
}

/** The whole record, as registered at start (and written again if it went missing). */
export function agentRecord(ctx: WorkerContext): AgentRecord {
  const now = new Date(ctx.clock.now()).toISOString();
  return {
    agentId: ctx.config.agentId,
    agentType: ctx.config.agentType,
    status: 'idle',
    startedAt: ctx.startedAt,
    lastHeartbeatAt: now,
    runtime: ctx.config.runtime,
    health: health(ctx),
    tasksCompleted: ctx.metrics.completed,
    tasksFailed: ctx.metrics.failed,
    idleSince: new Date(ctx.idleSince).toISOString(),
    ...(ctx.directQueueUrl ? { directQueueUrl: ctx.directQueueUrl } : {}),
    ...(ctx.recentKeys.length ? { recentKeys: ctx.recentKeys } : {}),
    running: ctx.runs.size,
  };
}

/** One heartbeat; `onTerminated` stops the worker when the layer has written the agent off. */
export async function heartbeat(ctx: WorkerContext, onTerminated: () => void): Promise<void> {
  await ctx.resources.sample().catch((err: unknown) => ctx.warnSparse('resources', 'could not sample the agent\'s resources', err));
  const first = [...ctx.runs][0];
  const status = agentStatus(ctx);
  const current = await ctx.deps.agents.heartbeat(ctx.config.agentId, {
    status,
    idleSince: status === 'idle' ? new Date(ctx.idleSince).toISOString() : undefined,
    // `<executionId>/<taskId>`: task ids are unique only within their execution.
    currentTaskId: first ? `${first.msg.executionId}/${first.task.taskId}` : undefined,
    health: health(ctx),
    tasksCompleted: ctx.metrics.completed,
    tasksFailed: ctx.metrics.failed,
    preemptible: lowPriorityRuns(ctx).length > 0 ? true : undefined,
    running: ctx.runs.size,
  });
  if (current?.yieldRequestedAt && !ctx.stopping) await yieldLowPriority(ctx);
  if (!current && !ctx.stopping) {
    const record = await ctx.deps.agents.get(ctx.config.agentId);
    if (!record) {
      await ctx.deps.agents.put({ ...agentRecord(ctx), status: agentStatus(ctx) });
    } else if (record.status === 'terminated') {
      // The layer has written this agent off (and may have replaced it): stop, handing work back.
      ctx.log.warn('the agent record says terminated; stopping');
      onTerminated();
    }
  }
}

// ---- preemption --------------------------------------------------------------------------------

function lowPriorityRuns(ctx: WorkerContext): Run[] {
  return [...ctx.runs].filter((r) => r.task.priority === 'low' && r.phase === 'running' && !r.end);
}

/**
 * The design's preemption: high-priority work waits and the pool is at its max, so the pool
 * manager asked this agent to give way. Its low-priority runs are handed back, checkpointed like a
 * stop's, and resume later from where they were; the freed slots poll the high queue first.
 */
async function yieldLowPriority(ctx: WorkerContext): Promise<void> {
  // One run per request: the pool manager asks once per waiting high-priority task.
  const run = lowPriorityRuns(ctx)[0];
  if (run) {
    run.log.info('yielding a low-priority task to high-priority work');
    handBack(run);
  }
  await ctx.deps.agents.clearYield(ctx.config.agentId);
}
