// The execution layer: one stack, one construct per concern. Environment-agnostic (no lookups), so
// `cdk synth` works offline and without credentials; the local layer reads the same template.
import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { Agents } from './constructs/agents.ts';
import { Api } from './constructs/api.ts';
import { LayerEvents } from './constructs/events.ts';
import { Observability } from './constructs/observability.ts';
import { DISPATCH_ALLOWANCE_SECONDS, HEARTBEAT_SECONDS, type XlFunction } from './constructs/functions.ts';
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
  /** NAT gateways of the agents' VPC (default 1). */
  readonly natGateways?: number;
  /** A Secrets Manager secret (name) with the Anthropic API key; without it, agents use Bedrock (AgentsProps). */
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
  /** Every event POSTed to this HTTPS URL (default: the `webhookUrl` context); infra/constructs/events.ts. */
  readonly webhookUrl?: string;
  /** The secret (ARN) the webhook's key comes from (default: the `webhookKeySecretArn` context; else one is generated). */
  readonly webhookKeySecretArn?: string;
  /** Subscribes this email address to the notification topic (default: the `notificationEmail` context). */
  readonly notificationEmail?: string;
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
    });
    this.agents = new Agents(this, 'Agents', {
      tables: this.tables,
      storage: this.storage,
      queues: this.queues,
      heartbeatSeconds,
      natGateways: props.natGateways,
      anthropicApiKeySecretName: props.anthropicApiKeySecretName,
      credentialsSecretPrefix: props.credentialsSecretPrefix,
      maxConcurrentTasks: props.maxConcurrentTasks,
      breakerPolicy,
    });
    this.pool = new Pool(this, 'Pool', {
      tables: this.tables,
      queues: this.queues,
      agents: this.agents,
      environment: { ...this.functionEnvironment, ...this.agents.environment },
    });
    this.api = new Api(this, 'Api', {
      environment: { ...this.functionEnvironment, ...this.patterns.environment, ...this.agents.environment },
    });

    // API: start and stop pattern executions, read and write records, queue depths for GET /pool and
    // GET /health, and the pool's runtime port for its agent routes (POST/DELETE /agents).
    const apiRole = this.api.handler.role;
    this.patterns.grantStartAndStop(apiRole);
    this.tables.grantReadWriteAll(apiRole);
    this.storage.grantReadWrite(apiRole);
    this.queues.grantReadAttributes(apiRole);
    this.agents.grantPoolControl(apiRole);
    // GET /dead-letters and POST /dead-letters/redrive.
    this.queues.grantDeadLetterRead(apiRole);
    this.queues.grantDeadLetterRedrive(apiRole);

    this.observability = new Observability(this, 'Observability', {
      patterns: this.patterns,
      queues: this.queues,
      api: this.api,
      functions: this.functions,
      alarmEmail: props.alarmEmail ?? this.node.tryGetContext('alarmEmail'),
    });

    // Every function emits events (steps, reconcile, pool, health, API); undelivered ones alarm.
    this.events.grantPut(this.functions);
    this.events.alarmOnDeadLetters(this.observability.alarmTopic);

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
    return [this.api.handler, this.patterns.steps, this.patterns.executionEvents, this.pool.poolManager, this.pool.healthMonitor];
  }
}
