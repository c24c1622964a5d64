// The domain services each handler needs, built once per process from the environment. Each is its
// own getter so that a handler's bundle holds only the AWS clients it uses (esbuild drops the rest).
import { logger } from './observability.ts';
import { AgentStore } from '#core/aws/agent-store.ts';
import { DirectQueues } from '#core/aws/direct-queues.ts';
import { SqsDeadLetterQueues, StepFunctionsTaskTokens } from '#core/aws/dead-letter-queues.ts';
import { DynamoBreakerStore } from '#core/aws/breaker-store.ts';
import { FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { ddbClient, ecsClient, eventBridgeClient, logsClient, once, s3Client, sfnClient, sharedSqsClient } from '#core/aws/clients.ts';
import { CloudWatchLogSource } from '#core/aws/cloudwatch-logs.ts';
import { EcsRuntime } from '#core/aws/ecs-runtime.ts';
import { SqsDeadLetters, StepFunctionsRuns } from '#core/aws/execution-reconcile.ts';
import { cloudWatchMetricsSink } from '#core/aws/cloudwatch-metrics.ts';
import { ExecutionStore } from '#core/aws/execution-store.ts';
import { PayloadStore } from '#core/aws/payload-store.ts';
import { QueueBacklog } from '#core/aws/queue-backlog.ts';
import { StepFunctionsWorkflows } from '#core/aws/workflows.ts';
import { BreakerPolicies, CircuitBreaker } from '#core/breakers.ts';
import { loadConfig } from '#core/config.ts';
import { DeadLetterService } from '#core/dead-letters.ts';
import { type EventSink, fanOut, logEventSink, registeredEventSink } from '#core/events.ts';
import { type PutEvents, eventBusSink } from '#core/aws/event-bus.ts';
import { ExecutionReconciler } from '#core/execution-events.ts';
import { ExecutionService } from '#core/executions.ts';
import { ExecutionLogs, registeredLogSource } from '#core/logs.ts';
import { HealthMonitor, PoolManager, parseConcurrencySpec, parsePoolSpec } from '#core/pool.ts';
import { registeredRuntime } from '#core/runtime.ts';
import { ExecutionSteps } from '#core/steps.ts';

export { logger };

export const config = /* @__PURE__ */ once(loadConfig);
export const executionStore = /* @__PURE__ */ once(() => new ExecutionStore(ddbClient(), config().tables.executions));
export const agentStore = /* @__PURE__ */ once(() => new AgentStore(ddbClient(), config().tables.agents));
export const breakerStore = /* @__PURE__ */ once(() => new DynamoBreakerStore(ddbClient(), config().tables.breakers));
// XL_BREAKER_POLICY: per-key thresholds, windows and cooldowns (a bad value fails the first call that needs a breaker, naming the field).
export const circuitBreaker = /* @__PURE__ */ once(
  () => new CircuitBreaker(breakerStore(), { policy: BreakerPolicies.parse(process.env.XL_BREAKER_POLICY), events: events() }),
);
export const sqs = sharedSqsClient;

/** PutEvents on the stack's bus (the client is built on the first event). */
const putEvents: PutEvents = (input) => eventBridgeClient().send(new PutEventsCommand(input));

/** XL_EVENT_BUS (the stack's bus name): the bus sink, when there is a client to put with. */
const busSink = /* @__PURE__ */ once((): EventSink | undefined => {
  const busName = process.env.XL_EVENT_BUS;
  if (!busName) return undefined;
  return eventBusSink({ putEvents, busName, log: { warn: (message, fields) => logger.warn(message, { ...fields }) } });
});

/**
 * Where the layer's events go: structured log lines (CloudWatch Logs on AWS), and the stack's bus on
 * AWS or, in the embedded local layer, the sinks it registers (GET /events, the webhook). The
 * registered sink is looked up per event: the local layer registers it before its first round.
 */
export const events = /* @__PURE__ */ once((): EventSink => {
  const log = logEventSink({ info: (message, fields) => logger.info(message, fields ?? {}) });
  return { emit: (event) => fanOut([log, registeredEventSink() ?? busSink()]).emit(event) };
});

export const executionSteps = /* @__PURE__ */ once(
  () =>
    new ExecutionSteps({
      executions: executionStore(),
      breaker: circuitBreaker(),
      queueUrlPrefix: config().queueUrlPrefix,
      dispatchAllowanceSeconds: config().dispatchAllowanceSeconds,
      events: events(),
      metrics: metrics(),
      // Affinity (core/affinity.ts): an agent is preferred while its heartbeat is within the span.
      agents: agentStore(),
      agentFreshMs: config().heartbeatSeconds * 1000,
    }),
);

/** The logger as the domain's small log port. */
export const eventLog = {
  warn: (message: string, details?: Record<string, unknown>) => logger.warn(message, { ...details }),
  info: (message: string, details?: Record<string, unknown>) => logger.info(message, { ...details }),
};

/** The execution-events function's schedule: its dead letters, and runs that ended unrecorded. */
export const executionReconciler = /* @__PURE__ */ once(
  () =>
    new ExecutionReconciler({
      executions: executionStore(),
      deadLetters: SqsDeadLetters.fromEnv(sqs()),
      workflows: StepFunctionsRuns.fromEnv(sfnClient()),
      finalize: (executionId, runName) => executionSteps().finalize({ executionId, runName }),
      log: eventLog,
      events: events(),
    }),
);

// Only the API and the reconcile need state machine ARNs (the steps function must not: it would be circular).
export const executionService = /* @__PURE__ */ once(
  () =>
    new ExecutionService({
      executions: executionStore(),
      payloads: new PayloadStore(s3Client(), config().bucket),
      workflows: StepFunctionsWorkflows.fromEnv(sfnClient()),
      events: events(),
    }),
);

const monitorDeps = () => ({
  agents: agentStore(),
  heartbeatSeconds: config().heartbeatSeconds,
  startAllowanceSeconds: config().startAllowanceSeconds,
});

/** The layer's CloudWatch metrics (EMF through Powertools; off in the local layer). */
export const metrics = /* @__PURE__ */ once(() =>
  cloudWatchMetricsSink(process.env.POWERTOOLS_SERVICE_NAME ?? 'xl', (err) => logger.warn('could not write a metric', { error: err as Error })),
);

export const healthMonitor = /* @__PURE__ */ once(() => new HealthMonitor({ ...monitorDeps(), metrics: metrics(), breakers: circuitBreaker(), events: events() }));

// Locally the embedded layer registers its process runtime; on AWS agents are ECS tasks.
export const poolManager = /* @__PURE__ */ once(
  () =>
    new PoolManager({
      ...monitorDeps(),
      runtime: registeredRuntime() ?? EcsRuntime.fromEnv(ecsClient()),
      defaults: parsePoolSpec(process.env.XL_POOL),
      slots: parseConcurrencySpec(process.env.XL_MAX_CONCURRENT_TASKS),
      breaker: circuitBreaker(),
      idleSeconds: config().poolIdleSeconds,
      events: events(),
      reactionSeconds: config().poolReactionSeconds,
      startSeconds: config().poolStartSeconds,
      directQueues: new DirectQueues(sqs(), executionStore(), config().queueUrlPrefix),
    }),
);

/** Queued and running tasks per agent type (the pool's sizing and the health view). */
export const queueBacklog = /* @__PURE__ */ once(() => new QueueBacklog(sqs(), config().queueUrlPrefix));


/** The DLQs: the pool manager's sweep, and GET /dead-letters and the redrive. */
export const deadLetters = /* @__PURE__ */ once(
  () =>
    new DeadLetterService({
      queues: new SqsDeadLetterQueues(sqs(), config().queueUrlPrefix),
      executions: executionStore(),
      tokens: new StepFunctionsTaskTokens(sfnClient()),
      events: events(),
      log: { warn: (message, fields) => logger.warn(message, { ...fields }) },
    }),
);

/** Where `xl logs` reads: the local layer's log file (it registers it), else CloudWatch Logs (XL_LOG_GROUPS). */
const cloudWatchLogs = /* @__PURE__ */ once(() => CloudWatchLogSource.fromEnv((input) => logsClient().send(new FilterLogEventsCommand(input))));
export const executionLogs = /* @__PURE__ */ once(
  // The source is looked up per read: a local layer registers its own as it starts.
  () => new ExecutionLogs({ executions: executionStore(), source: { read: (query) => (registeredLogSource() ?? cloudWatchLogs()).read(query) } }),
);
