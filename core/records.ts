// What the layer keeps in its tables. Every write is a single-item conditional write: no
// transactions (dynalite has none, and the protocol does not need them).
import type { AgentType, Priority } from './agent-types.ts';
import type { ErrorSource, ErrorType, TaskError } from './errors.ts';
import type { Pattern, Task } from './plan.ts';

export type ExecutionStatus = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';
export type TaskStatus = 'pending' | 'queued' | 'running' | 'completed' | 'failed' | 'skipped';
export type AgentStatus = 'starting' | 'idle' | 'busy' | 'draining' | 'unhealthy' | 'terminated';

/** A value kept inline when small, or in the bucket (claim-check) when not. */
export type Stored<T> = { inline: T } | { key: string; bytes: number };

export interface StageLayout {
  name: string;
  /** Task indexes [from, to) of this stage; non-pipeline plans have one unnamed stage. */
  from: number;
  to: number;
}

export interface ExecutionRecord {
  executionId: string;
  name: string;
  pattern: Pattern;
  status: ExecutionStatus;
  planHash: string;
  /** The whole plan, as submitted with defaults applied, lives in the bucket. */
  planKey: string;
  input: Stored<Record<string, unknown>>;
  maxConcurrency: number;
  stages: StageLayout[];
  taskCount: number;
  /**
   * Set when a "stop" task failed, or a task's escalation said `fail-execution` (`escalated`):
   * tasks not yet claimed are skipped, and an escalation also cancels the running ones.
   */
  stopping?: { taskId: string; stage: string; escalated?: boolean };
  startedAt: string;
  stoppedAt?: string;
  /** Why the execution ended other than by its tasks (aborted, layer stopped, workflow error). */
  message?: string;
  /** The plan's `limits.maxBudgetUsd`. */
  budgetUsd?: number;
  /** What its tasks have recorded spending (USD), added as each run ends. */
  spentUsd?: number;
  /** When Gate first refused a task because the budget was spent (the budget.spent event's guard). */
  budgetSpentAt?: string;
  result?: { status: 'completed' | 'failed'; stage?: string };
  /**
   * Which workflow run (Step Functions execution) is the current one: 0 (or absent) is the first,
   * named after the executionId; a resume or a redrive starts run n, named `<executionId>-r<n>`.
   * Status events of any other run are ignored.
   */
  workflowRun?: number;
  /** When the layer last resumed it after a restart (local mode). */
  resumedAt?: string;
  /** When it was last redriven. */
  redrivenAt?: string;
  /** Per agent type, the tasks its workflow dispatches at once (core/demand.ts): the pool starts agents for them early. */
  demand?: Partial<Record<AgentType, number>>;
}

/** The Step Functions execution name of an execution's workflow run. */
export function workflowRunName(executionId: string, run = 0): string {
  return run === 0 ? executionId : `${executionId}-r${run}`;
}

/** The run a workflow run's name stands for, given its execution's id; undefined for another execution's. */
export function workflowRunOfName(executionId: string, name: string): number | undefined {
  if (name === executionId) return 0;
  const parsed = parseWorkflowRunName(name);
  return parsed?.executionId === executionId ? parsed.run : undefined;
}

/** The execution id and run a workflow run's name stands for (a name without `-r<n>` is run 0). */
export function parseWorkflowRunName(name: string): { executionId: string; run: number } | undefined {
  const m = /^(.+)-r([1-9]\d{0,5})$/.exec(name);
  return m ? { executionId: m[1]!, run: Number(m[2]) } : undefined;
}

export interface TaskCost {
  usd: number;
  inputTokens: number;
  outputTokens: number;
  turns: number;
}
export interface Artifact {
  name: string;
  uri: string;
  bytes: number;
}

export interface TaskRecord {
  executionId: string;
  index: number;
  taskId: string;
  stage: number;
  agentType: AgentType;
  priority: Priority;
  timeoutSeconds: number;
  failureStrategy: 'stop' | 'continue';
  /** Set with a failure that no workflow run may dispatch again (failTask, a cancel); a redrive clears it. */
  finalFailure?: boolean;
  /** The task's recovery overrides, kept beside the definition so Recover needs no bucket read. */
  recovery?: Task['recovery'];
  /** The circuit breaker keys the task needs closed (core/breakers.ts breakerKeysFor), so Gate needs no bucket read. */
  breakers?: string[];
  /** The task's `cache` (core/result-cache.ts), so Gate and the agent need no bucket read to know it. */
  cache?: Task['cache'];
  /** Its cache key when known at submit (no repository or a pinned commit): Gate looks it up. */
  cacheKey?: string;
  /** Its affinity key (Task.affinity, else the workspace repository): Gate prefers an agent that ran it lately. */
  affinity?: string;
  /** Completed from the result of this earlier run (no agent ran it). */
  cachedFrom?: { executionId: string; taskId: string };
  definition: Stored<Task>;
  status: TaskStatus;
  /** How many times an agent started the task (claims), retries and re-deliveries included. */
  attempts: number;
  /** Bumped by each dispatch; a message carrying another value is stale or forged and is dropped. */
  dispatchSeq: number;
  /** Retries taken so far, per error type. */
  retries: Partial<Record<ErrorType, number>>;
  agentId?: string;
  claimId?: string;
  leaseExpiresAt?: number;
  startedAt?: string;
  /** Epoch ms when the current dispatch's message was sent (startedAt - dispatchedAt: queue time). */
  dispatchedAt?: number;
  finishedAt?: string;
  durationMs?: number;
  output?: Stored<Record<string, unknown>>;
  error?: TaskError;
  cost?: TaskCost;
  artifacts?: Artifact[];
  /** Saved by an agent that handed the task back (SIGTERM): the next attempt resumes from it. */
  checkpoint?: TaskCheckpoint;
  /** While it runs: what a Claude Code run has spent so far, written with each lease renewal. */
  progress?: TaskProgress;
  /** One entry per attempt that ended (failed, or handed back), oldest first; a completed one is derived. */
  attemptLog?: AttemptLogEntry[];
  /** The task ran on its recovery's fallback agent type (`agentType` is that type now). */
  fallbackFrom?: AgentType;
  /** The failure a fallback (a default output, a skip) stood in for. */
  recoveredBy?: { action: 'default-output' | 'skip'; error: TaskError };
  /** Why the task was skipped (a stop, a cancel, a fallback). */
  skipReason?: string;
  /** How often an open breaker made the task wait (its recovery's `onOpen: "wait"`). */
  breakerWaits?: number;
  /** Set by the dead-letter sweep when it failed this dispatch because its message reached the DLQ. */
  deadLetter?: DeadLetterMark;
}

/** What one attempt of a task did: TaskResult.attemptLog. */
export interface AttemptLogEntry {
  /** The task's attempts count at that run (1 for the first claim). */
  attempt: number;
  agentId?: string;
  agentType: AgentType;
  startedAt?: string;
  finishedAt: string;
  status: 'completed' | 'failed' | 'handed-back';
  errorType?: ErrorType;
  source?: ErrorSource;
  message?: string;
  /** What recovery did next: another attempt after `delaySeconds`, the fallback, or nothing more. */
  next?: 'retry' | 'fallback' | 'none';
  delaySeconds?: number;
}

/** The dead-letter sweep's mark on a task whose dispatch it failed (core/dead-letters.ts). */
export interface DeadLetterMark {
  dispatchSeq: number;
  /** The task queue (`<type>-<priority>`) whose DLQ held the message. */
  queue: string;
  messageId: string;
  /** How many times the task queue had delivered the message. */
  receiveCount: number;
  at: string;
}

export interface TaskProgress extends TaskCost {
  /** When the agent wrote it. */
  at: string;
}

/**
 * The design's SaveState: what a run that was handed back leaves for the next attempt. The
 * tarball in the bucket holds the workspace's changes and the Claude Code session's transcript.
 */
export interface TaskCheckpoint {
  key: string;
  bytes: number;
  /** The attempt that saved it. */
  attempt: number;
  savedAt: string;
  /** The Claude Code session to resume, when the run was a claude-code one. */
  sessionId?: string;
}

export interface HealthMetrics {
  cpu: number;
  memory: number;
  responseTime: number;
  errorRate: number;
  taskSuccessRate: number;
}

/**
 * What an agent uses (the design's Resource Monitor: cpu, memory, network, disk), sampled at each
 * heartbeat by agent/resources.ts. Rates are over the interval since the previous sample.
 */
export interface ResourceUsage {
  at: string;
  /**
   * Where the figures come from: the ECS task metadata endpoint's stats (the whole Fargate task), the
   * agent's cgroup (a container), or /proc (a worker process and the commands it runs).
   */
  source: 'ecs-task-metadata' | 'cgroup' | 'proc';
  /** Percent of one vCPU (200 = two cores busy). */
  cpuPercent: number;
  memoryBytes: number;
  /** The agent's memory limit (the task's or the container's); the machine's memory for a process. */
  memoryLimitBytes?: number;
  /**
   * Cumulative bytes and rates. `scope` says whose traffic it is: the task's or container's own
   * interface, or the host's whole network namespace (a worker process has none of its own).
   */
  network?: { rxBytes: number; txBytes: number; rxBytesPerSecond: number; txBytesPerSecond: number; scope: 'task' | 'container' | 'host' };
  /** Block I/O, cumulative and rates (for /proc: of the processes alive at the sample). */
  disk?: { readBytes: number; writeBytes: number; readBytesPerSecond: number; writeBytesPerSecond: number };
}

/** One point of an agent's short resource history (the last samples, one per heartbeat). */
export interface ResourcePoint {
  at: string;
  cpuPercent: number;
  memoryBytes: number;
  rxBytesPerSecond?: number;
  txBytesPerSecond?: number;
  diskBytesPerSecond?: number;
}

export type AgentRuntimeRef =
  | { kind: 'process'; pid: number }
  | { kind: 'ecs'; taskArn: string }
  | { kind: 'docker' | 'containerd'; containerId: string }
  | { kind: 'kubernetes'; namespace: string; name: string };

export interface AgentRecord {
  agentId: string;
  agentType: AgentType;
  status: AgentStatus;
  currentTaskId?: string;
  startedAt: string;
  lastHeartbeatAt: string;
  runtime: AgentRuntimeRef;
  health: {
    overall: 'healthy' | 'degraded' | 'unhealthy' | 'unknown';
    metrics: HealthMetrics;
    lastCheck: string;
    /** What is wrong, by check (core/health.ts). */
    issues?: HealthIssue[];
    /** The latest resource sample (cpu, memory, network, disk). */
    resources?: ResourceUsage;
    /** The last samples, oldest first (agent/resources.ts RESOURCE_HISTORY of them). */
    history?: ResourcePoint[];
  };
  /** Health checks in a row that found the agent unhealthy (the monitor replaces it at its limit). */
  healthStrikes?: number;
  /** Why the layer set the status it has (unhealthy, drained). */
  statusReason?: string;
  /** The agent runs a low-priority task that high-priority work could take its place from. */
  preemptible?: boolean;
  /** The pool manager asks the agent to hand its low-priority runs back (checkpointed) for high-priority work. */
  yieldRequestedAt?: string;
  tasksCompleted?: number;
  tasksFailed?: number;
  /**
   * The agent's own queue (core/agent-types.ts directQueueName): Gate sends a task there when this
   * agent ran its affinity key lately; the agent polls it first.
   */
  directQueueUrl?: string;
  /** The affinity keys of the agent's last runs, most recent last (core/affinity.ts RECENT_KEYS of them). */
  recentKeys?: string[];
  /** Tasks running at the last heartbeat (or key write): Gate prefers the least loaded. */
  running?: number;
  /** Since when an idle agent has had nothing to do (its last task's end, or its start). */
  idleSince?: string;
}

export interface PoolBounds {
  agentType: AgentType;
  min: number;
  max: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';
export interface BreakerRecord {
  key: string;
  state: BreakerState;
  failures: number;
  openedAt?: string;
  /** Holder of the single half-open probe, won by a conditional write. */
  probeId?: string;
  /** The latest failure. */
  lastFailureAt?: string;
  /** Closed: the epoch ms of the failures within the policy's window (at most its threshold). */
  failureTimes?: number[];
  /** Open or half-open: probes that failed since it opened (each doubles the cooldown). */
  reopens?: number;
  /** Open: the end of its cooldown; half-open: when the out probe counts as lost. */
  nextProbeAt?: string;
  version: number;
}

/** The queue message of a dispatch: ids and the token only (the task itself is in the table). */
export interface DispatchMessage {
  executionId: string;
  taskIndex: number;
  dispatchSeq: number;
  dispatchTimeoutSeconds: number;
  taskToken: string;
  /** This run is a half-open breaker's probe: its outcome closes or reopens the breaker. */
  probe?: boolean;
  /**
   * The breaker keys this run's success is reported to (recordSuccess): those Gate found with
   * failures, and those it probes. Absent in messages from before it existed: `probe` then means
   * the agent type's key.
   */
  breakers?: string[];
}

/** What an agent reports with SendTaskSuccess: small, the output itself is in the table. */
export interface TaskOutcome {
  status: 'completed' | 'skipped';
  attempts: number;
}

/** A pool's smoothed arrival rate per agent type (`P#<type>`/`ESTIMATE` in the agents table; core/pool.ts). */
export interface ArrivalEstimate {
  /** Epoch ms of the round that made it. */
  at: number;
  /** Queued + running + finished tasks at that round: the next round's arrivals are the growth. */
  seen: number;
  ratePerSecond: number;
  /** Tasks finished and running at that round: with the next round's, the busy time and completions between. */
  finished?: number;
  inFlight?: number;
  /** Task-seconds run and tasks finished, decayed with a 30 min half-life: their ratio is the mean task duration. */
  busySeconds?: number;
  completions?: number;
}

export type HealthCheckType = 'heartbeat' | 'capability' | 'performance' | 'resource';

/** One thing wrong with an agent, by check (core/health.ts grades them). */
export interface HealthIssue {
  check: HealthCheckType;
  severity: 'warning' | 'critical';
  message: string;
}
