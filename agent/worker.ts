// The agent worker: polls its agent type's queues, claims dispatched tasks with a lease, runs
// them through a driver in a fresh workspace, and reports to Step Functions (docs/design.md,
// "An agent's protocol"). Everything it talks to is injected, so tests hand in emulator-backed
// stores or fakes and the same class runs in the container and as a local worker process.
//
// Per task, on the happy path, the AWS calls are: ReceiveMessage (shared by up to `slots`
// messages), claim (UpdateItem), GetItem of the execution, finishClaim (UpdateItem),
// SendTaskSuccess/Failure and DeleteMessage. Long tasks add one lease renewal and one
// ChangeMessageVisibility per heartbeat interval. The agent record is written on a timer, never
// per task.
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SFNClient } from '@aws-sdk/client-sfn';
import { PRIORITIES, type AgentType, type Priority, queueKey } from '../core/agent-types.ts';
import type { AgentStore } from '../core/aws/agent-store.ts';
import type { ClaimResult, ExecutionStore } from '../core/aws/execution-store.ts';
import type { PayloadStore } from '../core/aws/payload-store.ts';
import { classifyAgentError } from '../core/classify.ts';
import { agentBreakerKey, type CircuitBreaker, successBreakerKeys } from '../core/breakers.ts';
import { assessHealth, type HealthIssue } from '../core/health.ts';
import { parseDispatch } from '../core/dispatch.ts';
import { mergeOutputs } from '../core/patterns.ts';
import { METRIC, METRIC_DIMENSION, type MetricsSink, noMetrics } from '../core/metrics.ts';
import type { Task } from '../core/plan.ts';
import type {
  AgentRecord,
  AgentRuntimeRef,
  AgentStatus,
  AttemptLogEntry,
  DispatchMessage,
  ExecutionRecord,
  Stored,
  TaskCheckpoint,
  TaskCost,
  TaskRecord,
} from '../core/records.ts';
import { AgentCalls, errorMessage, errorName, retry } from './agent-calls.ts';
import type { Checkpoints, RunDirs } from './checkpoint.ts';
import { DISPATCHED_AT_ATTRIBUTE, dispatchedAtOf, type HeldMessage, MAX_DELAY_SECONDS, MessageCustody } from './custody.ts';
import { claudeConfigDir, claudeProjectDir } from './drivers/claude-code.ts';
import { killProcessGroup } from './drivers/process.ts';
import { Metrics } from './metrics.ts';
import { PgidFile } from './pgid-file.ts';
import { type DriverRegistry, type DriverResult, driverNameFor } from './drivers/types.ts';
import { applyEngines } from './engines/index.ts';
import { prepareWorkspace, type WorkspaceGit } from './engines/workspace-git.ts';
import type { Workspaces } from './workspace.ts';

// ---- small ports ------------------------------------------------------------------------------

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
}

export interface WorkerDeps {
  executions: Pick<ExecutionStore, 'claimTask' | 'renewLease' | 'handBack' | 'finishClaim' | 'addSpend' | 'getExecution' | 'getTask' | 'listTasks'>;
  payloads: Pick<PayloadStore, 'load' | 'store' | 'putBytes' | 'uri'>;
  agents: Pick<AgentStore, 'put' | 'get' | 'heartbeat' | 'setStatus' | 'clearYield'>;
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
}

/** A Claude Code run's session transcript, kept as an artifact of its task. */
export const TRANSCRIPT_ARTIFACT = 'claude-transcript.jsonl';
/** Transcripts past this are cut to their last part (the end is where a run went wrong). */
const TRANSCRIPT_MAX_BYTES = 16 * 1024 * 1024;

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

/** Inputs (and pipeline `data` per stage) kept in memory. */
const INPUT_CACHE_SIZE = 64;
const LONG_POLL_SECONDS = 20;

// ---- the worker ---------------------------------------------------------------------------------

type RunEnd = 'lost' | 'handback';

interface Run {
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
}

/** A received message and when the receive was sent. */
type Received = Message & { receivedAt: number };

interface QueueRef {
  url: string;
  priority: Priority;
}

export class Worker {
  private readonly log: Logger;
  private readonly taskMetrics: MetricsSink;
  private readonly clock: Clock;
  private readonly queues: QueueRef[];
  private readonly leaseMs: number;
  private readonly visibilitySeconds: number;
  private readonly custody: MessageCustody;
  /** A relayed copy comes back after as long as a visibility timeout would have kept the message away. */
  private readonly relayDelaySeconds: number;

  private inFlight = 0;
  private readonly runs = new Set<Run>();
  private readonly longPolls = new Map<string, Promise<number>>();
  private readonly pollAbort = new AbortController();
  private slotWaiter: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];

  private started = false;
  private stopping = false;
  private handingBack = false;
  private stopPromise: Promise<void> | undefined;
  private forceStop: (() => void) | undefined;
  private wakeLoop: (() => void) | undefined;
  private readonly stopSignal: Promise<void>;
  private signalStop!: () => void;
  private loopDone: Promise<void> = Promise.resolve();
  private resolveDone!: () => void;
  /** Resolves when the worker has stopped (asked to, or because its record was terminated). */
  readonly done: Promise<void>;

  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeating = false;
  private readonly cleanups = new Set<Promise<void>>();
  private readonly inputs = new Lru<Record<string, unknown>>(INPUT_CACHE_SIZE);
  private readonly metas = new Lru<ExecutionRecord>(INPUT_CACHE_SIZE);
  private readonly metrics = new Metrics();
  private readonly pgids: PgidFile | undefined;
  private readonly startedAt: string;
  /** When the last task ended (or the agent started): the pool manager drains long-idle agents. */
  private idleSince: number;
  private readonly lastWarned = new Map<string, number>();
  /** Reports to Step Functions and message deletes: AWS calls that must not throw (agent/agent-calls.ts). */
  private readonly calls: AgentCalls;

  constructor(
    readonly config: WorkerConfig,
    private readonly deps: WorkerDeps,
  ) {
    if (!Number.isInteger(config.slots) || config.slots < 1) throw new Error(`slots must be a positive integer, got ${config.slots}`);
    this.log = deps.log ?? silentLogger;
    this.taskMetrics = deps.metrics ?? noMetrics;
    this.clock = deps.clock ?? { now: Date.now };
    this.queues = PRIORITIES.map((priority) => ({ url: config.queueUrlPrefix + queueKey(config.agentType, priority), priority }));
    this.leaseMs = 2 * config.heartbeatIntervalMs;
    this.visibilitySeconds = Math.max(1, Math.ceil(this.leaseMs / 1000));
    this.custody = new MessageCustody(deps.sqs, config.visibilityCapSeconds, this.log);
    this.calls = new AgentCalls(deps.sfn, deps.sqs, this.log, (kind, msg, err) => this.warnSparse(kind, msg, err));
    this.relayDelaySeconds = Math.min(MAX_DELAY_SECONDS, this.visibilitySeconds);
    this.pgids = config.pgidFile ? new PgidFile(config.pgidFile, (err: unknown) => this.warnSparse('pgid-file', 'could not write the pgid file', err)) : undefined;
    this.startedAt = new Date(this.clock.now()).toISOString();
    this.idleSince = this.clock.now();
    this.stopSignal = new Promise((resolve) => (this.signalStop = resolve));
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  /** Registers the agent (status idle) and starts polling. Retries the registration until it works. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        await this.deps.agents.put(this.agentRecord());
        break;
      } catch (err) {
        this.warnSparse('register', 'could not register the agent; retrying', err);
        await this.pause(Math.min(5000, 200 * 2 ** attempt));
      }
    }
    if (this.stopping) return;
    await this.pgids?.reset();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.config.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.loopDone = this.pollLoop();
    this.log.info('agent started', {
      agentType: this.config.agentType,
      slots: this.config.slots,
      heartbeatIntervalMs: this.config.heartbeatIntervalMs,
    });
  }

  /**
   * Stops taking work. Graceful: running tasks get `graceMs` to finish; then (or at once when not
   * graceful, or when stop is called again with graceful false) the remaining ones are handed back:
   * their process groups are killed, their lease is expired and their message made visible, so
   * another agent claims them at once. Then the agent record is marked terminated.
   */
  stop(opts: { graceful?: boolean } = {}): Promise<void> {
    const graceful = opts.graceful ?? true;
    if (!graceful) this.forceStop?.();
    this.stopPromise ??= this.shutdown(graceful);
    return this.stopPromise;
  }

  // ---- polling --------------------------------------------------------------------------------

  private get free(): number {
    return this.config.slots - this.inFlight;
  }

  /**
   * High before normal before low: short polls in priority order while they find messages; when
   * all are empty, one long poll per queue at once, taking what comes. A queue with a long poll
   * outstanding is not short-polled (a message arriving there goes to that poll).
   */
  private async pollLoop(): Promise<void> {
    let shortPoll = true;
    let failures = 0;
    while (!this.stopping) {
      try {
        if (this.free <= 0) {
          await this.waitForSlot();
          shortPoll = true;
          continue;
        }
        if (shortPoll) {
          let got = 0;
          for (const q of this.queues) {
            if (this.stopping || this.free <= 0) break;
            if (this.longPolls.has(q.url)) continue;
            const messages = await this.receive(q.url, 0, this.free);
            got += messages.length;
            this.accept(q.url, messages);
          }
          failures = 0;
          if (got > 0) continue;
        }
        for (const q of this.queues) if (!this.longPolls.has(q.url)) this.startLongPoll(q.url);
        const received = await Promise.race([...this.longPolls.values(), this.stopSignal.then(() => 0)]);
        shortPoll = received > 0;
      } catch (err) {
        if (this.stopping) break;
        failures++;
        this.warnSparse('receive', 'receiving messages failed; retrying', err);
        await this.pause(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  private startLongPoll(url: string): void {
    const poll = this.receive(url, LONG_POLL_SECONDS, Math.max(1, this.free), this.pollAbort.signal).then(
      (messages) => {
        this.longPolls.delete(url);
        this.accept(url, messages);
        return messages.length;
      },
      async (err) => {
        if (!this.stopping) {
          this.warnSparse('receive', 'long poll failed; retrying', err);
          await this.pause(1000);
        }
        this.longPolls.delete(url);
        return 0;
      },
    );
    this.longPolls.set(url, poll);
  }

  private async receive(url: string, waitSeconds: number, max: number, abortSignal?: AbortSignal): Promise<Received[]> {
    const receivedAt = this.clock.now();
    const res = await this.deps.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: Math.min(10, Math.max(1, max)),
        WaitTimeSeconds: waitSeconds,
        VisibilityTimeout: this.visibilitySeconds,
        // When the state machine sent it: the task record keeps it, for dispatch latency.
        MessageSystemAttributeNames: ['SentTimestamp'],
        // A relayed copy carries the first dispatch's send time (agent/custody.ts).
        MessageAttributeNames: [DISPATCHED_AT_ATTRIBUTE],
      }),
      abortSignal ? { abortSignal } : undefined,
    );
    return (res.Messages ?? []).map((m) => ({ ...m, receivedAt }));
  }

  /** Takes each message into a free slot; one that finds no free slot goes back at once. */
  private accept(url: string, messages: Received[]): void {
    for (const m of messages) {
      if (!m.ReceiptHandle) continue;
      if (this.stopping || this.inFlight >= this.config.slots) {
        void this.calls.changeVisibility(url, m.ReceiptHandle, 0);
        continue;
      }
      this.inFlight++;
      void this.handle(url, m).finally(() => {
        this.inFlight--;
        this.slotWaiter?.();
        if (this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private waitForSlot(): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.slotWaiter = undefined;
        this.wakeLoop = undefined;
        resolve();
      };
      this.slotWaiter = wake;
      this.wakeLoop = wake;
    });
  }

  // ---- one message ----------------------------------------------------------------------------

  private async handle(queueUrl: string, m: Received): Promise<void> {
    const receipt = m.ReceiptHandle!;
    const held: HeldMessage = { queueUrl, receipt, body: m.Body ?? '', receivedAt: m.receivedAt, dispatchedAt: dispatchedAtOf(m) };
    try {
      const msg = parseDispatch(m.Body);
      if (!msg) {
        this.log.warn('dropped a message that is not a dispatch', { queueUrl, messageId: m.MessageId });
        await this.calls.deleteMessage(queueUrl, receipt);
        return;
      }
      const claimId = randomUUID();
      const claimedAt = this.clock.now();
      let claim = await this.deps.executions.claimTask({
        executionId: msg.executionId,
        index: msg.taskIndex,
        dispatchSeq: msg.dispatchSeq,
        agentId: this.config.agentId,
        claimId,
        leaseMs: this.leaseMs,
        now: claimedAt,
        dispatchedAt: held.dispatchedAt,
      });
      if (!claim.claimed && claim.reason === 'held' && claim.task?.claimId === claimId) {
        // Our own write landed but its answer was lost (the SDK retried it and the retry found the
        // condition false): the claim is ours.
        claim = { claimed: true, task: claim.task };
      }
      if (!claim.claimed) {
        await this.notClaimed(held, msg, claim);
        return;
      }
      const run: Run = {
        msg,
        log: childLogger(this.log, {
          executionId: msg.executionId,
          index: msg.taskIndex,
          taskId: claim.task.taskId,
          attempt: claim.task.attempts,
          dispatchSeq: msg.dispatchSeq,
        }),
        queueUrl,
        receipt,
        body: held.body,
        receivedAt: held.receivedAt,
        dispatchedAt: held.dispatchedAt,
        claimId,
        task: claim.task,
        claimedAt,
        phase: 'preparing',
        abort: new AbortController(),
        pgids: new Set(),
        session: {},
        ticking: false,
        claimed: this.clock.now(),
      };
      this.runs.add(run);
      this.taskMetrics.add(METRIC.tasksStarted, 'Count', 1);
      // From the first dispatch's send (a relayed copy keeps it) to this claim.
      if (run.dispatchedAt) this.taskMetrics.add(METRIC.queueWait, 'Milliseconds', Math.max(0, claimedAt - run.dispatchedAt));
      run.timer = setInterval(() => void this.keepAlive(run), this.config.heartbeatIntervalMs);
      try {
        if (this.handingBack) {
          run.end = 'handback';
          await this.endWithoutReport(run);
        } else {
          await this.execute(run);
        }
      } finally {
        clearInterval(run.timer);
        this.runs.delete(run);
        if (this.runs.size === 0) this.idleSince = this.clock.now();
      }
    } catch (err) {
      // An AWS error outside the report path: the message comes back after its visibility timeout
      // and a held claim after its lease; nothing is lost, so log and carry on.
      this.warnSparse('handle', 'a message could not be handled; it will be delivered again', err);
    }
  }

  /** A message whose task this agent cannot claim. */
  private async notClaimed(held: HeldMessage, msg: DispatchMessage, claim: Extract<ClaimResult, { claimed: false }>) {
    const { queueUrl, receipt } = held;
    const ref = { executionId: msg.executionId, index: msg.taskIndex, taskId: claim.task?.taskId, dispatchSeq: msg.dispatchSeq };
    switch (claim.reason) {
      case 'unknown':
        // Not dispatched by the layer (put on the queue by hand): dropped, never run.
        this.log.warn('dropped a message for a task that does not exist', ref);
        await this.calls.deleteMessage(queueUrl, receipt);
        return;
      case 'stale':
        this.log.info('dropped a stale dispatch', { ...ref, current: claim.task?.dispatchSeq });
        await this.calls.deleteMessage(queueUrl, receipt);
        return;
      case 'held':
        // Another agent's live lease (a second delivery, or the holder's relay past the visibility
        // cap): it will report. This delivery goes back as a fresh copy that returns after a
        // visibility timeout, so a held task's message never piles up receives toward the DLQ, and
        // a copy is claimed soon after the holder dies (agent/custody.ts).
        this.log.debug('task is held by another agent', { ...ref, holder: claim.task?.agentId });
        await this.custody.relay(held, this.relayDelaySeconds);
        return;
      case 'finished': {
        // Reported before, perhaps without the report reaching Step Functions: say it again (a
        // closed token answers TaskTimedOut or InvalidToken, which is fine), then drop.
        const task = claim.task!;
        await this.reportRecorded(msg, task);
        this.log.debug('dropped a dispatch of a finished task', { ...ref, status: task.status });
        await this.calls.deleteMessage(queueUrl, receipt);
        return;
      }
    }
  }

  /** Tells Step Functions the outcome recorded on a finished task (a closed token is fine). */
  private async reportRecorded(msg: DispatchMessage, task: TaskRecord): Promise<void> {
    const ref = { executionId: msg.executionId, index: msg.taskIndex, dispatchSeq: msg.dispatchSeq };
    if (task.status === 'completed' || task.status === 'skipped') {
      await this.calls.sendSuccess(msg.taskToken, { status: task.status, attempts: task.attempts }, ref);
    } else if (task.status === 'failed' && task.error) {
      await this.calls.sendFailure(msg.taskToken, task.error, ref);
    }
  }

  private async execute(run: Run): Promise<void> {
    const { msg, task } = run;
    let result: DriverResult | undefined;
    let definition: Task | undefined;
    let skipping = false;
    try {
      // Only the execution's fixed parts are read here (its input, pattern, stages), so they are
      // cached. A stop or a cancel needs no check: it skips unclaimed tasks itself, so a claim
      // made after it fails (core/steps.ts Recover, ExecutionService.cancel).
      const execution = await this.executionMeta(msg.executionId);
      if (!execution) {
        skipping = true;
        await this.skipWithoutExecution(run);
        return;
      }
      definition = await this.deps.payloads.load(task.definition);
      // Its recovery's fallback moved it to this agent type: it runs as one (profile, engines).
      if (task.fallbackFrom) definition = { ...definition, agentType: task.agentType };
      const input = await this.inputFor(execution, task);
      if (run.end) return await this.endWithoutReport(run);
      const driver = this.deps.drivers[driverNameFor(definition)];
      if (!driver) {
        result = {
          status: 'failed',
          error: { type: 'permanent', source: 'agent', message: `this agent has no ${driverNameFor(definition)} driver` },
        };
      } else {
        run.phase = 'running';
        const workspace = await this.deps.workspaces.create(task.taskId);
        // The run's HOME, beside the workspace (not in it): Claude Code's sessions and settings.
        const home = `${workspace}.home`;
        const ownHome = driver.name === 'claude-code'; // a command's HOME is its workspace
        let privateDir: string | undefined;
        try {
          if (ownHome) await mkdir(home, { mode: 0o700 });
          // The task's repository is cloned first; a clone that fails is the task's result.
          const prepared = await prepareWorkspace(this.deps.git, definition, workspace);
          privateDir = prepared.checkout?.privateDir;
          const dirs = { workspace, home, ...(prepared.checkout ? { checkout: prepared.checkout } : {}) };
          // A run handed back earlier left its state: this attempt continues from it.
          const restored = prepared.failed ? {} : await this.restore(run, dirs);
          const onSpawn = (pgid: number) => {
            run.pgids.add(pgid);
            this.pgids?.add(pgid);
            if (run.end) killProcessGroup(pgid); // lost or handed back while it was starting
          };
          run.ranFrom = this.clock.now();
          result = prepared.failed ?? restored.failed ?? await driver.run(definition, {
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
          if (run.end === 'handback') await this.saveCheckpoint(run, dirs);
          // The engines (code checks, generated tests, review gates, coverage) read the workspace
          // before it goes; their commands run like the task's own (same user, same reaping).
          result = await applyEngines(definition, workspace, result, {
            commands: this.deps.drivers.command,
            signal: run.abort.signal,
            input,
            startedAt: run.ranFrom,
            now: () => this.clock.now(),
            onSpawn,
          });
          // Its changes become artifacts (and a pushed branch) before the workspace goes.
          if (prepared.checkout && !run.end) {
            result = await this.deps.git!.collect(prepared.checkout, { executionId: msg.executionId, taskId: task.taskId, attempt: task.attempts }, result);
          }
          // A Claude Code run's transcript stays with its result, completed or failed: what it did, turn by turn.
          if (ownHome && !run.end) result = await this.keepTranscript(run, workspace, home, result);
        } finally {
          run.ranTo = this.clock.now();
          for (const pgid of run.pgids) {
            killProcessGroup(pgid); // leftovers of a driver that did not clean up (the command driver does)
            this.pgids?.remove(pgid);
          }
          this.removeLater(workspace);
          if (ownHome) this.removeLater(home);
          if (privateDir) this.removeLater(privateDir);
        }
      }
    } catch (err) {
      if (skipping) throw err;
      if (run.end) return await this.endWithoutReport(run);
      // The agent itself failed around the task (an AWS or disk error): a transient failure,
      // which the task's recovery strategy retries.
      result = { status: 'failed', error: classifyAgentError(err, 'the agent could not run the task') };
    }
    if (run.end) return await this.endWithoutReport(run);
    run.phase = 'reporting';
    await this.report(run, result!, definition);
  }

  /** The task's execution has no record (deleted): the task is skipped, not run. */
  private async skipWithoutExecution(run: Run): Promise<void> {
    const { msg } = run;
    const ref = { executionId: msg.executionId, index: msg.taskIndex };
    run.phase = 'reporting';
    const finished = await this.finish(run, { status: 'skipped', finishedAt: new Date(this.clock.now()).toISOString() });
    if (!finished) return;
    await this.calls.sendSuccess(msg.taskToken, { status: 'skipped', attempts: run.task.attempts }, ref);
    if (run.receipt) await this.calls.deleteMessage(run.queueUrl, run.receipt);
    run.log.info('task skipped', { reason: 'no execution' });
  }

  private async report(run: Run, result: DriverResult, definition: Task | undefined): Promise<void> {
    const { msg, task } = run;
    const ref = { executionId: msg.executionId, index: msg.taskIndex };
    const now = this.clock.now();
    const finishedAt = new Date(now).toISOString();
    const durationMs = now - run.claimedAt;
    const attempts = task.attempts;

    let outcome = result;
    let output: Stored<Record<string, unknown>> | undefined;
    if (outcome.status === 'completed') {
      const value = outcome.output;
      try {
        output = await retry(() => this.deps.payloads.store(`outputs/${msg.executionId}/${msg.taskIndex}-${attempts}.json`, value));
      } catch (err) {
        outcome = { status: 'failed', error: classifyAgentError(err, 'the output could not be stored') };
      }
    }
    const finished = await this.finish(
      run,
      outcome.status === 'completed'
        ? { status: 'completed', output, cost: outcome.cost, artifacts: outcome.artifacts, finishedAt, durationMs }
        : { status: 'failed', error: outcome.error, cost: outcome.cost, artifacts: outcome.artifacts, finishedAt, durationMs },
    );
    if (!finished) {
      // Another agent holds the task now (our lease ran out): its report counts, not ours.
      this.metrics.record(false, durationMs);
      run.log.warn('claim lost before the result was recorded', { attempt: attempts });
      return;
    }

    this.metrics.record(outcome.status === 'completed', durationMs);
    if (outcome.status === 'completed') this.taskMetrics.add(METRIC.tasksCompleted, 'Count', 1);
    else this.taskMetrics.add(METRIC.tasksFailed, 'Count', 1, { [METRIC_DIMENSION.errorType]: outcome.error.type });
    this.taskMetrics.add(METRIC.taskDuration, 'Milliseconds', durationMs);
    // What the run spent counts against the plan's budget (Gate checks it before each dispatch).
    const usd = outcome.cost?.usd ?? 0;
    if (usd > 0) this.taskMetrics.add(METRIC.taskCost, 'None', usd);
    if (usd > 0) {
      await retry(() => this.deps.executions.addSpend(msg.executionId, usd)).catch((err: unknown) => this.warnSparse('spend', 'could not add a run\'s spend to its execution', err));
    }
    const recorded = this.clock.now();
    if (outcome.status === 'completed') await this.calls.sendSuccess(msg.taskToken, { status: 'completed', attempts }, ref);
    else await this.calls.sendFailure(msg.taskToken, outcome.error, ref);
    const reported = this.clock.now();
    // A relayed copy (past the visibility cap) is found finished by whoever receives it, and dropped.
    if (run.receipt) await this.calls.deleteMessage(run.queueUrl, run.receipt);
    // Where the agent's share of a task's time goes: before the command, the command, recording the
    // result, the callback, and deleting the message.
    const phasesMs = {
      claim: (run.claimed ?? run.claimedAt) - run.claimedAt,
      prepare: (run.ranFrom ?? now) - (run.claimed ?? run.claimedAt),
      run: (run.ranTo ?? now) - (run.ranFrom ?? now),
      cleanup: now - (run.ranTo ?? now),
      record: recorded - now,
      callback: reported - recorded,
      delete: this.clock.now() - reported,
    };

    await this.reportToBreakers(msg, outcome);
    run.log.info('task finished', {
      attempt: attempts,
      status: outcome.status,
      durationMs,
      phasesMs,
      ...(outcome.status === 'failed' ? { errorType: outcome.error.type, error: outcome.error.message.slice(0, 200) } : {}),
      ...(definition && !definition.command ? { driver: driverNameFor(definition) } : {}),
    });
  }

  /**
   * finishClaim, retried. A retried conditional write whose first try did land fails its
   * condition, so a false answer is checked against the record before it counts as a lost claim.
   */
  private async finish(run: Run, result: Parameters<WorkerDeps['executions']['finishClaim']>[3]): Promise<boolean> {
    const { executionId, taskIndex } = run.msg;
    const done = await retry(() => this.deps.executions.finishClaim(executionId, taskIndex, run.claimId, result));
    if (done) return true;
    const current = await retry(() => this.deps.executions.getTask(executionId, taskIndex));
    return current?.claimId === run.claimId && current.status === result.status;
  }

  /**
   * Reports the run's success to the breakers Gate named (those with failures counted, and those
   * this run probes): a probe's success closes its breaker, any success resets a count. Failures are
   * recorded by the state machine's Recover step, which sees every failure, not only this agent's:
   * recording them here too would count them twice.
   */
  private async reportToBreakers(msg: DispatchMessage, outcome: DriverResult): Promise<void> {
    // A message from before `breakers` existed: `probe` meant the agent type's breaker.
    const keys = msg.breakers ?? (msg.probe ? [agentBreakerKey(this.config.agentType)] : []);
    for (const key of successBreakerKeys(keys, outcome)) {
      try {
        await this.deps.breaker.recordSuccess(key);
      } catch (err) {
        this.warnSparse('breaker', 'could not record a success with a circuit breaker', err);
      }
    }
  }

  /** The run ended without a result of ours: the claim was lost, or the task is handed back. */
  private async endWithoutReport(run: Run): Promise<void> {
    clearInterval(run.timer);
    // A renewal still under way would extend the lease after the hand-back ends it.
    while (run.ticking) await this.sleep(10);
    const ref = { executionId: run.msg.executionId, index: run.msg.taskIndex, taskId: run.task.taskId, attempt: run.task.attempts };
    if (run.end === 'lost') {
      this.metrics.record(false, this.clock.now() - run.claimedAt);
      run.log.warn('claim lost; the command was killed', ref);
      // Ended by the layer (a cancel, an escalation's fail-execution) rather than taken by another
      // agent: its outcome goes to Step Functions now, not at the message's next delivery.
      // Otherwise the receipt handle may be another agent's now: leave the message alone.
      const current = await this.deps.executions.getTask(run.msg.executionId, run.msg.taskIndex).catch(() => undefined);
      if (current && current.dispatchSeq === run.msg.dispatchSeq && (current.status === 'failed' || current.status === 'skipped')) {
        try {
          await this.reportRecorded(run.msg, current);
          // Unless custody already relayed it (agent/custody.ts): then the copy is dropped when it comes.
          if (run.receipt) await this.calls.deleteMessage(run.queueUrl, run.receipt);
        } catch (err) {
          this.warnSparse('report', 'could not report a task the layer ended', err);
        }
      }
      return;
    }
    try {
      const entry: AttemptLogEntry = {
        attempt: run.task.attempts,
        agentId: this.config.agentId,
        agentType: run.task.agentType,
        ...(run.task.startedAt ? { startedAt: run.task.startedAt } : {}),
        finishedAt: new Date(this.clock.now()).toISOString(),
        status: 'handed-back',
        message: this.handingBack ? 'the agent stopped and handed the run back' : 'handed back for higher-priority work',
      };
      if (!(await this.deps.executions.handBack(run.msg.executionId, run.msg.taskIndex, run.claimId, run.checkpoint, entry))) {
        // The lease ran out meanwhile and another agent holds the task: its run counts, not our checkpoint.
        run.log.warn('could not hand a task back: another agent holds it now', ref);
        return;
      }
      if (run.receipt) await this.calls.changeVisibility(run.queueUrl, run.receipt, 0);
      // Past the visibility cap the message was relayed: a copy, visible at once, takes its place.
      else await this.custody.sendCopy({ queueUrl: run.queueUrl, body: run.body, receivedAt: run.receivedAt, dispatchedAt: run.dispatchedAt }, 0);
      run.log.info('task handed back', { ...ref, checkpoint: run.checkpoint?.key ?? null });
    } catch (err) {
      this.warnSparse('handback', 'could not hand a task back; its lease will run out', err);
    }
  }

  /**
   * Before the driver: the state a handed-back run saved. One that cannot be restored fails this
   * attempt as transient; the failure clears the checkpoint, so the retry starts afresh.
   */
  private async restore(run: Run, dirs: RunDirs): Promise<{ resume?: { sessionId?: string }; failed?: DriverResult }> {
    const checkpoint = run.task.checkpoint;
    if (!checkpoint || !this.deps.checkpoints) return {};
    try {
      const { sessionId } = await this.deps.checkpoints.restore(checkpoint, dirs);
      run.log.info('resuming from a checkpoint', { from: checkpoint.attempt, sessionId: sessionId ?? null });
      return { resume: sessionId ? { sessionId } : {} };
    } catch (err) {
      return { failed: { status: 'failed', error: { ...classifyAgentError(err, `the checkpoint of attempt ${checkpoint.attempt} could not be restored`), type: 'transient' } } };
    }
  }

  /** Adds the run's Claude Code session transcript to its artifacts (when there is one). Never throws. */
  private async keepTranscript(run: Run, workspace: string, home: string, result: DriverResult): Promise<DriverResult> {
    const sessionId = run.session.id;
    if (!sessionId) return result;
    try {
      const file = join(claudeProjectDir(claudeConfigDir(home), await realpath(workspace)), `${sessionId}.jsonl`);
      const body = await readTranscript(file);
      if (!body) return result;
      const key = `artifacts/${run.msg.executionId}/${run.task.taskId}/${run.task.attempts}/${TRANSCRIPT_ARTIFACT}`;
      const bytes = await retry(() => this.deps.payloads.putBytes(key, body, 'application/x-ndjson'));
      return { ...result, artifacts: [...(result.artifacts ?? []), { name: TRANSCRIPT_ARTIFACT, uri: this.deps.payloads.uri(key), bytes }] };
    } catch (err) {
      this.warnSparse('transcript', 'could not keep a Claude Code transcript', err);
      return result;
    }
  }

  /** A run being handed back: its state, for the attempt that takes the task next. Never throws. */
  private async saveCheckpoint(run: Run, dirs: RunDirs): Promise<void> {
    if (!this.deps.checkpoints) return;
    try {
      const ids = { executionId: run.msg.executionId, taskId: run.task.taskId, attempt: run.task.attempts };
      run.checkpoint = await this.deps.checkpoints.save(dirs, ids, run.session.id);
    } catch (err) {
      this.warnSparse('checkpoint', 'could not save a checkpoint; the next attempt starts afresh', err);
    }
  }

  /** Every heartbeat interval while a task runs: renew the lease, then the message's visibility. */
  private async keepAlive(run: Run): Promise<void> {
    if (run.ticking || run.end === 'lost') return;
    run.ticking = true;
    try {
      if (run.phase !== 'reporting') {
        const cost = run.session.cost;
        const renewed = await this.deps.executions.renewLease(
          run.msg.executionId,
          run.msg.taskIndex,
          run.claimId,
          this.clock.now() + this.leaseMs,
          cost ? { ...cost, at: new Date(this.clock.now()).toISOString() } : undefined,
        );
        // The phase may have moved on while the call was out (finishClaim ends the lease too).
        if (!renewed && (run.phase as Run['phase']) !== 'reporting' && run.end !== 'handback') {
          if (!run.end) this.claimLost(run);
          return;
        }
      }
      if ((run.end as RunEnd | undefined) !== 'lost') await this.extendVisibility(run);
    } catch (err) {
      this.warnSparse('lease', 'could not renew a lease; trying again next interval', err);
    } finally {
      run.ticking = false;
    }
  }

  /**
   * The message stays hidden while the task runs, up to the visibility cap; past it, it is relayed
   * and the lease alone says the task is held (agent/custody.ts).
   */
  private async extendVisibility(run: Run): Promise<void> {
    if (!run.receipt) return;
    const held: HeldMessage = { queueUrl: run.queueUrl, receipt: run.receipt, body: run.body, receivedAt: run.receivedAt, dispatchedAt: run.dispatchedAt };
    if (!this.custody.passesCap(held, this.clock.now(), this.visibilitySeconds)) {
      await this.calls.changeVisibility(run.queueUrl, run.receipt, this.visibilitySeconds);
      return;
    }
    if (await this.custody.relay(held, this.relayDelaySeconds)) {
      run.receipt = undefined;
      run.log.info('relayed the message of a task running past the visibility cap', {
        heldForSeconds: Math.round((this.clock.now() - run.receivedAt) / 1000),
      });
    }
  }

  private claimLost(run: Run): void {
    run.end = 'lost';
    clearInterval(run.timer);
    for (const pgid of run.pgids) killProcessGroup(pgid);
    run.abort.abort(new Error('claim lost'));
  }

  private handBack(run: Run): void {
    if (run.end || run.phase === 'finishing' || run.phase === 'reporting') return;
    run.end = 'handback';
    // The lease stays renewed until the hand-back is written: saving the checkpoint takes a while.
    // The driver stops its processes (Claude Code gets a moment to save its session for the
    // checkpoint); whatever is left is killed when the driver returns. Not so for a lost claim,
    // where another agent may be running the task already.
    run.abort.abort(new Error('agent stopping'));
  }

  // ---- inputs ---------------------------------------------------------------------------------

  /** The plan's input; for a pipeline stage after the first, `data`: input + earlier stages' outputs. */
  private async executionMeta(executionId: string): Promise<ExecutionRecord | undefined> {
    let meta = this.metas.get(executionId);
    if (!meta) {
      meta = await this.deps.executions.getExecution(executionId);
      if (meta) this.metas.set(executionId, meta);
    }
    return meta;
  }

  private async inputFor(execution: ExecutionRecord, task: TaskRecord): Promise<Record<string, unknown>> {
    let input = this.inputs.get(execution.executionId);
    if (!input) {
      input = await this.deps.payloads.load(execution.input);
      this.inputs.set(execution.executionId, input);
    }
    if (execution.pattern !== 'pipeline' || task.stage === 0) return input;
    // Earlier stages have ended before a later stage is dispatched, so their data is fixed.
    const key = `${execution.executionId}#${task.stage}`;
    let data = this.inputs.get(key);
    if (!data) {
      const earlier = (await this.deps.executions.listTasks(execution.executionId))
        .filter((t) => t.stage < task.stage && t.status === 'completed')
        .sort((a, b) => a.index - b.index);
      const outputs = await Promise.all(earlier.map((t) => (t.output ? this.deps.payloads.load(t.output) : undefined)));
      data = mergeOutputs(input, outputs);
      this.inputs.set(key, data);
    }
    return data;
  }

  // ---- the agent record -----------------------------------------------------------------------

  private status(): AgentStatus {
    if (this.stopping) return 'draining';
    return this.runs.size > 0 ? 'busy' : 'idle';
  }

  private health(): AgentRecord['health'] {
    const metrics = this.metrics.snapshot();
    const assessed = assessHealth(metrics, this.metrics.count, this.config.capabilityIssues ?? []);
    // The agent's own trouble with AWS (a lease, a receive, a heartbeat failing lately).
    const recentTrouble = [...this.lastWarned.entries()].filter(([, t]) => Date.now() - t < 3 * this.config.heartbeatIntervalMs).map(([kind]) => kind);
    if (recentTrouble.length) assessed.issues.push({ check: 'performance', severity: 'warning', message: `recent trouble: ${recentTrouble.join(', ')}` });
    const overall = assessed.overall === 'healthy' && recentTrouble.length ? 'degraded' : assessed.overall;
    return { overall, metrics, issues: assessed.issues, lastCheck: new Date(this.clock.now()).toISOString() };
  }

  private agentRecord(): AgentRecord {
    const now = new Date(this.clock.now()).toISOString();
    return {
      agentId: this.config.agentId,
      agentType: this.config.agentType,
      status: 'idle',
      startedAt: this.startedAt,
      lastHeartbeatAt: now,
      runtime: this.config.runtime,
      health: this.health(),
      tasksCompleted: this.metrics.completed,
      tasksFailed: this.metrics.failed,
      idleSince: new Date(this.idleSince).toISOString(),
    };
  }

  private async heartbeat(): Promise<void> {
    if (this.heartbeating) return;
    this.heartbeating = true;
    try {
      const first = [...this.runs][0];
      const status = this.status();
      const current = await this.deps.agents.heartbeat(this.config.agentId, {
        status,
        idleSince: status === 'idle' ? new Date(this.idleSince).toISOString() : undefined,
        // `<executionId>/<taskId>`: task ids are unique only within their execution.
        currentTaskId: first ? `${first.msg.executionId}/${first.task.taskId}` : undefined,
        health: this.health(),
        tasksCompleted: this.metrics.completed,
        tasksFailed: this.metrics.failed,
        preemptible: this.lowPriorityRuns().length > 0 ? true : undefined,
      });
      if (current?.yieldRequestedAt && !this.stopping) await this.yieldLowPriority();
      if (!current && !this.stopping) {
        const record = await this.deps.agents.get(this.config.agentId);
        if (!record) {
          await this.deps.agents.put({ ...this.agentRecord(), status: this.status() });
        } else if (record.status === 'terminated') {
          // The layer has written this agent off (and may have replaced it): stop, handing work back.
          this.log.warn('the agent record says terminated; stopping');
          void this.stop({ graceful: true });
        }
      }
    } catch (err) {
      this.warnSparse('heartbeat', 'heartbeat failed', err);
    } finally {
      this.heartbeating = false;
    }
  }

  // ---- preemption ----------------------------------------------------------------------------

  private lowPriorityRuns(): Run[] {
    return [...this.runs].filter((r) => r.task.priority === 'low' && r.phase === 'running' && !r.end);
  }

  /**
   * The design's preemption: high-priority work waits and the pool is at its max, so the pool
   * manager asked this agent to give way. Its low-priority runs are handed back, checkpointed like a
   * stop's, and resume later from where they were; the freed slots poll the high queue first.
   */
  private async yieldLowPriority(): Promise<void> {
    // One run per request: the pool manager asks once per waiting high-priority task.
    const run = this.lowPriorityRuns()[0];
    if (run) {
      run.log.info('yielding a low-priority task to high-priority work');
      this.handBack(run);
    }
    await this.deps.agents.clearYield(this.config.agentId);
  }

  // ---- stopping -------------------------------------------------------------------------------

  private async shutdown(graceful: boolean): Promise<void> {
    this.stopping = true;
    this.signalStop();
    this.wakeLoop?.();
    const forced = new Promise<void>((resolve) => (this.forceStop = resolve));
    await this.loopDone;
    this.log.info('agent stopping', { graceful, running: this.runs.size });
    if (this.started) {
      void this.deps.agents.heartbeat(this.config.agentId, { status: 'draining' }).catch(() => {});
    }
    if (graceful && this.inFlight > 0) {
      await Promise.race([this.idle(), this.sleep(this.config.graceMs), forced]);
    }
    this.handingBack = true;
    for (const run of this.runs) this.handBack(run);
    // Reports already under way finish; handed-back runs expire their lease and release their message.
    await Promise.race([this.idle(), this.sleep(15_000)]);
    this.pollAbort.abort();
    clearInterval(this.heartbeatTimer);
    await Promise.race([Promise.allSettled([...this.cleanups]), this.sleep(5000)]);
    if (this.started) {
      try {
        await this.deps.agents.setStatus(this.config.agentId, 'terminated');
      } catch (err) {
        this.warnSparse('terminate', 'could not mark the agent terminated', err);
      }
    }
    await this.pgids?.close();
    this.log.info('agent stopped', { tasksCompleted: this.metrics.completed, tasksFailed: this.metrics.failed });
    this.resolveDone();
  }

  private idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // ---- helpers --------------------------------------------------------------------------------

  private removeLater(dir: string): void {
    const p = this.deps.workspaces
      .remove(dir)
      .catch((err) => this.warnSparse('workspace', 'could not remove a workspace', err))
      .finally(() => this.cleanups.delete(p));
    this.cleanups.add(p);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms).unref());
  }

  /** A sleep that a stop cuts short. */
  private pause(ms: number): Promise<void> {
    return Promise.race([this.sleep(ms), this.stopSignal]);
  }

  /** At most one line per kind of trouble every 30 s: an outage must not flood the log. */
  private warnSparse(kind: string, msg: string, err: unknown): void {
    const now = Date.now();
    const last = this.lastWarned.get(kind);
    this.lastWarned.set(kind, now);
    if (last !== undefined && now - last < 30_000) return;
    this.log.warn(msg, { error: errorMessage(err), errorName: errorName(err) });
  }
}

// ---- pieces -------------------------------------------------------------------------------------


/** A tiny LRU: a Map iterates in insertion order, so the first key is the least recent. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
}

