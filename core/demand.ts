// The demand hint: what a plan will put on the queues as soon as its workflow starts, recorded with
// the execution when it is submitted (in the same write), so the pool manager can start agents for
// it before the tasks reach a queue: a cold start on Fargate takes about a minute.
import type { AgentType } from './agent-types.ts';
import type { Plan } from './plan.ts';

export type Demand = Partial<Record<AgentType, number>>;

/** How long after its submission an execution's hint counts; by then its tasks are queued (or running) and the backlog shows them. */
export const DEMAND_HINT_SECONDS = 120;

/**
 * Per agent type, the tasks the plan's workflow dispatches at once: a parallel plan's up to its
 * maxConcurrency, a sequential plan's first task, a pipeline's first stage.
 */
export function planDemand(plan: Plan): Demand {
  const tasks = plan.pattern === 'pipeline' ? plan.stages[0]!.tasks : plan.pattern === 'sequential' ? plan.tasks.slice(0, 1) : plan.tasks;
  const cap = plan.pattern === 'parallel' ? plan.maxConcurrency : Infinity;
  const out: Demand = {};
  for (const task of tasks) out[task.agentType] = Math.min(cap, (out[task.agentType] ?? 0) + 1);
  return out;
}

/** The hints of the executions submitted within DEMAND_HINT_SECONDS that are still running, summed per type. */
export async function recentDemand(
  executions: { recentDemands(sinceIso: string): Promise<Demand[]> },
  now: number,
): Promise<Demand> {
  const out: Demand = {};
  for (const demand of await executions.recentDemands(new Date(now - DEMAND_HINT_SECONDS * 1000).toISOString())) {
    for (const [type, n] of Object.entries(demand) as [AgentType, number][]) out[type] = (out[type] ?? 0) + n;
  }
  return out;
}
