// The plan format of CONTRACT.md as zod schemas: what a user submits, and the same plan with
// every default applied (the form that is stored, hashed for idempotency and run).
import { createHash } from 'node:crypto';
import * as z from 'zod';
import { AGENT_TYPES, CAPABILITIES, PRIORITIES } from './agent-types.ts';
import { ERROR_TYPES, type ErrorDetail, ValidationError } from './errors.ts';
import { toJsonPointer } from './json-pointer.ts';
import { BACKOFF_STRATEGIES, ESCALATIONS, JITTERS } from './recovery.ts';
import { FRAMEWORKS, LANGUAGES, codegenIssues } from './engines/codegen.ts';
import { reviewIssues } from './engines/review.ts';
import { TEST_FRAMEWORKS, TEST_LEVELS, testsIssues } from './engines/testgen.ts';

const NAME = /^[A-Za-z0-9_-]{1,80}$/;
const TASK_ID = /^[A-Za-z0-9_-]{1,64}$/;

export const DEFAULT_TIMEOUT_SECONDS = 1800;
export const DEFAULT_MAX_CONCURRENCY = 10;

/** The largest default output a fallback may carry: it is kept on the task's record (DynamoDB's 400 KB item). */
export const MAX_DEFAULT_OUTPUT_BYTES = 32 * 1024;

/** How long to wait before a retry (the design's BackoffStrategy). */
const backoffSchema = z
  .object({
    strategy: z.enum(BACKOFF_STRATEGIES),
    baseSeconds: z.number().min(0).max(3600).optional(),
    capSeconds: z.number().min(0).max(86400).optional(),
    jitter: z.enum(JITTERS).optional(),
  })
  .strict()
  .refine((b) => b.baseSeconds === undefined || b.capSeconds === undefined || b.capSeconds >= b.baseSeconds, {
    message: 'capSeconds must not be below baseSeconds',
    path: ['capSeconds'],
  });

/** What happens once the retries are spent (the design's FallbackAction). */
const fallbackSchema = z.discriminatedUnion('action', [
  z.object({ action: z.literal('agent-type'), agentType: z.enum(AGENT_TYPES) }).strict(),
  z
    .object({ action: z.literal('default-output'), output: z.record(z.string(), z.unknown()) })
    .strict()
    .refine((f) => Buffer.byteLength(JSON.stringify(f.output)) <= MAX_DEFAULT_OUTPUT_BYTES, {
      message: `a default output is at most ${MAX_DEFAULT_OUTPUT_BYTES} bytes of JSON`,
      path: ['output'],
    }),
  z.object({ action: z.literal('skip'), reason: z.string().min(1).max(500).optional() }).strict(),
]);

const recoveryOverride = z
  .object({
    maxRetries: z.number().int().min(0).max(20).optional(),
    // The first form of the backoff (exponential, full jitter): still accepted, `backoff` is the whole one.
    baseDelaySeconds: z.number().min(0).max(3600).optional(),
    maxDelaySeconds: z.number().min(0).max(86400).optional(),
    backoff: backoffSchema.optional(),
    fallback: fallbackSchema.optional(),
    escalation: z.enum(ESCALATIONS).optional(),
    onOpen: z.enum(['fail', 'wait']).optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.backoff && (r.baseDelaySeconds !== undefined || r.maxDelaySeconds !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['backoff'], message: 'give either backoff or baseDelaySeconds/maxDelaySeconds, not both' });
    }
  });

/** Result caching (core/result-cache.ts). DynamoDB's TTL deletes within days, not at once: expiry is checked on every read as well. */
export const MAX_CACHE_TTL_SECONDS = 30 * 86400;

export const TaskCacheSchema = z
  .object({
    ttlSeconds: z.number().int().min(1).max(MAX_CACHE_TTL_SECONDS),
    key: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe("Stands for the task's definition in the cache key (input and commit still count): tasks of any plan with the same key, input and commit share results"),
  })
  .strict();

export type TaskCache = z.infer<typeof TaskCacheSchema>;

export const TaskSchema = z
  .object({
    id: z.string().regex(TASK_ID, 'must match [A-Za-z0-9_-]{1,64}'),
    agentType: z.enum(AGENT_TYPES),
    capability: z.string().min(1).optional(),
    instructions: z.string().min(1).optional(),
    command: z.string().min(1).optional(),
    timeoutSeconds: z.number().int().min(1).max(86400).default(DEFAULT_TIMEOUT_SECONDS),
    failureStrategy: z.enum(['stop', 'continue']).default('stop'),
    priority: z.enum(PRIORITIES).default('normal'),
    recovery: z.partialRecord(z.enum(ERROR_TYPES), recoveryOverride).optional(),
    workspace: z
      .object({
        repository: z.string().min(1),
        ref: z.string().min(1).optional(),
        pushBranch: z.string().min(1).optional(),
        credentialsSecret: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    limits: z
      .object({
        maxTurns: z.number().int().min(1).optional(),
        maxBudgetUsd: z.number().positive().optional(),
      })
      .strict()
      .optional(),
    coverageTargets: z
      .object({
        lines: z.number().min(0).max(100).optional(),
        branches: z.number().min(0).max(100).optional(),
        functions: z.number().min(0).max(100).optional(),
      })
      .strict()
      .optional(),
    review: z
      .object({
        criteria: z.array(z.string()).optional(),
        qualityGates: z.array(z.record(z.string(), z.unknown())).optional(),
      })
      .strict()
      .optional(),
    // The engines (core/engines/): optional, so plans without them mean what they always meant.
    codegen: z
      .object({
        language: z.enum(LANGUAGES),
        framework: z.enum(FRAMEWORKS).optional(),
      })
      .strict()
      .optional(),
    // Opt-in result caching (core/result-cache.ts).
    cache: TaskCacheSchema.optional(),
    // Prefer an agent that recently ran the same key (default: the workspace repository).
    affinity: z.string().min(1).max(256).optional(),
    tests: z
      .object({
        level: z.enum(TEST_LEVELS).optional(),
        framework: z.enum(TEST_FRAMEWORKS),
        command: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((task, ctx) => {
    if ((task.instructions === undefined) === (task.command === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'exactly one of instructions or command is required', path: [] });
    }
    if (task.cache && task.workspace?.pushBranch !== undefined) {
      // A result taken from the cache pushes nothing: the branch would silently not move.
      ctx.addIssue({ code: 'custom', path: ['cache'], message: 'cache cannot be combined with workspace.pushBranch (a cached result pushes no branch)' });
    }
    if (task.capability !== undefined && !CAPABILITIES[task.agentType].includes(task.capability)) {
      ctx.addIssue({
        code: 'custom',
        path: ['capability'],
        message: `${task.agentType} has no capability "${task.capability}" (it has ${CAPABILITIES[task.agentType].join(', ')})`,
      });
    }
    if (task.codegen) {
      for (const issue of codegenIssues(task.codegen, task)) ctx.addIssue({ code: 'custom', ...issue });
      if (task.agentType === 'reviewer') ctx.addIssue({ code: 'custom', path: ['codegen'], message: 'a reviewer changes nothing: code generation is for coders and other writing agent types' });
    }
    for (const issue of testsIssues(task)) ctx.addIssue({ code: 'custom', ...issue });
    for (const [errorType, r] of Object.entries(task.recovery ?? {})) {
      if (r.onOpen !== undefined && errorType !== 'dependency') {
        ctx.addIssue({ code: 'custom', path: ['recovery', errorType, 'onOpen'], message: 'onOpen applies to dependency failures only (a circuit breaker refusing the task)' });
      }
      const fallback = r.fallback;
      if (fallback?.action !== 'agent-type') continue;
      const path = ['recovery', errorType, 'fallback', 'agentType'];
      if (fallback.agentType === task.agentType) ctx.addIssue({ code: 'custom', path, message: `the fallback agent type is the task's own (${task.agentType})` });
      else if (task.capability !== undefined && !CAPABILITIES[fallback.agentType].includes(task.capability)) {
        ctx.addIssue({ code: 'custom', path, message: `${fallback.agentType} has no capability "${task.capability}" (it has ${CAPABILITIES[fallback.agentType].join(', ')})` });
      }
    }
    if (task.review) for (const issue of reviewIssues(task.review)) ctx.addIssue({ code: 'custom', ...issue });
  });

export const StageSchema = z
  .object({
    name: z.string().min(1).max(80),
    tasks: z.array(TaskSchema).min(1),
  })
  .strict();

const input = z.record(z.string(), z.unknown());

/** The whole plan's spend: once the tasks have recorded this much, no further task is dispatched. */
const planLimits = z
  .object({ maxBudgetUsd: z.number().positive().optional() })
  .strict()
  .optional();

export const PlanSchema = z
  .discriminatedUnion('pattern', [
    z
      .object({
        name: z.string().regex(NAME, 'must match [A-Za-z0-9_-]{1,80}').optional(),
        pattern: z.literal('sequential'),
        tasks: z.array(TaskSchema).min(1),
        input: input.default({}),
        limits: planLimits,
      })
      .strict(),
    z
      .object({
        name: z.string().regex(NAME, 'must match [A-Za-z0-9_-]{1,80}').optional(),
        pattern: z.literal('parallel'),
        tasks: z.array(TaskSchema).min(1),
        maxConcurrency: z.number().int().min(1).default(DEFAULT_MAX_CONCURRENCY),
        input: input.default({}),
        limits: planLimits,
      })
      .strict(),
    z
      .object({
        name: z.string().regex(NAME, 'must match [A-Za-z0-9_-]{1,80}').optional(),
        pattern: z.literal('pipeline'),
        stages: z.array(StageSchema).min(1),
        input: input.default({}),
        limits: planLimits,
      })
      .strict(),
  ])
  .superRefine((plan, ctx) => {
    // Task ids are unique within the plan, across stages too.
    const seen = new Map<string, string>();
    const check = (id: string, path: (string | number)[]) => {
      const where = '/' + path.join('/');
      const first = seen.get(id);
      if (first) ctx.addIssue({ code: 'custom', path: [...path, 'id'], message: `duplicate task id "${id}" (first at ${first})` });
      else seen.set(id, where);
    };
    if (plan.pattern === 'pipeline') {
      plan.stages.forEach((s, si) => s.tasks.forEach((t, ti) => check(t.id, ['stages', si, 'tasks', ti])));
      const names = new Set<string>();
      plan.stages.forEach((s, si) => {
        if (names.has(s.name)) ctx.addIssue({ code: 'custom', path: ['stages', si, 'name'], message: `duplicate stage name "${s.name}"` });
        names.add(s.name);
      });
    } else {
      plan.tasks.forEach((t, i) => check(t.id, ['tasks', i]));
    }
  });

export type Task = z.output<typeof TaskSchema>;
export type Stage = z.output<typeof StageSchema>;
export type Plan = z.output<typeof PlanSchema>;
export type PlanInput = z.input<typeof PlanSchema>;
export type Pattern = Plan['pattern'];


/** Parses a submitted plan, applying defaults. Throws ValidationError with a JSON Pointer per problem. */
export function parsePlan(body: unknown): Plan {
  const result = PlanSchema.safeParse(body);
  if (result.success) return result.data;
  const details: ErrorDetail[] = result.error.issues.map((issue) => ({
    path: toJsonPointer(issue.path),
    message: issue.message,
  }));
  throw new ValidationError(`invalid plan: ${details.map((d) => `${d.path || '/'}: ${d.message}`).join('; ')}`, details);
}

/** Every task of the plan in run order, with its stage index (0 for non-pipeline plans). */
export function planTasks(plan: Plan): { task: Task; stage: number }[] {
  if (plan.pattern === 'pipeline') return plan.stages.flatMap((s, stage) => s.tasks.map((task) => ({ task, stage })));
  return plan.tasks.map((task) => ({ task, stage: 0 }));
}

/** Stable JSON (sorted keys) so that deep-equal plans hash alike. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return '{' + entries.map(([k, v]) => JSON.stringify(k) + ':' + canonicalJson(v)).join(',') + '}';
  }
  return JSON.stringify(value);
}

/** The idempotency fingerprint of a plan once its defaults are applied. */
export function planHash(plan: Plan): string {
  return createHash('sha256').update(canonicalJson(plan)).digest('hex');
}
