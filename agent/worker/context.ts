// What every phase of a task's way through an agent shares: the worker's ports (its config and the
// services it is handed), the run in flight, and the state the phases read and write. The phases
// (poll.ts → claim.ts → run.ts → report.ts, with lease.ts beside a running task and agent-record.ts
// on a timer) are functions of this context; agent/worker.ts owns its lifecycle.
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SFNClient } from '@aws-sdk/client-sfn';
import type { AgentType } from '../../core/agent-types.ts';
import type { AgentStore } from '../../core/aws/agent-store.ts';
import type { ExecutionStore } from '../../core/aws/execution-store.ts';
import type { PayloadStore } from '../../core/aws/payload-store.ts';
import type { CircuitBreaker } from '../../core/breakers.ts';
import type { HealthIssue } from '../../core/health.ts';
import type { MetricsSink } from '../../core/metrics.ts';
import type { AgentRuntimeRef, DispatchMessage, TaskCheckpoint, TaskCost, TaskRecord } from '../../core/records.ts';
import type { AgentCalls } from '../agent-calls.ts';
import type { Checkpoints } from '../checkpoint.ts';
import type { MessageCustody } from '../custody.ts';
import type { DriverRegistry } from '../drivers/types.ts';
import type { WorkspaceGit } from '../engines/workspace-git.ts';
import type { Metrics } from '../metrics.ts';
import type { ResourceMonitor, Sampler } from '../resources.ts';
import type { PgidFile } from '../pgid-file.ts';
import type { Workspaces } from '../workspace.ts';

// ---- ports --------------------------------------------------------------------------------------

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A logger that adds `fields` to every line (a line's own fields win). */
export function childLogger(log: Logger, fields: Record<string, unknown>): Logger {
  return {
    debug: (m, f) => log.debug(m, { ...fields, ...f }),
    info: (m, f) => log.info(m, { ...fields, ...f }),
    warn: (m, f) => log.warn(m, { ...fields, ...f }),
    error: (m, f) => log.error(m, { ...fields, ...f }),
  };
}

export interface Clock {
  now(): number;
}

export interface WorkerConfig {
  agentId: string;
  agentType: AgentType;
  /** Task slots in this process: never more messages in flight than this. */
  slots: number;
  /** Queue URL up to and including `<stack>-`; the key (`<type>-<priority>`) completes it. */
  queueUrlPrefix: string;
  /** XL_HEARTBEAT_SECONDS / 3, in ms. Lease and message visibility last two of these. */
  heartbeatIntervalMs: number;
  /** How long a graceful stop lets running tasks finish before handing them back. */
  graceMs: number;
  /** What the agent found at start that it cannot do (agent/capabilities.ts), reported with its health. */
  capabilityIssues?: HealthIssue[];
  runtime: AgentRuntimeRef;
  /**
   * When set, the ids of the process groups the worker's tasks run in are kept in this file, one
   * decimal id per line ("<XL_RUN_DIR>/<agentId>.pgids"): appended when a group is spawned,
   * rewritten without it when it ends, removed when the worker stops. A supervisor that finds the
   * worker dead (SIGKILL, crash) kills each listed group (`kill -KILL -<pgid>`) so nothing a
   * command started outlives its agent. A line may name a group that has ended already.
   */
  pgidFile?: string;
  /**
   * Seconds after its receipt by which a running task's message is relayed as a fresh copy
   * (agent/custody.ts): SQS caps a message's visibility at 12 hours from its receipt, and the
   * contract allows 24-hour tasks. Default just under 12 hours (XL_VISIBILITY_CAP_SECONDS).
   */
  visibilityCapSeconds?: number;
  /**
   * Affinity (core/affinity.ts): the agent opens a direct queue of its own at start and polls it
   * first. Default true; false for an agent that must not create queues.
   */
  directQueue?: boolean;
  /** How long a task sent to this agent's direct queue may wait for a free slot before it goes back to its type's queue (ms; default 2000). */
  affinityWaitMs?: number;
  /** SQS calls batched (deletes and visibility changes coalesced, a prefetch of messages); XL_BATCH=0 turns it off. Default true. */
  batch?: boolean;
}

export interface WorkerDeps {
  executions: Pick<
    ExecutionStore,
    'claimTask' | 'renewLease' | 'handBack' | 'finishClaim' | 'addSpend' | 'getExecution' | 'getTask' | 'listTasks' | 'getCachedResult' | 'putCachedResult'
  >;
  payloads: Pick<PayloadStore, 'load' | 'store' | 'putBytes' | 'uri'>;
  agents: Pick<AgentStore, 'put' | 'get' | 'heartbeat' | 'setStatus' | 'clearYield'> & Partial<Pick<AgentStore, 'setRecentKeys'>>;
  breaker: Pick<CircuitBreaker, 'recordSuccess'>;
  sqs: SQSClient;
  sfn: SFNClient;
  drivers: DriverRegistry;
  workspaces: Pick<Workspaces, 'create' | 'remove'>;
  /** Clones a task's `workspace.repository` and keeps its changes; without it such tasks fail. */
  git?: WorkspaceGit;
  /** Saves a handed-back run's state and restores it for the next attempt; without it, retries start afresh. */
  checkpoints?: Checkpoints;
  clock?: Clock;
  log?: Logger;
  /** Tasks started, completed and failed (by error type), queue wait, duration and cost (core/metrics.ts). */
  metrics?: MetricsSink;
  /** Where resource figures come from (agent/resources.ts samplerFor); default: by the environment. */
  resourceSampler?: Sampler;
}

// ---- a run: one claimed task in this agent -------------------------------------------------------

/** How a run ended without a result of ours: its claim was lost, or it is handed back. */
export type RunEnd = 'lost' | 'handback';

export interface Run {
  msg: DispatchMessage;
  /** The worker's logger with the run's ids on every line (the agent's id is on the worker's). */
  log: Logger;
  queueUrl: string;
  /** The message this run holds; none once it was relayed (past the visibility cap). */
  receipt?: string;
  body: string;
  /** When the receive that got the message was sent (the visibility cap counts from the receipt). */
  receivedAt: number;
  dispatchedAt?: number;
  claimId: string;
  task: TaskRecord;
  claimedAt: number;
  /** finishing: the driver is done; the engines, the collection and the transcript are under way. */
  phase: 'preparing' | 'running' | 'finishing' | 'reporting';
  end?: RunEnd;
  abort: AbortController;
  pgids: Set<number>;
  timer?: NodeJS.Timeout;
  ticking: boolean;
  /** When the driver started and ended (for the phase timings of the "task finished" line). */
  ranFrom?: number;
  ranTo?: number;
  /** When the claim's write came back. */
  claimed?: number;
  /** What the driver learnt as it ran: the Claude Code session id (for a checkpoint) and the cost so far. */
  session: { id?: string; cost?: TaskCost };
  /** Saved when the run is handed back; goes onto the task's record with the hand-back. */
  checkpoint?: TaskCheckpoint;
  /** The task's result-cache key (core/result-cache.ts): a completed run is stored under it. */
  cacheKey?: string;
}

// ---- the shared context ---------------------------------------------------------------------------

export interface WorkerContext {
  readonly config: WorkerConfig;
  readonly deps: WorkerDeps;
  readonly log: Logger;
  readonly clock: Clock;
  /** The layer's task metrics (CloudWatch on AWS). */
  readonly taskMetrics: MetricsSink;
  /** The agent's own health figures (its record's `health.metrics`). */
  readonly metrics: Metrics;
  /** What the agent uses (cpu, memory, network, disk), sampled at each heartbeat. */
  readonly resources: ResourceMonitor;
  /** Reports to Step Functions and message deletes: AWS calls that must not throw. */
  readonly calls: AgentCalls;
  readonly custody: MessageCustody;
  readonly pgids: PgidFile | undefined;
  /** Two heartbeat intervals: a lease, and a received message's visibility. */
  readonly leaseMs: number;
  readonly visibilitySeconds: number;
  /** A relayed copy comes back after as long as a visibility timeout would have kept the message away. */
  readonly relayDelaySeconds: number;
  /** When the agent started (its record's `startedAt`). */
  readonly startedAt: string;
  /** The runs in flight. */
  readonly runs: Set<Run>;
  /** The worker takes no more work. */
  stopping: boolean;
  /** A stop hands running work back: a claim that lands after it is handed back at once. */
  handingBack: boolean;
  /** When the last task ended (or the agent started): the pool manager drains long-idle agents. */
  idleSince: number;
  /** The agent's direct queue, once opened (affinity). */
  directQueueUrl?: string;
  /** The affinity keys of its last runs, most recent last (on its record: Gate reads them). */
  recentKeys: string[];
  /** At most one line per kind of trouble every 30 s; the kinds seen lately count against health. */
  warnSparse(kind: string, msg: string, err: unknown): void;
  /** When each kind of trouble was last seen. */
  readonly lastWarned: ReadonlyMap<string, number>;
  sleep(ms: number): Promise<void>;
  /** A sleep that a stop cuts short. */
  pause(ms: number): Promise<void>;
  /** Removes a run's directory in the background; a stop waits for it a little. */
  removeLater(dir: string): void;
}
