// The HTTP API of CONTRACT.md behind API Gateway: IAM (SigV4) on every method, everything proxied to
// functions/api.ts, stage v1.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { XlFunction } from './functions.ts';

export const API_STAGE = 'v1';
/** Steady requests per second and burst, per stage (account limits still apply). */
export const API_THROTTLING = { rateLimit: 50, burstLimit: 100 };

export interface ApiProps {
  /** Shared function environment, the XL_SFN_* variables and the agents' ECS environment. */
  readonly environment: Record<string, string>;
}

export class Api extends Construct {
  readonly handler: XlFunction;
  readonly restApi: apigw.RestApi;
  readonly accessLogGroup: logs.LogGroup;
  readonly requestValidator: apigw.RequestValidator;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.handler = new XlFunction(this, 'Handler', {
      entry: 'functions/api.ts',
      logicalId: 'ApiFunction',
      serviceName: 'xl-api',
      description: 'The HTTP API (CONTRACT.md)',
      environment: props.environment,
      // API Gateway gives up after 29 s.
      timeout: Duration.seconds(29),
      memorySize: 512,
    });

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
    this.requestValidator = this.restApi.addRequestValidator('RequestValidator', {
      validateRequestParameters: true,
      validateRequestBody: true,
    });

    const integration = new apigw.LambdaIntegration(this.handler.function, { proxy: true, allowTestInvoke: false });
    const methodOptions: apigw.MethodOptions = {
      authorizationType: apigw.AuthorizationType.IAM,
      requestValidator: this.requestValidator,
    };
    this.restApi.root.addMethod('ANY', integration, methodOptions);
    this.restApi.root.addResource('{proxy+}').addMethod('ANY', integration, methodOptions);
  }

  /** `https://<id>.execute-api.<region>.<suffix>/v1/` */
  get url(): string {
    return this.restApi.url;
  }
}
