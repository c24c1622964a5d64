// Affinity scheduling (the design's Affinity Scheduling and Load Balancer): a task goes to an agent
// of its type that recently ran the same affinity key (CONTRACT.md: Task.affinity, by default the
// workspace repository), so its warm mirror and caches serve it.
//
// SQS cannot address one consumer, so each agent has a direct queue of its own
// (agent-types.ts directQueueName), which it polls before its type's queues. Gate sends a task
// there when such an agent is alive (heartbeat within the span) and not draining; the agent takes
// it into a free slot, or, when none frees within a short wait, sends it back to its type's queue
// (agent/worker/poll.ts). An agent that drains moves what is left in its direct queue back too; one
// that dies leaves it until the dispatch times out, and Recover dispatches it again to the type's
// queue (it is still `queued`, which never counts as an attempt).
import type { AgentType } from './agent-types.ts';
import type { AgentRecord } from './records.ts';

/** How many recent keys an agent keeps on its record (most recent last). */
export const RECENT_KEYS = 8;

export interface AffinityAgents {
  list(type: AgentType): Promise<AgentRecord[]>;
}

/**
 * The agent to prefer for a key: alive, idle or busy (a busy one may have a free slot; if not, it
 * sends the task back within its short wait), holding the key among its recent ones; the idle one
 * first, then the least loaded (fewest tasks running), then the most recent to run the key.
 */
export function preferredAgent(agents: AgentRecord[], key: string, now: number, freshMs: number): AgentRecord | undefined {
  const candidates = agents.filter(
    (a) =>
      (a.status === 'idle' || a.status === 'busy') &&
      a.directQueueUrl !== undefined &&
      a.recentKeys?.includes(key) &&
      now - Date.parse(a.lastHeartbeatAt) <= freshMs,
  );
  const rank = (a: AgentRecord) => [a.status === 'idle' ? 0 : 1, a.running ?? (a.status === 'idle' ? 0 : 1), -(a.recentKeys!.lastIndexOf(key))];
  candidates.sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i]! - rb[i]!;
    return 0;
  });
  return candidates[0];
}

/** The keys with `key` last, at most RECENT_KEYS; undefined when `key` was the last one already. */
export function withRecentKey(keys: readonly string[], key: string): string[] | undefined {
  if (keys.at(-1) === key) return undefined;
  return [...keys.filter((k) => k !== key), key].slice(-RECENT_KEYS);
}
