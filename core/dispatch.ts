// The dispatch message: what the state machine's Dispatch step puts on a task queue (ids, the
// token, whether it is a breaker probe, and the breakers to report to). Agents read it; so does the dead-letter sweep.
// zod/mini: the same checks in a fifth of the bundle (the pool manager and the steps read dispatches).
import * as z from 'zod/mini';
import type { DispatchMessage } from './records.ts';

export const DispatchMessageSchema = z.object({
  executionId: z.string().check(z.minLength(1), z.maxLength(256)),
  taskIndex: z.int().check(z.gte(0)),
  dispatchSeq: z.int().check(z.gte(0)),
  dispatchTimeoutSeconds: z.number().check(z.positive()),
  taskToken: z.string().check(z.minLength(1)),
  probe: z.optional(z.boolean()),
  /** The circuit breakers to report a success to (core/breakers.ts): Gate names them. */
  breakers: z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(512))).check(z.maxLength(16))),
});

/** The message as a dispatch, or undefined for anything else (not JSON, other fields). */
export function parseDispatch(body: string | undefined): DispatchMessage | undefined {
  if (!body) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  const parsed = DispatchMessageSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}
