// The agent fleet on ECS Fargate: a VPC with private subnets, a cluster, and per agent type a task
// definition (the agent image, its own least-privilege task role) and a service the pool manager sizes.
import { ArnFormat, Aws, CfnResource, Duration, Fn, IgnoreMode, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { AGENT_TYPES, type AgentType } from '../../core/agent-types.ts';
import { METRIC_SERVICE, metricsNamespace } from '../../core/metrics.ts';
import { PROJECT_ROOT } from './functions.ts';
import type { TaskQueues } from './queues.ts';
import type { PayloadStorage } from './storage.ts';
import type { Tables } from './tables.ts';

/** Fargate size per agent type (ARM64). Coders and testers build and run code: twice the rest. */
export const AGENT_SIZES: Record<AgentType, { cpu: number; memoryLimitMiB: number }> = Object.fromEntries(
  AGENT_TYPES.map((t) => [
    t,
    t === 'coder' || t === 'tester' ? { cpu: 2048, memoryLimitMiB: 4096 } : { cpu: 1024, memoryLimitMiB: 2048 },
  ]),
) as Record<AgentType, { cpu: number; memoryLimitMiB: number }>;

/** Fargate's maximum: the worker hands its task back (or finishes) after SIGTERM within this. */
export const AGENT_STOP_TIMEOUT = Duration.seconds(120);
export const AGENT_LOG_RETENTION = logs.RetentionDays.ONE_MONTH;
/** The writable places of an otherwise read-only root filesystem. */
export const AGENT_WORKSPACE = '/workspace';
/**
 * The worker runs as root with only the capabilities it needs to hand a workspace to the agent's
 * user and switch to it (agent/run-as.ts): the agent's process (Claude Code or a command) runs as
 * `node` (uid 1000, set in the image) and cannot read the worker's environment, memory or tokens.
 */
export const AGENT_USER = '0';
/** Docker's default capabilities that the worker does not need (Fargate can only drop, not add). */
export const AGENT_DROPPED_CAPABILITIES = [
  ecs.Capability.AUDIT_WRITE,
  ecs.Capability.FSETID,
  ecs.Capability.MKNOD,
  ecs.Capability.NET_BIND_SERVICE,
  ecs.Capability.NET_RAW,
  ecs.Capability.SETFCAP,
  ecs.Capability.SETPCAP,
  ecs.Capability.SYS_CHROOT,
];

/**
 * What is staged of the image's build context (the project root), in .dockerignore syntax: everything
 * is left out but what agent/Dockerfile copies, so that unrelated edits do not change the image.
 */
export const AGENT_IMAGE_EXCLUDES = [
  '*',
  '!package.json',
  '!package-lock.json',
  '!tsconfig.json',
  '!agent',
  '!core',
  '**/*.test.ts',
  '**/node_modules',
];

const pascal = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export interface AgentsProps {
  readonly tables: Tables;
  readonly storage: PayloadStorage;
  readonly queues: TaskQueues;
  /** The state machine whose Dispatch state issues the task tokens agents answer (TaskBatch). */
  readonly taskTokenSource: sfn.IStateMachine;
  readonly heartbeatSeconds: number;
  /** NAT gateways for the agents' egress; 1 (default) is cheaper, 2 survives an AZ outage. */
  readonly natGateways?: number;
  /**
   * Interface VPC endpoints for the AWS APIs the agents call (SQS, Step Functions, Secrets Manager,
   * CloudWatch Logs and metrics, ECR, STS, Bedrock runtime), so that traffic stays off the NAT
   * gateway; S3 and DynamoDB have gateway endpoints always. Each costs per hour and AZ. Default false.
   */
  readonly interfaceEndpoints?: boolean;
  /**
   * An existing Secrets Manager secret holding the Anthropic API key (its text, or JSON with
   * `apiKey`), by its complete ARN (with the 6-character suffix Secrets Manager adds). ECS injects it
   * into the worker container as ANTHROPIC_API_KEY, and the worker's loopback proxy adds it to the
   * CLI's requests. Without it (or the name below), agents use Bedrock through their task role.
   */
  readonly anthropicApiKeySecretArn?: string;
  /**
   * The same secret by name, for a name that cannot be mistaken for a complete ARN's suffix: a name
   * ending in a hyphen and six characters is refused (use the ARN), because Secrets Manager reads such
   * a partial ARN as a complete one and does not find the secret.
   */
  readonly anthropicApiKeySecretName?: string;
  /** Tasks' `credentialsSecret` names must start with this for the agents to read them (default `xl/`). */
  readonly credentialsSecretPrefix?: string;
  /** XL_MAX_CONCURRENT_TASKS for the agents (`tester=2,monitor=4`): task slots per agent, per type. */
  readonly maxConcurrentTasks?: string;
  /** XL_BREAKER_POLICY for the agents (JSON, checked by the stack): they report successes to the breakers. */
  readonly breakerPolicy?: string;
}

export const DEFAULT_CREDENTIALS_SECRET_PREFIX = 'xl/';

/**
 * A secret name Secrets Manager could read as a complete ARN's `-<6 characters>` suffix when it is
 * given as a partial ARN (Secrets Manager User Guide, "Troubleshoot": "the secret name ends with a
 * hyphen followed by six characters").
 */
export const AMBIGUOUS_SECRET_NAME = /-[A-Za-z0-9]{6}$/;

/** The AWS services agents reach through interface endpoints when `interfaceEndpoints` is on. */
export const AGENT_INTERFACE_ENDPOINTS: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
  Sqs: ec2.InterfaceVpcEndpointAwsService.SQS,
  StepFunctions: ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
  SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
  Monitoring: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
  EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
  EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
  Sts: ec2.InterfaceVpcEndpointAwsService.STS,
  BedrockRuntime: ec2.InterfaceVpcEndpointAwsService.BEDROCK_RUNTIME,
};

export class Agents extends Construct {
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly securityGroup: ec2.SecurityGroup;
  /** The interface endpoints' security group (`interfaceEndpoints`). */
  readonly endpointSecurityGroup?: ec2.SecurityGroup;
  readonly logGroup: logs.LogGroup;
  readonly image: DockerImageAsset;
  /** Shared by every task definition: pulls the image and writes the logs. */
  readonly executionRole: iam.Role;
  readonly taskRoles: Readonly<Record<AgentType, iam.Role>>;
  readonly taskDefinitions: Readonly<Record<AgentType, ecs.FargateTaskDefinition>>;
  readonly services: Readonly<Record<AgentType, ecs.FargateService>>;
  /** `<stack>-`: service names and task definition families are `<prefix><agentType>`. */
  readonly namePrefix: string;
  /** How Claude Code reaches the model: the API key secret (api-key) or Bedrock with the task role. */
  readonly modelAccess: 'api-key' | 'bedrock';
  readonly anthropicApiKeySecret?: secretsmanager.ISecret;
  /** The secrets tasks may name as `credentialsSecret` (ARN pattern). */
  readonly credentialsSecretsArn: string;
  /** What the agents may invoke on Bedrock (bedrock mode): Anthropic models and inference profiles. */
  readonly bedrockModelArns: string[];

  constructor(scope: Construct, id: string, props: AgentsProps) {
    super(scope, id);
    const { tables, storage, queues } = props;
    const stack = Stack.of(this);
    this.namePrefix = `${stack.stackName}-`;

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: props.natGateways ?? 1,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'agents', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
      // S3 and DynamoDB traffic stays off the NAT gateway (and costs nothing).
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(
        new logs.LogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.TWO_WEEKS }),
      ),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });

    this.securityGroup = new ec2.SecurityGroup(this, 'AgentSecurityGroup', {
      vpc: this.vpc,
      description: 'Agents: no inbound; outbound HTTPS only (AWS APIs, model API, git over HTTPS)',
      allowAllOutbound: false,
    });
    this.securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS');
    if (props.interfaceEndpoints) {
      // The endpoints take HTTPS from the agents only (not the VPC's whole CIDR, CDK's default).
      this.endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
        vpc: this.vpc,
        description: 'Interface endpoints: HTTPS from the agents only',
        allowAllOutbound: false,
      });
      this.endpointSecurityGroup.addIngressRule(this.securityGroup, ec2.Port.tcp(443), 'HTTPS from the agents');
      for (const [name, service] of Object.entries(AGENT_INTERFACE_ENDPOINTS)) {
        // Private DNS: the SDKs' default endpoints resolve to the endpoint inside the VPC.
        this.vpc.addInterfaceEndpoint(name, {
          service,
          privateDnsEnabled: true,
          open: false,
          securityGroups: [this.endpointSecurityGroup],
          subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        });
      }
    }

    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: AGENT_LOG_RETENTION });

    this.image = new DockerImageAsset(this, 'Image', {
      directory: PROJECT_ROOT,
      file: 'agent/Dockerfile',
      platform: Platform.LINUX_ARM64,
      exclude: AGENT_IMAGE_EXCLUDES,
      ignoreMode: IgnoreMode.DOCKER,
    });
    const image = ecs.ContainerImage.fromDockerImageAsset(this.image);

    if (props.anthropicApiKeySecretArn && props.anthropicApiKeySecretName) {
      throw new Error('give the Anthropic API key secret by ARN (anthropicApiKeySecretArn) or by name (anthropicApiKeySecret), not both');
    }
    if (props.anthropicApiKeySecretArn) {
      if (!/^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/.test(props.anthropicApiKeySecretArn)) {
        throw new Error(
          `anthropicApiKeySecretArn must be a secret's complete ARN (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>), got "${props.anthropicApiKeySecretArn}"`,
        );
      }
      this.anthropicApiKeySecret = secretsmanager.Secret.fromSecretCompleteArn(this, 'AnthropicApiKey', props.anthropicApiKeySecretArn);
    } else if (props.anthropicApiKeySecretName) {
      if (AMBIGUOUS_SECRET_NAME.test(props.anthropicApiKeySecretName)) {
        throw new Error(
          `the secret name "${props.anthropicApiKeySecretName}" ends in a hyphen and six characters, which Secrets Manager reads as an ARN suffix: give its complete ARN instead (-c anthropicApiKeySecretArn=...)`,
        );
      }
      this.anthropicApiKeySecret = secretsmanager.Secret.fromSecretNameV2(this, 'AnthropicApiKey', props.anthropicApiKeySecretName);
    }
    this.modelAccess = this.anthropicApiKeySecret ? 'api-key' : 'bedrock';
    this.credentialsSecretsArn = stack.formatArn({
      service: 'secretsmanager',
      resource: 'secret',
      resourceName: `${props.credentialsSecretPrefix ?? DEFAULT_CREDENTIALS_SECRET_PREFIX}*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    // Cross-region inference profiles (us.anthropic..., global.anthropic...) route to the model in
    // other regions: the foundation models are granted in every region, the profiles in this one.
    const anthropicModels = `arn:${Aws.PARTITION}:bedrock:*::foundation-model/anthropic.*`;
    this.bedrockModelArns = [
      anthropicModels,
      stack.formatArn({ service: 'bedrock', resource: 'inference-profile', resourceName: '*anthropic.*', arnFormat: ArnFormat.SLASH_RESOURCE_NAME }),
    ];

    this.executionRole = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'Agent tasks: pull the agent image, write container logs',
    });

    const taskRoles = {} as Record<AgentType, iam.Role>;
    const taskDefinitions = {} as Record<AgentType, ecs.FargateTaskDefinition>;
    const services = {} as Record<AgentType, ecs.FargateService>;
    for (const type of AGENT_TYPES) {
      const P = pascal(type);
      const role = new iam.Role(this, `${P}TaskRole`, {
        assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
        description: `${type} agents: their own queues, their items, the bucket prefixes they write, task tokens`,
      });
      // Receive, extend and delete its dispatch messages; send a copy back to the same queue (a relay
      // past SQS's visibility cap, or a hand-back: agent/custody.ts). Its own type's queues only.
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'OwnQueues',
          actions: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:SendMessage'],
          resources: queues.queuesOf(type).map((q) => q.queueArn),
        }),
      );
      // Its own direct queue (affinity, core/affinity.ts): created at start, polled first, drained
      // into its type's queues and deleted at its stop. The type's pattern only.
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'OwnDirectQueue',
          actions: ['sqs:CreateQueue', 'sqs:DeleteQueue', 'sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage'],
          resources: [queues.directQueueArnPattern(type)],
        }),
      );
      tables.grantAgentAccess(role, type);
      storage.grantAgentAccess(role);
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ReportTaskOutcome',
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
          // The Service Authorization Reference lists no resource type for these, yet IAM evaluates
          // them against the state machine that issued the token (AccessDenied names
          // `...:stateMachine:<name>`; aws/aws-cdk#8486 tested it): TaskBatch issues every token.
          resources: [props.taskTokenSource.stateMachineArn],
        }),
      );
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ReadWorkspaceCredentials',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [this.credentialsSecretsArn],
        }),
      );
      if (this.modelAccess === 'bedrock') {
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            sid: 'InvokeClaudeOnBedrock',
            actions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'],
            resources: this.bedrockModelArns,
          }),
        );
        // The model proxy forwards the CLI's token counts (POST /model/<id>/count-tokens). CountTokens
        // takes a foundation model (Bedrock API Reference, CountTokens: "modelId ... of the foundation
        // model"); inference profile ids are refused, so the models alone.
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            sid: 'CountClaudeTokensOnBedrock',
            actions: ['bedrock:CountTokens'],
            resources: [anthropicModels],
          }),
        );
      }

      const { cpu, memoryLimitMiB } = AGENT_SIZES[type];
      const td = new ecs.FargateTaskDefinition(this, `${P}TaskDefinition`, {
        family: `${this.namePrefix}${type}`,
        cpu,
        memoryLimitMiB,
        runtimePlatform: {
          cpuArchitecture: ecs.CpuArchitecture.ARM64,
          operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        },
        taskRole: role,
        executionRole: this.executionRole,
        volumes: [{ name: 'workspace' }, { name: 'tmp' }],
      });
      const container = td.addContainer('agent', {
        containerName: 'agent',
        image,
        essential: true,
        readonlyRootFilesystem: true,
        user: AGENT_USER,
        stopTimeout: AGENT_STOP_TIMEOUT,
        // An init process reaps the process groups that drivers start.
        linuxParameters: (() => {
          const params = new ecs.LinuxParameters(this, `${P}LinuxParameters`, { initProcessEnabled: true });
          params.dropCapabilities(...AGENT_DROPPED_CAPABILITIES);
          return params;
        })(),
        logging: ecs.LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: type }),
        // Into the worker's environment only: the agent's process runs as another user that cannot
        // read it, and reaches the model through the worker's loopback proxy (agent/model-proxy.ts).
        ...(this.anthropicApiKeySecret ? { secrets: { ANTHROPIC_API_KEY: ecs.Secret.fromSecretsManager(this.anthropicApiKeySecret) } } : {}),
        environment: {
          XL_AGENT_TYPE: type,
          ...tables.environment,
          ...storage.environment,
          ...queues.environment,
          XL_HEARTBEAT_SECONDS: String(props.heartbeatSeconds),
          // Finish the current task within this on SIGTERM, leaving 30 s of stopTimeout to hand it
          // back: the CLI's save, the checkpoint's upload (up to 64 MiB) and the hand-back itself.
          XL_GRACE_SECONDS: String(AGENT_STOP_TIMEOUT.toSeconds() - 30),
          POWERTOOLS_SERVICE_NAME: `${METRIC_SERVICE.agentPrefix}${type}`,
          POWERTOOLS_METRICS_NAMESPACE: metricsNamespace(Stack.of(this).stackName),
          // The worker's loopback proxy adds the key, or signs for Bedrock with the task role (in
          // Fargate's AWS_REGION). The local layer leaves this to the host (local/layer.ts).
          XL_MODEL_ACCESS: this.modelAccess,
          // One agent per container: the agent's user (`node`) is this worker's alone, so what a run
          // leaves running outside its process group is killed before root touches the workspace.
          XL_REAP_USER_PROCESSES: '1',
          ...(props.maxConcurrentTasks ? { XL_MAX_CONCURRENT_TASKS: props.maxConcurrentTasks } : {}),
          ...(props.breakerPolicy ? { XL_BREAKER_POLICY: props.breakerPolicy } : {}),
          // HOME and XL_WORKSPACE_ROOT come from the image (agent/Dockerfile): the local layer starts
          // workers with this environment, and they must keep the host's.
        },
      });
      container.addMountPoints(
        { sourceVolume: 'workspace', containerPath: AGENT_WORKSPACE, readOnly: false },
        { sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false },
      );
      const cfnTd = td.node.defaultChild as CfnResource;
      cfnTd.overrideLogicalId(`${P}TaskDefinition`);
      cfnTd.addMetadata('xl:agentType', type);

      const service = new ecs.FargateService(this, `${P}Service`, {
        cluster: this.cluster,
        taskDefinition: td,
        serviceName: `${this.namePrefix}${type}`,
        // Zero: the pool manager starts and stops agents itself (RunTask/StopTask, core/aws/ecs-runtime.ts);
        // a non-zero count here would race it. A deployment may raise it to use the service instead.
        desiredCount: 0,
        minHealthyPercent: 0,
        maxHealthyPercent: 200,
        assignPublicIp: false,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        securityGroups: [this.securityGroup],
        circuitBreaker: { enable: true, rollback: true },
        enableECSManagedTags: true,
        propagateTags: ecs.PropagatedTagSource.SERVICE,
      });
      taskRoles[type] = role;
      taskDefinitions[type] = td;
      services[type] = service;
    }
    this.taskRoles = taskRoles;
    this.taskDefinitions = taskDefinitions;
    this.services = services;
  }

  /**
   * What the ECS runtime port (core/aws/ecs-runtime.ts) reads: the cluster, the task definition ARN per
   * agent type (JSON), the private subnets and the agents' security group.
   */
  get environment(): Record<string, string> {
    const stack = Stack.of(this);
    return {
      XL_CLUSTER: this.cluster.clusterName,
      XL_TASK_DEFINITIONS: stack.toJsonString(
        Object.fromEntries(Object.entries(this.taskDefinitions).map(([t, td]) => [t, td.taskDefinitionArn])),
      ),
      XL_SUBNETS: Fn.join(',', this.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnetIds),
      XL_SECURITY_GROUPS: this.securityGroup.securityGroupId,
    };
  }

  /** ARN pattern of this cluster's tasks (task ids are made at run time). */
  get clusterTasksArn(): string {
    return Stack.of(this).formatArn({
      service: 'ecs',
      resource: 'task',
      resourceName: `${this.cluster.clusterName}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }

  /** Stop (and describe) this cluster's tasks: the health monitor replaces dead agents. */
  grantStopTasks(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['ecs:StopTask', 'ecs:DescribeTasks'],
      resourceArns: [this.clusterTasksArn],
    });
  }

  /** Size the services, start and stop agent tasks, list them: the pool manager's runtime port. */
  grantPoolControl(grantee: iam.IGrantable): void {
    const services = Object.values(this.services);
    const taskDefinitions = Object.values(this.taskDefinitions);
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['ecs:UpdateService', 'ecs:DescribeServices'],
      resourceArns: services.map((s) => s.serviceArn),
    });
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ecs:RunTask'],
        resources: taskDefinitions.map((td) => td.taskDefinitionArn),
        conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
      }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ecs:TagResource'],
        resources: [this.clusterTasksArn],
        conditions: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
      }),
    );
    this.grantStopTasks(grantee);
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ecs:ListTasks'],
        // ListTasks has no task resource; the condition keeps it to this cluster.
        resources: ['*'],
        conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
      }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [this.executionRole.roleArn, ...Object.values(this.taskRoles).map((r) => r.roleArn)],
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );
  }
}
