// The API is one API (one REST API, one OpenAPI document) served by a few functions, each for the
// routes that touch the same things, so that each carries only its AWS clients and holds only its
// grants: API Gateway integrates each method with its group's function (infra/constructs/api.ts),
// and the local layer routes each request the same way (local/layer.ts).
export const API_GROUPS = ['executions', 'logs', 'pool', 'operations'] as const;
export type ApiGroup = (typeof API_GROUPS)[number];

/** Each group's handler module, relative to the project root. */
export const API_GROUP_ENTRIES: Record<ApiGroup, string> = {
  executions: 'functions/api-executions.ts',
  logs: 'functions/api-logs.ts',
  pool: 'functions/api-pool.ts',
  operations: 'functions/api-operations.ts',
};

/**
 * The group serving a path: a route's template (`/executions/{executionId}`) or a request's path,
 * with or without the stage (`/v1`). By path alone: every method of a path has the same function,
 * so a method a path does not have is answered 405 by that function. Paths no route has go to
 * `operations`, which answers 404.
 * - executions: Step Functions, the payload bucket, the executions table;
 * - logs: CloudWatch Logs (FilterLogEvents on the layer's log groups);
 * - pool: the agents' runtime (ECS) and the queues' depths;
 * - operations: health, circuit breakers, dead letters (SQS), the event stream's pointer, the document.
 */
export function apiGroupOf(requestPath: string): ApiGroup {
  const path = requestPath.replace(/^\/v1(?=\/)/, '');
  if (/^\/executions\/[^/]+\/logs\/?$/.test(path)) return 'logs';
  if (/^\/executions(\/|$)/.test(path)) return 'executions';
  if (/^\/(agents|pool)(\/|$)/.test(path)) return 'pool';
  return 'operations';
}
