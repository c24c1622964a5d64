// The runtime port: how the pool manager starts and stops agents. ECS on AWS (core/aws/ecs-runtime.ts),
// worker processes locally (local/process-runtime.ts).
import type { AgentType } from './agent-types.ts';
import type { AgentRecord, AgentRuntimeRef } from './records.ts';

export interface AgentRuntime {
  /** Starts `count` agents of a type; the runtime names them (the worker takes that id). */
  start(agentType: AgentType, count: number): Promise<{ agentId: string; runtime: AgentRuntimeRef }[]>;
  /** Stops an agent: graceful lets its current task finish or hands it back. */
  stop(agent: Pick<AgentRecord, 'agentId' | 'agentType' | 'runtime'>, graceful: boolean): Promise<void>;
  /** Whether the runtime still runs this agent (a process alive, an ECS task not STOPPED). */
  isAlive(runtime: AgentRuntimeRef): Promise<boolean>;
}

let registered: AgentRuntime | undefined;

/** The embedded local layer registers its process runtime here; handlers pick it up in process. */
export function registerRuntime(runtime: AgentRuntime | undefined): void {
  registered = runtime;
}

export function registeredRuntime(): AgentRuntime | undefined {
  return registered;
}
