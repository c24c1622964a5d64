// The execution layer: one stack, one construct per concern. Environment-agnostic (no lookups), so
// `cdk synth` works offline and without credentials; the local layer reads the same template.
import { CfnOutput, Fn, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { Agents } from './constructs/agents.ts';
import { Api } from './constructs/api.ts';
import { DataEncryption } from './constructs/encryption.ts';
import { LayerEvents } from './constructs/events.ts';
import { Observability } from './constructs/observability.ts';
import { DISPATCH_ALLOWANCE_SECONDS, HEARTBEAT_SECONDS, type XlFunction, layerVersionArnContext } from './constructs/functions.ts';
import { Patterns } from './constructs/patterns.ts';
import { Pool } from './constructs/pool.ts';
import { TaskQueues } from './constructs/queues.ts';
import { PayloadStorage } from './constructs/storage.ts';
import { Tables } from './constructs/tables.ts';
import { type BreakerPolicySpec, parseBreakerPolicySpec } from '../core/breakers.ts';
import { metricsNamespace } from '../core/metrics.ts';
import { parseConcurrencySpec } from '../core/pool.ts';

export const DEFAULT_STACK_NAME = 'xl';

export interface ExecutionLayerStackProps extends StackProps {
  /** XL_HEARTBEAT_SECONDS for functions and agents (default 60). */
  readonly heartbeatSeconds?: number;
  /** XL_DISPATCH_ALLOWANCE_SECONDS: queue wait before a task's own timeout counts (default 86400). */
  readonly dispatchAllowanceSeconds?: number;
  /** NAT gateways of the agents' VPC (default 1; 2 survives the loss of an AZ). `-c natGateways=2`. */
  readonly natGateways?: number;
  /** Interface VPC endpoints for the agents' AWS APIs (AgentsProps). `-c interfaceEndpoints=true`. */
  readonly interfaceEndpoints?: boolean;
  /** The Anthropic API key's Secrets Manager secret by complete ARN; without it (or the name), agents use Bedrock (AgentsProps). */
  readonly anthropicApiKeySecretArn?: string;
  /** The same secret by name (refused when the name could pass for an ARN suffix; AgentsProps). */
  readonly anthropicApiKeySecretName?: string;
  /** Prefix of the secrets tasks may name as `credentialsSecret` (default `xl/`). */
  readonly credentialsSecretPrefix?: string;
  /** Task slots per agent, per type (`tester=2,monitor=4`; 1 when unsaid): agents and the pool's sizing. */
  readonly maxConcurrentTasks?: string;
  /** How long an agent idles before the pool manager may drain it (default 120 s). */
  readonly poolIdleSeconds?: number;
  /**
   * Circuit breaker settings per key pattern (`*`, `dependency:git:*`, `agent:coder`), as
   * XL_BREAKER_POLICY on the functions and the agents (core/breakers.ts; defaults: 5 failures in
   * 60 s open a breaker, 30 s cooldown doubling per re-open up to 15 min).
   */
  readonly breakerPolicy?: BreakerPolicySpec;
  /** Subscribes this email address to the alarm topic (default: the `alarmEmail` context); without it the topic has no subscription. */
  readonly alarmEmail?: string;
  /**
   * One customer managed KMS key (rotated) for the queues, tables, payload bucket and log groups,
   * instead of AWS owned/managed keys. `-c kms=true`. Default false.
   */
  readonly kms?: boolean;
  /**
   * Reserved concurrency of the steps function, so that other functions of the account cannot starve
   * the state machines' steps. Default none: Lambda keeps 100 of the account's concurrency
   * unreserved, and a new account's quota may be 10, where any reservation fails the deploy (Lambda
   * Developer Guide, "Configuring reserved concurrency"). `-c stepsReservedConcurrency=50`.
   */
  readonly stepsReservedConcurrency?: number;
  /** Every event POSTed to this HTTPS URL (default: the `webhookUrl` context); infra/constructs/events.ts. */
  readonly webhookUrl?: string;
  /** The secret (ARN) the webhook's key comes from (default: the `webhookKeySecretArn` context; else one is generated). */
  readonly webhookKeySecretArn?: string;
  /** Subscribes this email address to the notification topic (default: the `notificationEmail` context). */
  readonly notificationEmail?: string;
  /**
   * An OpenTelemetry Lambda layer version (AWS Distro for OpenTelemetry, AWSOpenTelemetryDistroJs) for
   * every function, run through AWS_LAMBDA_EXEC_WRAPPER=/opt/otel-instrument (default: the
   * `otelLayerArn` context; without it, none: active tracing alone). README "Observability".
   */
  readonly otelLayerArn?: string;
}

export class ExecutionLayerStack extends Stack {
  readonly tables: Tables;
  readonly storage: PayloadStorage;
  readonly queues: TaskQueues;
  readonly patterns: Patterns;
  readonly agents: Agents;
  readonly pool: Pool;
  readonly api: Api;
  readonly observability: Observability;
  /** The customer managed key of `kms: true`. */
  readonly encryption?: DataEncryption;
  readonly events: LayerEvents;
  /** The environment every function gets (tables, bucket, queue prefix, contract defaults). */
  readonly functionEnvironment: Readonly<Record<string, string>>;

  constructor(scope: Construct, id: string, props: ExecutionLayerStackProps = {}) {
    super(scope, id, {
      description: 'Execution layer for fleets of AI coding agents (Step Functions, SQS, DynamoDB, ECS Fargate)',
      ...props,
    });
    const heartbeatSeconds = props.heartbeatSeconds ?? HEARTBEAT_SECONDS;
    parseConcurrencySpec(props.maxConcurrentTasks); // a bad spec fails the synth, naming the entry
    if (props.poolIdleSeconds !== undefined && !(props.poolIdleSeconds > 0)) throw new Error(`poolIdleSeconds must be a positive number, got ${props.poolIdleSeconds}`);
    // A bad policy fails the synth, naming the field, rather than every function's first call.
    const breakerPolicy = props.breakerPolicy === undefined ? undefined : JSON.stringify(parseBreakerPolicySpec(props.breakerPolicy));
    const steps = props.stepsReservedConcurrency;
    if (steps !== undefined && !(Number.isInteger(steps) && steps >= 1)) {
      throw new Error(`stepsReservedConcurrency must be a whole number of at least 1, got ${steps}`);
    }
    // Checked before anything is built: a malformed ARN fails the synth, naming the key.
    const otelLayerArn = layerVersionArnContext('otelLayerArn', props.otelLayerArn ?? this.node.tryGetContext('otelLayerArn'));
    if (props.natGateways !== undefined && !(Number.isInteger(props.natGateways) && props.natGateways >= 1 && props.natGateways <= 2)) {
      // The agents' VPC spans 2 AZs: one gateway, or one per AZ. (0 would leave agents no way out.)
      throw new Error(`natGateways must be 1 or 2, got ${props.natGateways}`);
    }

    this.tables = new Tables(this, 'Tables');
    this.storage = new PayloadStorage(this, 'Storage');
    this.queues = new TaskQueues(this, 'Queues');
    this.events = new LayerEvents(this, 'Events', {
      webhookUrl: props.webhookUrl ?? this.node.tryGetContext('webhookUrl'),
      webhookKeySecretArn: props.webhookKeySecretArn ?? this.node.tryGetContext('webhookKeySecretArn'),
      notificationEmail: props.notificationEmail ?? this.node.tryGetContext('notificationEmail'),
    });
    this.functionEnvironment = {
      ...this.tables.environment,
      ...this.storage.environment,
      ...this.queues.environment,
      ...this.events.environment,
      XL_HEARTBEAT_SECONDS: String(heartbeatSeconds),
      POWERTOOLS_METRICS_NAMESPACE: metricsNamespace(this.stackName),
      XL_DISPATCH_ALLOWANCE_SECONDS: String(props.dispatchAllowanceSeconds ?? DISPATCH_ALLOWANCE_SECONDS),
      ...(props.maxConcurrentTasks ? { XL_MAX_CONCURRENT_TASKS: props.maxConcurrentTasks } : {}),
      ...(props.poolIdleSeconds !== undefined ? { XL_POOL_IDLE_SECONDS: String(props.poolIdleSeconds) } : {}),
      ...(breakerPolicy ? { XL_BREAKER_POLICY: breakerPolicy } : {}),
    };

    this.patterns = new Patterns(this, 'Patterns', {
      tables: this.tables,
      queues: this.queues,
      environment: this.functionEnvironment,
      stepsReservedConcurrency: props.stepsReservedConcurrency,
    });
    this.agents = new Agents(this, 'Agents', {
      tables: this.tables,
      storage: this.storage,
      queues: this.queues,
      taskTokenSource: this.patterns.taskBatch,
      heartbeatSeconds,
      natGateways: props.natGateways,
      interfaceEndpoints: props.interfaceEndpoints,
      anthropicApiKeySecretArn: props.anthropicApiKeySecretArn,
      anthropicApiKeySecretName: props.anthropicApiKeySecretName,
      credentialsSecretPrefix: props.credentialsSecretPrefix,
      maxConcurrentTasks: props.maxConcurrentTasks,
      breakerPolicy,
    });
    this.pool = new Pool(this, 'Pool', {
      tables: this.tables,
      queues: this.queues,
      agents: this.agents,
      taskTokenSource: this.patterns.taskBatch,
      environment: { ...this.functionEnvironment, ...this.agents.environment },
    });
    this.api = new Api(this, 'Api', {
      environment: this.functionEnvironment,
      groupEnvironment: { executions: this.patterns.environment, pool: this.agents.environment },
    });

    // The API's functions, each with what its routes need (core/api-groups.ts).
    const { executions, logs, pool, operations } = this.api.handlers;
    // POST, GET and DELETE /executions, and the redrive: start and stop pattern executions, the
    // records, the plans and results in the bucket.
    this.patterns.grantStartAndStop(executions.role);
    this.tables.grantReadWriteAll(executions.role);
    this.storage.grantReadWrite(executions.role);
    // GET /executions/{id}/logs (xl logs): the execution's record, then FilterLogEvents over the
    // functions' and the agents' log groups.
    this.tables.executions.grantReadData(logs.role);
    const logGroups = [...this.functions.map((f) => f.logGroup), this.agents.logGroup];
    logs.function.addEnvironment('XL_LOG_GROUPS', Fn.join(',', logGroups.map((g) => g.logGroupName)));
    iam.Grant.addToPrincipal({ grantee: logs.role, actions: ['logs:FilterLogEvents'], resourceArns: logGroups.map((g) => g.logGroupArn) });
    // /agents and /pool: the pool's runtime port (start and stop agents), the records, queue depths.
    this.tables.grantReadWriteAll(pool.role);
    this.queues.grantReadAttributes(pool.role);
    this.agents.grantPoolControl(pool.role);
    // GET /health (records, queue depths), /breakers (reset), GET /dead-letters and POST /dead-letters/redrive.
    this.tables.grantReadWriteAll(operations.role);
    this.queues.grantReadAttributes(operations.role);
    this.queues.grantDeadLetterRead(operations.role);
    this.queues.grantDeadLetterRedrive(operations.role);

    this.observability = new Observability(this, 'Observability', {
      patterns: this.patterns,
      queues: this.queues,
      api: this.api,
      functions: this.functions,
      alarmEmail: props.alarmEmail ?? this.node.tryGetContext('alarmEmail'),
      eventsDeadLetters: this.events.deadLetters,
    });

    if (props.kms) {
      const encryption = new DataEncryption(this, 'Encryption');
      for (const q of [...this.queues.allQueues, this.patterns.executionEventsDeadLetters, this.events.deadLetters]) encryption.encryptQueue(q);
      for (const t of [this.tables.executions, this.tables.agents, this.tables.breakers]) encryption.encryptTable(t);
      // The access logs bucket stays SSE-S3: S3 server access logging cannot write to SSE-KMS.
      encryption.encryptBucket(this.storage.bucket);
      encryption.encryptLogGroups(this);
      // Who reads or writes that data: the functions, TaskBatch (it sends the dispatch messages) and the agents.
      encryption.grantData(...this.functions.map((f) => f.role), this.patterns.taskBatch, ...Object.values(this.agents.taskRoles));
      this.encryption = encryption;
    }
    // Every function emits events (steps, reconcile, pool, health, API); undelivered ones alarm.
    this.events.grantPut(this.functions);
    // Opt-in spans from an OpenTelemetry layer, outside the bundles (active tracing stays on without it).
    if (otelLayerArn) for (const fn of this.functions) fn.addOpenTelemetryLayer(otelLayerArn);

    const outputs: Record<string, string> = {
      ApiUrl: this.api.url,
      ExecutionsTableName: this.tables.executions.tableName,
      AgentsTableName: this.tables.agents.tableName,
      BreakersTableName: this.tables.breakers.tableName,
      PayloadBucketName: this.storage.bucket.bucketName,
      QueueUrlPrefix: this.queues.urlPrefix,
      SequentialExecutionArn: this.patterns.sequential.stateMachineArn,
      ParallelExecutionArn: this.patterns.parallel.stateMachineArn,
      PipelineExecutionArn: this.patterns.pipeline.stateMachineArn,
      TaskBatchArn: this.patterns.taskBatch.stateMachineArn,
      ClusterName: this.agents.cluster.clusterName,
      DashboardName: this.observability.dashboard.dashboardName,
      AlarmTopicArn: this.observability.alarmTopic.topicArn,
      EventBusName: this.events.bus.eventBusName,
      NotificationTopicArn: this.events.notificationTopic.topicArn,
    };
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, name, { value });
  }

  /** Every Lambda function of the layer. */
  get functions(): XlFunction[] {
    return [...this.api.functions, this.patterns.steps, this.patterns.executionEvents, this.pool.poolManager, this.pool.healthMonitor];
  }
}
