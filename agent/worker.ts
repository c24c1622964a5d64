// The agent worker: polls its agent type's queues, claims dispatched tasks with a lease, runs
// them through a driver in a fresh workspace, and reports to Step Functions (docs/design.md,
// "An agent's protocol"). Everything it talks to is injected, so tests hand in emulator-backed
// stores or fakes and the same class runs in the container and as a local worker process.
//
// This file is the worker's lifecycle (start, stop, drain); each phase of a task's way through the
// agent has its own file under agent/worker/:
//   poll.ts        taking messages into free slots, by priority
//   claim.ts       claiming a message's task (or dropping, relaying, re-reporting it)
//   run.ts         workspace, checkpoint, driver, engines, transcript
//   report.ts      recording the result, the callback, the delete; hand-backs and lost claims
//   lease.ts       beside a running task: lease renewal, message visibility and relay
//   agent-record.ts  the heartbeat: status, health, preemption, write-off
//   inputs.ts      the execution's input (and pipeline data), cached
//   context.ts     the ports and the state the phases share
//
// Per task, on the happy path, the AWS calls are: ReceiveMessage (shared by up to `slots`
// messages), claim (UpdateItem), GetItem of the execution, finishClaim (UpdateItem),
// SendTaskSuccess/Failure and DeleteMessage. Long tasks add one lease renewal and one
// ChangeMessageVisibility per heartbeat interval. The agent record is written on a timer, never
// per task.
import { noMetrics } from '../core/metrics.ts';
import { AgentCalls, errorMessage, errorName } from './agent-calls.ts';
import { MAX_DELAY_SECONDS, MessageCustody } from './custody.ts';
import { SqsBatcher } from './sqs-batcher.ts';
import { Metrics } from './metrics.ts';
import { PgidFile } from './pgid-file.ts';
import { ResourceMonitor, samplerFor } from './resources.ts';
import { agentRecord, heartbeat } from './worker/agent-record.ts';
import { handleMessage } from './worker/claim.ts';
import { type Run, silentLogger, type WorkerConfig, type WorkerContext, type WorkerDeps } from './worker/context.ts';
import { TaskInputs } from './worker/inputs.ts';
import { handBack } from './worker/lease.ts';
import { LONG_POLL_SECONDS, Poller } from './worker/poll.ts';

export { childLogger, type Clock, type Logger, silentLogger, type WorkerConfig, type WorkerDeps } from './worker/context.ts';
export { TRANSCRIPT_ARTIFACT } from './worker/run.ts';

export class Worker {
  private readonly ctx: WorkerContext;
  private readonly poller: Poller;
  private readonly lastWarned = new Map<string, number>();
  private readonly cleanups = new Set<Promise<void>>();

  private started = false;
  private stopPromise: Promise<void> | undefined;
  private forceStop: (() => void) | undefined;
  private readonly stopSignal: Promise<void>;
  private signalStop!: () => void;
  private loopDone: Promise<void> = Promise.resolve();
  private resolveDone!: () => void;
  /** Resolves when the worker has stopped (asked to, or because its record was terminated). */
  readonly done: Promise<void>;

  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeating = false;

  constructor(
    readonly config: WorkerConfig,
    deps: WorkerDeps,
  ) {
    if (!Number.isInteger(config.slots) || config.slots < 1) throw new Error(`slots must be a positive integer, got ${config.slots}`);
    const log = deps.log ?? silentLogger;
    const clock = deps.clock ?? { now: Date.now };
    const leaseMs = 2 * config.heartbeatIntervalMs;
    const visibilitySeconds = Math.max(1, Math.ceil(leaseMs / 1000));
    const warnSparse = (kind: string, msg: string, err: unknown) => this.warnSparse(kind, msg, err);
    this.stopSignal = new Promise((resolve) => (this.signalStop = resolve));
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    const pgids = config.pgidFile ? new PgidFile(config.pgidFile, (err: unknown) => warnSparse('pgid-file', 'could not write the pgid file', err)) : undefined;
    this.ctx = {
      config,
      deps,
      log,
      clock,
      taskMetrics: deps.metrics ?? noMetrics,
      metrics: new Metrics(),
      // The tasks' process groups count as the agent's: commands may have left the worker's tree.
      resources: new ResourceMonitor(deps.resourceSampler ?? samplerFor(process.env, process.pid, () => this.runGroups()), clock.now),
      calls: new AgentCalls(deps.sfn, deps.sqs, log, warnSparse, config.batch === false ? undefined : new SqsBatcher(deps.sqs)),
      custody: new MessageCustody(deps.sqs, config.visibilityCapSeconds, log),
      pgids,
      leaseMs,
      visibilitySeconds,
      relayDelaySeconds: Math.min(MAX_DELAY_SECONDS, visibilitySeconds),
      startedAt: new Date(clock.now()).toISOString(),
      runs: new Set<Run>(),
      stopping: false,
      handingBack: false,
      idleSince: clock.now(),
      recentKeys: [],
      warnSparse,
      lastWarned: this.lastWarned,
      sleep,
      pause: (ms) => Promise.race([sleep(ms), this.stopSignal]),
      removeLater: (dir) => this.removeLater(dir),
    };
    const inputs = new TaskInputs(deps);
    this.poller = new Poller(this.ctx, this.stopSignal, (url, m) => handleMessage(this.ctx, inputs, url, m));
  }

  /** Registers the agent (status idle) and starts polling. Retries the registration until it works. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { ctx } = this;
    // Before the registration: the record names it, and Gate sends only to named queues.
    if (this.config.directQueue !== false) await this.poller.openDirectQueue();
    // A first sample, so the record shows the agent's resources from its registration on.
    await ctx.resources.sample().catch((err: unknown) => this.warnSparse('resources', 'could not sample the agent\'s resources', err));
    for (let attempt = 0; !ctx.stopping; attempt++) {
      try {
        await ctx.deps.agents.put(agentRecord(ctx));
        break;
      } catch (err) {
        this.warnSparse('register', 'could not register the agent; retrying', err);
        await ctx.pause(Math.min(5000, 200 * 2 ** attempt));
      }
    }
    if (ctx.stopping) return;
    await ctx.pgids?.reset();
    this.heartbeatTimer = setInterval(() => void this.beat(), this.config.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.loopDone = this.poller.run();
    ctx.log.info('agent started', {
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
   *
   * `awaitPolls`: the queues outlive this agent (a drain, a scale-in): its outstanding long polls
   * are waited for (at most LONG_POLL_SECONDS) and what they bring is released, rather than left to
   * take a message nobody reads. Off when the queues go down with the agent (the local layer's stop).
   */
  stop(opts: { graceful?: boolean; awaitPolls?: boolean } = {}): Promise<void> {
    const graceful = opts.graceful ?? true;
    if (!graceful) this.forceStop?.();
    this.stopPromise ??= this.shutdown(graceful, opts.awaitPolls === true);
    return this.stopPromise;
  }

  private async beat(): Promise<void> {
    if (this.heartbeating) return;
    this.heartbeating = true;
    try {
      await heartbeat(this.ctx, () => void this.stop({ graceful: true, awaitPolls: true }));
    } catch (err) {
      this.warnSparse('heartbeat', 'heartbeat failed', err);
    } finally {
      this.heartbeating = false;
    }
  }

  private async shutdown(graceful: boolean, awaitPolls: boolean): Promise<void> {
    // The timers this waits on are unref'd, and between its calls nothing else may hold the event
    // loop: Node would then exit 0 mid-shutdown, before the hand-back and the "terminated" write
    // (seen in CI: a SIGTERMed agent gone, its record left "draining"). This holds the process
    // until the shutdown is done.
    const hold = setInterval(() => undefined, 60_000);
    try {
      await this.shutdownSteps(graceful, awaitPolls);
    } finally {
      clearInterval(hold);
    }
  }

  private async shutdownSteps(graceful: boolean, awaitPolls: boolean): Promise<void> {
    const { ctx } = this;
    ctx.stopping = true;
    this.signalStop();
    this.poller.wake();
    const forced = new Promise<void>((resolve) => (this.forceStop = resolve));
    await this.loopDone;
    ctx.log.info('agent stopping', { graceful, running: ctx.runs.size });
    if (this.started) {
      void ctx.deps.agents.heartbeat(this.config.agentId, { status: 'draining' }).catch(() => {});
    }
    if (graceful && this.poller.inFlight > 0) {
      await Promise.race([this.poller.idle(), sleep(this.config.graceMs), forced]);
    }
    ctx.handingBack = true;
    for (const run of ctx.runs) handBack(run);
    // Reports already under way finish; handed-back runs expire their lease and release their message.
    await Promise.race([this.poller.idle(), sleep(15_000)]);
    // SQS keeps serving a long poll whose client is gone (aws/aws-sdk-js#2350): aborted, it would
    // still take the next message and hide it for the visibility timeout (measured locally: a task
    // sent just after a drain waited 40 s). So a drained agent lets its polls answer, and releases
    // what they bring (Poller.accept), unless it is forced or the queues go down with it.
    if (graceful && awaitPolls) await Promise.race([this.poller.longPollsSettled(), forced, sleep(LONG_POLL_SECONDS * 1000 + 2000)]);
    this.poller.abortLongPolls();
    // Whatever Gate sent here goes back to the type's queues; then the queue goes.
    await this.poller.closeDirectQueue();
    clearInterval(this.heartbeatTimer);
    await Promise.race([Promise.allSettled([...this.cleanups, ctx.calls.flush()]), sleep(5000)]);
    if (this.started) {
      try {
        await ctx.deps.agents.setStatus(this.config.agentId, 'terminated');
      } catch (err) {
        this.warnSparse('terminate', 'could not mark the agent terminated', err);
      }
    }
    await ctx.pgids?.close();
    ctx.log.info('agent stopped', { tasksCompleted: ctx.metrics.completed, tasksFailed: ctx.metrics.failed });
    this.resolveDone();
  }

  /** The process groups the running tasks' commands are in. */
  private *runGroups(): Iterable<number> {
    for (const run of this.ctx.runs) yield* run.pgids;
  }

  private removeLater(dir: string): void {
    const p = this.ctx.deps.workspaces
      .remove(dir)
      .catch((err) => this.warnSparse('workspace', 'could not remove a workspace', err))
      .finally(() => this.cleanups.delete(p));
    this.cleanups.add(p);
  }

  /** At most one line per kind of trouble every 30 s: an outage must not flood the log. */
  private warnSparse(kind: string, msg: string, err: unknown): void {
    const now = Date.now();
    const last = this.lastWarned.get(kind);
    this.lastWarned.set(kind, now);
    if (last !== undefined && now - last < 30_000) return;
    this.ctx.log.warn(msg, { error: errorMessage(err), errorName: errorName(err) });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
