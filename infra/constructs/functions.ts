// The one place that fixes how every Lambda function of the layer is built and run.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CfnResource, Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The project root (where package.json and the lock file are). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Contract defaults every function and agent sees (CONTRACT.md, docs/design.md). */
export const HEARTBEAT_SECONDS = 60;
export const DISPATCH_ALLOWANCE_SECONDS = 86_400;

export const FUNCTION_RUNTIME = lambda.Runtime.NODEJS_22_X;
export const FUNCTION_ARCHITECTURE = lambda.Architecture.ARM_64;
export const FUNCTION_LOG_RETENTION = logs.RetentionDays.ONE_MONTH;

/**
 * ESM bundles have no `require`; some CommonJS dependencies call it for Node built-ins. The alias keeps
 * the banner from clashing with a bundled `createRequire` import.
 */
export const REQUIRE_BANNER =
  "import { createRequire as __xlCreateRequire } from 'node:module'; const require = __xlCreateRequire(import.meta.url);";

/** How every handler is bundled (the benchmarks bundle the same way to report deployed sizes). */
export const BUNDLE_TARGET = 'node22';
export const BUNDLE_MAIN_FIELDS = ['module', 'main'];
/**
 * Build-time stand-ins for code a Lambda function never runs (each module says why):
 * - the SDK's default credential chain (SSO, INI, web identity, IMDS, with nested STS/SSO clients):
 *   Lambda gives functions their credentials in environment variables, about 90 KB;
 * - event streams (@smithy/core/event-streams, about 14 KB): no operation the handlers call streams,
 *   but every protocol's dynamic import of them is inlined into a single-file bundle;
 * - mnemonist's LRU cache (about 5 KB): the DynamoDB client's endpoint-discovery cache, only ever
 *   read empty (no operation the handlers call uses endpoint discovery), gets a small one.
 */
export const BUNDLE_ALIASES: Record<string, string> = {
  '@aws-sdk/credential-provider-node': path.join(PROJECT_ROOT, 'functions/lib/lambda-credentials.ts'),
  '@smithy/core/event-streams': path.join(PROJECT_ROOT, 'functions/lib/no-event-streams.ts'),
  'mnemonist/lru-cache': path.join(PROJECT_ROOT, 'functions/lib/lru-cache.ts'),
};

/**
 * The opt-in OpenTelemetry layer (the `otelLayerArn` context key; README "Observability"): an AWS
 * Distro for OpenTelemetry Lambda layer of the AWSOpenTelemetryDistroJs family, run through Lambda's
 * exec wrapper as the CDK's AdotInstrumentationConfig documentation says for those layers (addLayers,
 * AWS_LAMBDA_EXEC_WRAPPER=/opt/otel-instrument). Its SDK lives in the layer, not in the bundles.
 */
export const OTEL_EXEC_WRAPPER = '/opt/otel-instrument';
/** Lambda API, Layer.Arn: a layer version's ARN (pattern and at most 140 characters). */
const LAYER_VERSION_ARN = /^arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+$/;

/** A context key's value as a Lambda layer version ARN, or undefined when unset; anything else fails the synth, naming the key. */
export function layerVersionArnContext(key: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && value.length <= 140 && LAYER_VERSION_ARN.test(value)) return value;
  throw new Error(
    `${key} must be a Lambda layer version ARN (arn:<partition>:lambda:<region>:<account>:layer:<name>:<version>), got ${JSON.stringify(value)}`,
  );
}

/**
 * The one set of esbuild options behind every deployed bundle (XlFunction maps it onto
 * NodejsFunction's bundling) and behind the benchmarks' sizes (bench/bundles.ts builds with it).
 * Source maps are the one difference: written beside the deployed bundle, not counted in its size.
 */
export const BUNDLE_OPTIONS = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: BUNDLE_TARGET,
  mainFields: BUNDLE_MAIN_FIELDS,
  minify: true,
  alias: BUNDLE_ALIASES,
  banner: { js: REQUIRE_BANNER },
} as const;

export interface XlFunctionProps {
  /** Handler module, relative to the project root, e.g. `functions/steps.ts`; exports `handler`. */
  readonly entry: string;
  /** The template's logical id for the function, e.g. `StepsFunction`. */
  readonly logicalId: string;
  /** POWERTOOLS_SERVICE_NAME. */
  readonly serviceName: string;
  readonly description?: string;
  readonly environment?: Record<string, string>;
  /** Default 30 s. */
  readonly timeout?: Duration;
  /** Default 512 MiB. */
  readonly memorySize?: number;
  /** Reserved concurrency (default none: the function draws on the account's unreserved pool). */
  readonly reservedConcurrentExecutions?: number;
}

/**
 * A NodejsFunction with the layer's fixed settings: nodejs22.x on ARM64, its own log group with
 * retention, its own role (no managed policies), X-Ray active tracing, a minified ESM bundle with source maps and the AWS SDK
 * bundled (its pinned version, not the runtime's), and `xl:entry` / `xl:handler` metadata so the local layer runs the same module in process.
 */
export class XlFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  /** Entry module relative to the project root. */
  readonly entry: string;
  /** The template's logical id of the function. */
  readonly logicalId: string;

  constructor(scope: Construct, id: string, props: XlFunctionProps) {
    super(scope, id);
    this.entry = props.entry;
    this.logicalId = props.logicalId;
    const entryPath = path.join(PROJECT_ROOT, props.entry);
    if (!existsSync(entryPath)) throw new Error(`function entry ${props.entry} does not exist (${entryPath})`);

    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: FUNCTION_LOG_RETENTION });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.serviceName}: ${props.entry}`,
    });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): this function's group only.
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: entryPath,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      runtime: FUNCTION_RUNTIME,
      architecture: FUNCTION_ARCHITECTURE,
      description: props.description,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(30),
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      // X-Ray active tracing, as on API Gateway and Step Functions: one trace from the request to the
      // steps. CDK adds xray:PutTraceSegments/PutTelemetryRecords (no resource-level permissions) to the role.
      tracing: lambda.Tracing.ACTIVE,
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        // BUNDLE_OPTIONS, field by field (NodejsFunction always bundles, for the node platform).
        format: OutputFormat.ESM,
        target: BUNDLE_OPTIONS.target,
        mainFields: [...BUNDLE_OPTIONS.mainFields],
        minify: BUNDLE_OPTIONS.minify,
        banner: BUNDLE_OPTIONS.banner.js,
        esbuildArgs: Object.fromEntries(Object.entries(BUNDLE_OPTIONS.alias).map(([from, to]) => [`--alias:${from}`, to])),
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        sourcesContent: false,
        bundleAwsSDK: true,
        externalModules: [],
        logLevel: LogLevel.WARNING,
      },
    });
    const cfn = this.function.node.defaultChild as lambda.CfnFunction;
    cfn.overrideLogicalId(props.logicalId);
    cfn.addMetadata('xl:entry', props.entry);
    cfn.addMetadata('xl:handler', 'handler');
  }

  /**
   * Runs the function under an OpenTelemetry layer (OTEL_EXEC_WRAPPER): the layer's instrumentation
   * wraps the handler as the runtime starts; the bundle is unchanged.
   */
  addOpenTelemetryLayer(layerVersionArn: string): void {
    this.function.addLayers(lambda.LayerVersion.fromLayerVersionArn(this, 'OpenTelemetryLayer', layerVersionArn));
    this.function.addEnvironment('AWS_LAMBDA_EXEC_WRAPPER', OTEL_EXEC_WRAPPER);
  }

  /** The function's ARN. */
  get functionArn(): string {
    return this.function.functionArn;
  }

  /** The L1 resource (for metadata and nag suppressions). */
  get cfnFunction(): CfnResource {
    return this.function.node.defaultChild as CfnResource;
  }
}
