// The HTTP API's request bodies, which its functions parse (functions/api-pool.ts,
// functions/api-operations.ts). zod/mini, with zod's English messages: the classic API, whose every
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
