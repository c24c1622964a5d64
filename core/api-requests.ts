// The HTTP API's request bodies and query filters, which its functions parse (functions/api-pool.ts,
// functions/api-operations.ts, functions/api-executions.ts). zod/mini, with zod's English messages: the classic API, whose every
// schema core/api-schemas.ts holds for the OpenAPI document, would add about 80 KB to each of those
// functions. The document and API Gateway's models are made from these same schemas (core/openapi.ts).
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { AGENT_TYPES } from './agent-types.ts';

z.config(en());

export const StartAgentsRequest = z.strictObject({
  agentType: z.enum(AGENT_TYPES),
  count: z._default(z.int().check(z.gte(1), z.lte(50)), 1),
});

export const PoolBoundsRequest = z.strictObject({
  min: z.optional(z.int().check(z.gte(0), z.lte(100))),
  max: z.optional(z.int().check(z.gte(0), z.lte(100))),
});

export const RedriveDeadLettersRequest = z.strictObject({
  queue: z.optional(z.string()).check(z.describe('One task queue (`<agentType>-<priority>`, e.g. coder-normal); every non-empty DLQ when absent')),
});

const EXECUTION_STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT'] as const;

/** GET /executions' filters, from its query string (`status=FAILED,TIMED_OUT&name=nightly`). */
export const ExecutionListFilter = z.object({
  status: z.optional(
    z.pipe(
      z.pipe(z.string(), z.transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean))),
      z.array(z.enum(EXECUTION_STATUSES)).check(z.minLength(1)),
    ),
  ),
  name: z.optional(z.string().check(z.maxLength(80))),
  // A page holds at most 100: a larger limit reads as 100 (as it always has), anything but a positive integer is refused.
  limit: z._default(
    z.pipe(
      z.string().check(z.regex(/^0*[1-9]\d*$/, 'must be a positive integer (at most 100 are listed)')),
      z.transform((v) => Math.min(100, Number(v))),
    ),
    50,
  ),
  nextToken: z.optional(z.string()),
});
