// The dispatch message: what the state machine's Dispatch step puts on a task queue (ids, the
// token, whether it is a breaker probe, and the breakers to report to). Agents read it; so does the dead-letter sweep.
import * as z from 'zod';
import type { DispatchMessage } from './records.ts';

export const DispatchMessageSchema = z.object({
  executionId: z.string().min(1).max(256),
  taskIndex: z.number().int().min(0),
  dispatchSeq: z.number().int().min(0),
  dispatchTimeoutSeconds: z.number().positive(),
  taskToken: z.string().min(1),
  probe: z.boolean().optional(),
  /** The circuit breakers to report a success to (core/breakers.ts): Gate names them. */
  breakers: z.array(z.string().min(1).max(512)).max(16).optional(),
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
