// A fallback agent type: each task fails transiently (exit 75) on every attempt its retries allow on
// `integration`, then runs once more on its recovery's fallback type, `monitor`, and completes there.
// Expected: completed, 3 attempts (two on integration, the fallback on monitor), an attemptLog that
// says so, fallbackFrom integration, the agentId of a monitor agent, started three times, committed
// once by the fallback run.
//
// `monitor` is the fail-execution case's agent type; cases run one after another, so this case sizes
// monitor's pool for itself and leaves it at 0..0 as it found it.
import type { TaskCheck } from '../account.ts';
import { type ReliabilityCase, sizePool, submit, tallyExecution, trialTaskId } from '../suite.ts';

const TYPE = 'integration';
const FALLBACK = 'monitor';
const RETRIES = 1;

/** The attempt log as `<attempt>:<agentType>:<status>[:<errorType>:<next>]`, space-separated. */
export const attemptTrail = (task: any) =>
  ((task.attemptLog ?? []) as any[]).map((e) => `${e.attempt}:${e.agentType}:${e.status}${e.errorType ? `:${e.errorType}:${e.next}` : ''}`).join(' ');

export const fallbackAgentType: ReliabilityCase = {
  name: 'fallback-agent-type',
  cheap: true,
  breaker: { failureThreshold: 1_000_000 },
  agentType: TYPE,
  slots: 8,
  trials: (mode) => (mode === 'full' ? 100 : 20),
  async run(ctx) {
    try {
      await ctx.agents(2);
      await sizePool(ctx.layer, FALLBACK, 2);

      const ids = Array.from({ length: ctx.trials }, (_, i) => trialTaskId(i));
      // Fails on every attempt its retries allow; the fallback run is attempt RETRIES + 2.
      const failOnIntegration = `if [ "$XL_ATTEMPT" -le ${RETRIES + 1} ]; then echo "no ${TYPE} agent can do this" >&2; exit 75; fi`;
      const executionId = await submit(ctx.layer, {
        pattern: 'parallel',
        maxConcurrency: ctx.trials,
        tasks: ids.map((id) => ({
          id,
          agentType: TYPE,
          command: ctx.ledger.command(id, failOnIntegration),
          recovery: { transient: { maxRetries: RETRIES, backoff: { strategy: 'fixed', baseSeconds: 1, jitter: 'none' }, fallback: { action: 'agent-type', agentType: FALLBACK } } },
        })),
      });

      const typeOf = new Map<string, string>();
      const agentTypeOf = async (agentId: string) => {
        if (!typeOf.has(agentId)) {
          for (const a of (await ctx.layer.request('GET', '/agents')).body.items) typeOf.set(a.agentId, a.agentType);
        }
        return typeOf.get(agentId);
      };
      const trail = `1:${TYPE}:failed:transient:retry 2:${TYPE}:failed:transient:fallback 3:${FALLBACK}:completed`;
      const checks: TaskCheck[] = [
        (task) => (attemptTrail(task) === trail ? undefined : `attemptLog [${attemptTrail(task)}], expected [${trail}]`),
        (task) => (task.fallbackFrom === TYPE ? undefined : `fallbackFrom ${JSON.stringify(task.fallbackFrom)}, expected ${TYPE}`),
        (_task, entry) => (entry.starts.map((s) => s.attempt).join(',') === '1,2,3' ? undefined : `started as attempts [${entry.starts.map((s) => s.attempt).join(',')}], expected [1,2,3]`),
        (_task, entry) => (entry.commits.join(',') === '3' ? undefined : `committed by attempts [${entry.commits.join(',')}], expected [3]`),
      ];
      const tally = await tallyExecution(ctx, executionId, 'SUCCEEDED', ids.map((taskId) => ({ taskId, status: 'completed', attempts: RETRIES + 2, commits: 1, checks })), 120_000 + ctx.trials * 2_000);

      // The completing agent, and the agents of the failed attempts, are of the types the log says.
      for (const task of tally.execution.tasks ?? []) {
        const where = `${executionId}/${task.taskId}`;
        const ran = await agentTypeOf(task.agentId);
        if (ran !== FALLBACK) tally.failures.push(`${where}: completed by ${task.agentId}, an agent of type ${ran}, expected ${FALLBACK}`);
        for (const e of task.attemptLog ?? []) {
          const of = await agentTypeOf(e.agentId);
          if (of !== e.agentType) tally.failures.push(`${where}: attempt ${e.attempt} ran on ${e.agentId} (${of}), though the log says ${e.agentType}`);
        }
      }
      const ms = Date.parse(tally.execution.stoppedAt) - Date.parse(tally.execution.startedAt);
      return { ...tally, notes: `${ctx.trials} tasks in one plan, ${RETRIES + 1} failed attempts on ${TYPE} then ${FALLBACK}, ${(ms / 1000).toFixed(1)} s` };
    } finally {
      await sizePool(ctx.layer, FALLBACK, 0).catch(() => undefined);
    }
  },
};
