// The HTTP API of CONTRACT.md behind API Gateway, route by route: every route of the OpenAPI document
// (core/openapi.ts) is its own resource and method, IAM (SigV4) authorized, with its path parameters
// required and its request body checked against a model made from the same zod schema, so a
// malformed request is refused before Lambda runs. Stage v1. A few functions serve them, one per
// route group (core/api-groups.ts: executions, logs, pool, operations), each method integrated with
// its group's function: each function bundles only the clients its routes call and holds only
// their grants (infra/stack.ts).
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { API_GROUPS, API_GROUP_ENTRIES, type ApiGroup, apiGroupOf } from '#core/api-groups.ts';
import { gatewayRoutes } from '#core/openapi.ts';
import { XlFunction } from './functions.ts';

export const API_STAGE = 'v1';
/** Steady requests per second and burst, per stage (account limits still apply). */
export const API_THROTTLING = { rateLimit: 50, burstLimit: 100 };

/**
 * The body of API Gateway's 400s: the contract's error (CONTRACT.md). `messageString` is substituted
 * as a quoted, escaped JSON string; `validationErrorString` (which property failed) is substituted
 * bare, and its messages hold double quotes (`missing required properties (["name"])`), which would
 * break the JSON: so the body carries the former, and the handler's own checks (the same zod
 * schemas) name the JSON Pointer for requests that pass the model.
 */
export const BAD_REQUEST_TEMPLATE = '{"error":{"type":"validation","source":"api","message":$context.error.messageString}}';

export interface ApiProps {
  /** Every API function's environment (tables, bucket, queue prefix, events, contract defaults). */
  readonly environment: Record<string, string>;
  /** What a group's function needs besides: the XL_SFN_* variables (executions), the agents' ECS environment (pool). */
  readonly groupEnvironment?: Partial<Record<ApiGroup, Record<string, string>>>;
}

const DESCRIPTIONS: Record<ApiGroup, string> = {
  executions: 'The HTTP API (CONTRACT.md): /executions',
  logs: 'The HTTP API (CONTRACT.md): /executions/{executionId}/logs',
  pool: 'The HTTP API (CONTRACT.md): /agents and /pool',
  operations: 'The HTTP API (CONTRACT.md): /health, /breakers, /dead-letters, /events, /openapi.json',
};

/** `executions` -> `Executions` (the construct id; the function is `ApiExecutionsFunction`). */
const pascal = (group: ApiGroup) => group[0]!.toUpperCase() + group.slice(1);

export class Api extends Construct {
  /** Each route group's function. */
  readonly handlers: Record<ApiGroup, XlFunction>;
  readonly restApi: apigw.RestApi;
  readonly accessLogGroup: logs.LogGroup;
  /** Checks the body against the method's model, and the required parameters. */
  readonly bodyValidator: apigw.RequestValidator;
  /** Checks the required parameters (methods without a body). */
  readonly parameterValidator: apigw.RequestValidator;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.handlers = Object.fromEntries(
      API_GROUPS.map((group) => [
        group,
        new XlFunction(this, pascal(group), {
          entry: API_GROUP_ENTRIES[group],
          logicalId: `Api${pascal(group)}Function`,
          serviceName: `xl-api-${group}`,
          description: DESCRIPTIONS[group],
          environment: { ...props.environment, ...props.groupEnvironment?.[group] },
          // API Gateway gives up after 29 s.
          timeout: Duration.seconds(29),
          memorySize: 512,
        }),
      ]),
    ) as Record<ApiGroup, XlFunction>;

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', { retention: logs.RetentionDays.ONE_MONTH });
    this.restApi = new apigw.RestApi(this, 'RestApi', {
      restApiName: `${Stack.of(this).stackName}-api`,
      description: 'Execution layer API (IAM auth)',
      endpointTypes: [apigw.EndpointType.REGIONAL],
      // Execution logging needs the account-level CloudWatch role.
      cloudWatchRole: true,
      cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN,
      deployOptions: {
        stageName: API_STAGE,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields({
          caller: true,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: true,
        }),
        loggingLevel: apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        metricsEnabled: true,
        tracingEnabled: true,
        throttlingRateLimit: API_THROTTLING.rateLimit,
        throttlingBurstLimit: API_THROTTLING.burstLimit,
      },
      defaultMethodOptions: { authorizationType: apigw.AuthorizationType.IAM },
    });
    this.bodyValidator = this.restApi.addRequestValidator('BodyValidator', {
      requestValidatorName: 'body-and-parameters',
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    this.parameterValidator = this.restApi.addRequestValidator('ParameterValidator', {
      requestValidatorName: 'parameters',
      validateRequestParameters: true,
      validateRequestBody: false,
    });
    // API Gateway's own 400s in the contract's error body. A gateway response template is simple
    // variable substitution, no VTL (see BAD_REQUEST_TEMPLATE).
    for (const [id, type] of [['BadRequestBody', apigw.ResponseType.BAD_REQUEST_BODY], ['BadRequestParameters', apigw.ResponseType.BAD_REQUEST_PARAMETERS]] as const) {
      this.restApi.addGatewayResponse(id, {
        type,
        statusCode: '400',
        templates: { 'application/json': BAD_REQUEST_TEMPLATE },
      });
    }

    const integrations = Object.fromEntries(
      API_GROUPS.map((group) => [group, new apigw.LambdaIntegration(this.handlers[group].function, { proxy: true, allowTestInvoke: false })]),
    ) as Record<ApiGroup, apigw.LambdaIntegration>;
    const models = new Map<string, apigw.Model>();
    for (const route of gatewayRoutes()) {
      const resource = this.restApi.root.resourceForPath(route.path);
      const requestParameters = Object.fromEntries([
        ...route.pathParameters.map((p) => [`method.request.path.${p}`, true] as const),
        ...route.queryParameters.map((p) => [`method.request.querystring.${p}`, false] as const),
      ]);
      let requestModels: Record<string, apigw.IModel> | undefined;
      if (route.body) {
        const { model: name, schema } = route.body;
        let model = models.get(name);
        if (!model) {
          // The schema is already draft 4 with `$schema`; CDK passes such keys through unchanged.
          model = this.restApi.addModel(`${name}Model`, { modelName: name, contentType: 'application/json', schema: schema as apigw.JsonSchema });
          models.set(name, model);
        }
        // Keyed by content type: a body sent as another type is not checked here (the handler still parses it).
        requestModels = { 'application/json': model };
      }
      resource.addMethod(route.method, integrations[apiGroupOf(route.path)], {
        authorizationType: apigw.AuthorizationType.IAM,
        operationName: route.operationId,
        requestParameters,
        requestModels,
        requestValidator: route.body ? this.bodyValidator : this.parameterValidator,
      });
    }
  }

  /** The API's functions, one per route group. */
  get functions(): XlFunction[] {
    return API_GROUPS.map((group) => this.handlers[group]);
  }

  /** `https://<id>.execute-api.<region>.<suffix>/v1/` */
  get url(): string {
    return this.restApi.url;
  }
}
