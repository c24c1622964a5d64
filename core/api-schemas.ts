// The HTTP API's bodies as zod schemas: the requests the API parses with them, and the responses
// (CONTRACT.md and the README's extensions), which are only described here, for the OpenAPI
// document (core/openapi.ts). Responses are open objects: later work may add fields to them.
import * as z from 'zod';
import { AGENT_TYPES } from './agent-types.ts';
import { ERROR_SOURCES, ERROR_TYPES } from './errors.ts';
import { LAYER_EVENT_KINDS } from './events.ts';

// ---- Requests (the API's functions parse these; zod/mini, in core/api-requests.ts) ----

export { ExecutionListFilter, PoolBoundsRequest, RedriveDeadLettersRequest, StartAgentsRequest } from './api-requests.ts';

// ---- Responses ----

const time = () => z.string().describe('ISO-8601');
const errorType = z.enum(ERROR_TYPES);
const errorSource = z.enum(ERROR_SOURCES);
const executionStatus = z.enum(['RUNNING', 'SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT']);
const pattern = z.enum(['sequential', 'parallel', 'pipeline']);

export const ErrorBody = z.object({
  error: z.object({
    type: errorType.describe('validation for 400, 405, 409 and 413; permanent for 401, 403 and 404; transient for 429 and 5xx'),
    source: errorSource.optional().describe('api: the API refused the request; layer: the layer behind it failed'),
    message: z.string(),
    details: z
      .array(z.object({ path: z.string().describe('JSON Pointer into the request body, e.g. /tasks/0/agentType'), message: z.string() }))
      .optional(),
  }),
});

export const TaskErrorSchema = z.object({ type: errorType, source: errorSource.optional(), message: z.string() });

const cost = z.object({ usd: z.number(), inputTokens: z.number(), outputTokens: z.number(), turns: z.number() });

export const AttemptLogEntrySchema = z.object({
  attempt: z.number().int().describe("The task's attempts count at that run (1 for the first claim)"),
  agentId: z.string().optional(),
  agentType: z.enum(AGENT_TYPES),
  startedAt: time().optional(),
  finishedAt: time(),
  status: z.enum(['completed', 'failed', 'handed-back']),
  errorType: errorType.optional(),
  source: errorSource.optional(),
  message: z.string().optional(),
  next: z.enum(['retry', 'fallback', 'none']).optional(),
  delaySeconds: z.number().optional(),
});

export const TaskResultSchema = z.object({
  taskId: z.string(),
  status: z.enum(['pending', 'running', 'completed', 'failed', 'skipped']),
  output: z.record(z.string(), z.unknown()).optional(),
  error: TaskErrorSchema.optional(),
  agentId: z.string().optional(),
  attempts: z.number().int().describe('How many times an agent started the task, retries and re-deliveries included'),
  startedAt: time().optional(),
  finishedAt: time().optional(),
  durationMs: z.number().optional(),
  cost: cost.optional(),
  artifacts: z.array(z.object({ name: z.string(), uri: z.string(), bytes: z.number().int() })).optional(),
  progress: cost.extend({ at: time() }).optional().describe("A running Claude Code task's spend so far"),
  attemptLog: z.array(AttemptLogEntrySchema).optional(),
  skipReason: z.string().optional(),
  recoveredBy: z.object({ action: z.enum(['default-output', 'skip']), error: TaskErrorSchema }).optional(),
  fallbackFrom: z.enum(AGENT_TYPES).optional(),
  cachedFrom: z.object({ executionId: z.string(), taskId: z.string() }).optional(),
});

export const ExecutionStarted = z.object({ executionId: z.string(), name: z.string(), status: executionStatus });

export const ExecutionSummary = z.object({
  executionId: z.string(),
  name: z.string(),
  pattern,
  status: executionStatus,
  startedAt: time(),
  stoppedAt: time().optional(),
});

export const ExecutionList = z.object({
  items: z.array(ExecutionSummary.extend({ costUsd: z.number().optional().describe('What its tasks have recorded spending so far (USD), when they spent anything') })),
  nextToken: z.string().optional(),
});

export const Execution = ExecutionSummary.extend({
  message: z.string().optional().describe('Why it ended other than by its tasks (cancelled, the layer stopped, a workflow error)'),
  tasks: z.array(TaskResultSchema),
  result: z
    .object({ status: z.enum(['completed', 'failed']), stage: z.string().optional(), data: z.record(z.string(), z.unknown()) })
    .optional(),
  cost: cost.optional(),
  limits: z.object({ maxBudgetUsd: z.number() }).optional(),
  workflowRun: z.number().int().optional(),
  resumedAt: time().optional(),
  redrivenAt: time().optional(),
  maxConcurrency: z.number().int().optional().describe('A parallel plan: how many of its tasks run at once'),
  stages: z
    .array(z.object({ name: z.string(), tasks: z.array(z.string()) }))
    .optional()
    .describe("A pipeline plan: its stages in order, each with its tasks' ids"),
});

/** GET /executions/{id}/tasks/{taskId}/artifacts/{name} on AWS: the 302's body, beside its Location. */
export const ArtifactRedirect = z.object({
  name: z.string(),
  bytes: z.number().int(),
  contentType: z.string(),
  url: z.string().describe('The Location: a presigned S3 GET, valid until expiresAt, that needs no credentials (send none: S3 refuses a second authorization)'),
  expiresAt: time(),
});

export const ExecutionAborted = z.object({ executionId: z.string(), status: z.literal('ABORTED') });

export const ExecutionRedriven = z.object({
  executionId: z.string(),
  status: z.literal('RUNNING'),
  workflowRun: z.number().int(),
  tasks: z.number().int().describe('How many tasks were reopened'),
});

const rates = { rxBytesPerSecond: z.number(), txBytesPerSecond: z.number() };
const ResourceUsageSchema = z.object({
  at: time(),
  source: z.enum(['ecs-task-metadata', 'cgroup', 'proc']),
  cpuPercent: z.number().describe('Percent of one vCPU'),
  memoryBytes: z.number(),
  memoryLimitBytes: z.number().optional(),
  network: z.object({ rxBytes: z.number(), txBytes: z.number(), ...rates, scope: z.enum(['task', 'container', 'host']) }).optional(),
  disk: z.object({ readBytes: z.number(), writeBytes: z.number(), readBytesPerSecond: z.number(), writeBytesPerSecond: z.number() }).optional(),
});
const ResourcePointSchema = z.object({
  at: time(),
  cpuPercent: z.number(),
  memoryBytes: z.number(),
  rxBytesPerSecond: z.number().optional(),
  txBytesPerSecond: z.number().optional(),
  diskBytesPerSecond: z.number().optional(),
});

export const AgentSchema = z.object({
  agentId: z.string(),
  agentType: z.enum(AGENT_TYPES),
  status: z.enum(['starting', 'idle', 'busy', 'draining', 'unhealthy', 'terminated']),
  currentTaskId: z.string().optional(),
  startedAt: time(),
  lastHeartbeatAt: time(),
  runtime: z.union([
    z.object({ kind: z.literal('process'), pid: z.number().int() }),
    z.object({ kind: z.literal('ecs'), taskArn: z.string() }),
    z.object({ kind: z.enum(['docker', 'containerd']), containerId: z.string() }),
    z.object({ kind: z.literal('kubernetes'), namespace: z.string(), name: z.string() }),
  ]),
  health: z.object({
    overall: z.enum(['healthy', 'degraded', 'unhealthy', 'unknown']),
    metrics: z.object({ cpu: z.number(), memory: z.number(), responseTime: z.number(), errorRate: z.number(), taskSuccessRate: z.number() }),
    lastCheck: time(),
    issues: z
      .array(z.object({ check: z.enum(['heartbeat', 'capability', 'performance', 'resource']), severity: z.enum(['warning', 'critical']), message: z.string() }))
      .optional(),
    resources: ResourceUsageSchema.optional().describe("The agent's latest resource sample (the Resource Monitor)"),
    history: z.array(ResourcePointSchema).optional().describe('The last resource samples, oldest first, one per heartbeat'),
  }),
  idleSince: time().optional(),
  statusReason: z.string().optional(),
  directQueueUrl: z.string().optional().describe("The agent's own queue (affinity): Gate sends a task there when the agent ran its affinity key lately"),
  recentKeys: z.array(z.string()).optional().describe('The affinity keys of its last runs, most recent last'),
  running: z.number().int().optional().describe('Tasks running at its last heartbeat'),
});

export const AgentList = z.object({ items: z.array(AgentSchema) });
export const AgentsStarted = z.object({ agentIds: z.array(z.string()) });
export const AgentStopped = z.object({ agentId: z.string() });

export const PoolRowSchema = z.object({
  agentType: z.enum(AGENT_TYPES),
  min: z.number().int(),
  max: z.number().int(),
  desired: z.number().int(),
  running: z.number().int(),
  backlog: z.number().int(),
});
export const PoolList = z.object({ items: z.array(PoolRowSchema) });

/** GET /pool/report (core/pool-report.ts). */
export const PoolReportSchema = z.object({
  generatedAt: time(),
  windowMinutes: z.number().int(),
  targetMinutes: z.number(),
  types: z.array(
    z.object({
      agentType: z.enum(AGENT_TYPES),
      min: z.number().int(),
      max: z.number().int(),
      agents: z.object({ starting: z.number().int(), idle: z.number().int(), busy: z.number().int() }),
      waiting: z.number().int().describe('Tasks waiting in the queues'),
      running: z.number().int().describe('Tasks being worked on'),
      queueWait: z
        .object({ samples: z.number().int(), p50Seconds: z.number(), p95Seconds: z.number() })
        .describe('Dispatch to claim over the window: tasks claimed in it, and those still waiting (their wait so far)'),
      busySlots: z.number().int(),
      slots: z.number().int(),
      saturation: z.number().describe('busySlots / slots; 1 when tasks wait and no agent has a slot'),
      idleAgentMinutes: z.number().describe('Minutes agents of the type were up with nothing to run, over the window'),
      taskSeconds: z.number().describe('Mean run time of the tasks that finished in the window (assumed when none did)'),
      durationObserved: z.boolean(),
      agentsNeeded: z.number().int().describe('Agents that would finish the waiting and running tasks within targetMinutes'),
    }),
  ),
  bottleneck: z.string().describe('The bottleneck, in one sentence'),
});

export const Health = z.object({
  overall: z.enum(['healthy', 'degraded']),
  agents: z.object({ total: z.number().int(), byStatus: z.record(z.string(), z.number().int()) }),
  queues: z.array(z.object({ agentType: z.enum(AGENT_TYPES), visible: z.number().int(), inFlight: z.number().int(), high: z.number().int().optional() })),
  breakers: z.object({ open: z.array(z.string()), total: z.number().int() }),
});

export const BreakerSchema = z.object({
  key: z.string(),
  state: z.enum(['closed', 'open', 'half-open']),
  failures: z.number().int(),
  openedAt: time().optional(),
  nextProbeAt: time().optional(),
});
export const BreakerList = z.object({ items: z.array(BreakerSchema) });
export const BreakerReset = z.object({ key: z.string(), state: z.literal('closed') });

export const DeadLetterList = z.object({
  items: z.array(
    z.object({
      queue: z.string(),
      deadLetterQueue: z.string(),
      depth: z.number().int(),
      messages: z.array(
        z.object({
          messageId: z.string(),
          executionId: z.string().optional(),
          taskIndex: z.number().int().optional(),
          dispatchSeq: z.number().int().optional(),
          taskId: z.string().optional(),
          taskStatus: z.enum(['pending', 'queued', 'running', 'completed', 'failed', 'skipped']).optional(),
          receiveCount: z.number().int(),
          sentAt: time().optional(),
          taskFailed: z.boolean(),
          note: z.string().optional(),
        }),
      ),
    }),
  ),
});

export const DeadLettersRedriven = z.object({
  items: z.array(
    z.object({
      queue: z.string(),
      mode: z.enum(['move-task', 'copied']).optional(),
      messages: z.number().int(),
      taskHandle: z.string().optional(),
      error: z.string().optional(),
    }),
  ),
});


export const LogLineSchema = z.object({
  time: time(),
  level: z.string().describe('DEBUG, INFO, WARN or ERROR'),
  message: z.string(),
  source: z.string().describe("Who wrote it: a function's service (xl-steps, xl-api-executions, ...) or `agent`"),
  executionId: z.string().optional(),
  taskId: z.string().optional(),
  taskIndex: z.number().int().optional(),
  agentId: z.string().optional(),
  fields: z.record(z.string(), z.unknown()).describe("The line's other fields"),
});

export const LogPage = z.object({
  items: z.array(LogLineSchema),
  nextToken: z.string().optional().describe('More lines are there now: ask again with it'),
  followToken: z.string().describe('Where lines written later will start: ask again with it as nextToken to follow the log'),
});

/** One of the layer's events (core/events.ts): its kind's fields beside these. */
export const LayerEventSchema = z
  .looseObject({
    id: z.string().describe('Increasing: send the last one seen as Last-Event-ID (or `after`) to resume'),
    at: time(),
    kind: z.enum(LAYER_EVENT_KINDS),
    executionId: z.string().optional(),
    taskId: z.string().optional(),
    agentId: z.string().optional(),
    key: z.string().optional().describe('A circuit breaker (breaker.*)'),
    message: z.string().optional(),
  })
  .describe('An event of the layer; the fields beside these depend on its kind (README, "Events and notifications")');

export const EventList = z.object({
  items: z.array(LayerEventSchema),
  lastEventId: z.string().optional().describe('The id of the last item, when there is one'),
});
