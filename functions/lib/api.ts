// What the API's functions share (functions/api-*.ts, one per route group: core/api-groups.ts).
import { AGENT_TYPES, type AgentType } from '#core/agent-types.ts';
import { NotFoundError, ValidationError } from '#core/errors.ts';
import { toJsonPointer } from '#core/json-pointer.ts';
import { queueBacklog } from './deps.ts';
import { bearerToken, dispatch, errorBody, type Route } from './http.ts';
import { lambdaHandler } from './observability.ts';

/** A request schema (zod's classic or mini API alike). */
interface RequestSchema<T> {
  safeParse(body: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
}

/** A request body checked against its schema; a bad one is a validation error naming each field. */
export function parse<T>(schema: RequestSchema<T>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const details = result.error.issues.map((i) => ({ path: toJsonPointer(i.path), message: i.message }));
  throw new ValidationError(details.map((d) => `${d.path || '/'}: ${d.message}`).join('; '), details);
}

export const agentTypeParam = (value: string): AgentType => {
  if (!(AGENT_TYPES as readonly string[]).includes(value)) throw new NotFoundError(`no agent type ${value}`);
  return value as AgentType;
};

export const backlog = (type: AgentType) => queueBacklog().of(type);

/** A group's routes as one Lambda handler: behind the local bearer token, errors in the contract's body. */
export const apiHandler = (routes: Route[]) => lambdaHandler(dispatch(routes)).use(bearerToken()).use(errorBody());
