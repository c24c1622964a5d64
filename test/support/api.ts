// The whole API as one handler, routed to each group's function as API Gateway and the local layer
// route it (core/api-groups.ts): for tests that call the API without a layer around it.
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { type ApiGroup, apiGroupOf } from '#core/api-groups.ts';
import * as executions from '../../functions/api-executions.ts';
import * as logs from '../../functions/api-logs.ts';
import * as operations from '../../functions/api-operations.ts';
import * as pool from '../../functions/api-pool.ts';

const groups: Record<ApiGroup, typeof executions> = { executions, logs, pool, operations };

/** Every route of the API, each from its group's module. */
export const routes = Object.values(groups).flatMap((g) => g.routes);

/** API Gateway sends a declared resource's requests to its method's function, whatever base path a custom domain adds. */
export const handler = (event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> => {
  const declared = routes.some((r) => r.template === event.resource);
  return groups[apiGroupOf(declared ? event.resource : event.path)].handler(event, context ?? ({} as Context));
};
