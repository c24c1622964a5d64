// cdk-nag's AwsSolutions checks run at every synth (cdk-nag 3: a policy validation plugin, so a
// finding nobody fixed or acknowledged fails `cdk synth`). What is not fixed is acknowledged here, one
// finding at a time, on the narrowest construct that owns it, with the reason it stands.
import { type App, Aws, Fn, Stack, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { Patterns } from './constructs/patterns.ts';
import type { XlFunction } from './constructs/functions.ts';
import type { ExecutionLayerStack } from './stack.ts';
import type { AgentType } from '../core/agent-types.ts';
import { AGENT_WRITE_PREFIXES } from './constructs/storage.ts';

export interface NagAcknowledgment {
  /** Construct path the acknowledgment is attached to (it covers the resources below it). */
  path: string;
  /** Rule id, with the finding in brackets for rules that report several (IAM4, IAM5). */
  id: string;
  reason: string;
}

/** Registers the AwsSolutions pack on the app: violations are reported, and fail, at synth. */
export function addNagChecks(app: App): AwsSolutionsChecks {
  const pack = new AwsSolutionsChecks(app, { verbose: true });
  Validations.of(app).addPlugins(pack);
  return pack;
}

/** Checks plus acknowledgments: what infra/app.ts applies. */
export function applyNag(app: App, stack: ExecutionLayerStack): NagAcknowledgment[] {
  addNagChecks(app);
  return acknowledgeNagFindings(stack);
}

/**
 * How cdk-nag prints a CloudFormation value in a finding id (its flattenCfnReference): Ref as
 * `<Id>`, Fn::GetAtt as `<Id.Attr>`, Fn::Join flattened, anything else as JSON.
 */
function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1) {
      if ('Fn::Join' in o) {
        const [delimiter, items] = o['Fn::Join'] as [string, unknown[]];
        return items.map(flatten).join(delimiter);
      }
      if ('Fn::Sub' in o) return flatten(o['Fn::Sub']);
      if ('Fn::GetAtt' in o) {
        const [id, attr] = o['Fn::GetAtt'] as [unknown, unknown];
        return `<${flatten(id)}.${flatten(attr)}>`;
      }
      if ('Fn::ImportValue' in o) return flatten(o['Fn::ImportValue']);
      if ('Ref' in o) return `<${flatten(o.Ref)}>`;
    }
  }
  return JSON.stringify(node);
}

/** Acknowledges what the AwsSolutions pack reports on this stack and is meant to stay; returns the list. */
export function acknowledgeNagFindings(stack: ExecutionLayerStack): NagAcknowledgment[] {
  const done: NagAcknowledgment[] = [];
  // On the L1 resource the finding is about (a role's findings are about its DefaultPolicy).
  const ack = (owner: IConstruct, id: string, reason: string) => {
    const scope = owner.node.tryFindChild('DefaultPolicy')?.node.defaultChild ?? owner.node.defaultChild ?? owner;
    Validations.of(scope).acknowledge({ id, reason });
    done.push({ path: scope.node.path, id, reason });
  };
  const resource = (value: string) => flatten(Stack.of(stack).resolve(value));
  const iam5 = (role: iam.IRole, findings: [string, string][]) => {
    for (const [value, reason] of findings) ack(role, `AwsSolutions-IAM5[Resource::${value}]`, reason);
  };

  const { tables, storage, queues, patterns, agents, pool, api } = stack;
  const functions: XlFunction[] = stack.functions;

  // Findings shared by several roles: the same wildcard, the same reason.
  const STAR = '*';
  const executionsIndexes: [string, string] = [
    resource(`${tables.executions.tableArn}/index/*`),
    'Queries the executions table through its GSI (byStart); the grant covers that table\'s indexes only.',
  ];
  const agentsIndexes: [string, string] = [
    resource(`${tables.agents.tableArn}/index/*`),
    'Queries the agents table through its GSI (byType); the grant covers that table\'s indexes only.',
  ];
  const payloadObjects: [string, string] = [
    resource(storage.bucket.arnForObjects('*')),
    'Object keys in the payload bucket are made at run time (per execution and task); get/put only, no delete.',
  ];
  const queuePattern: [string, string] = [
    resource(queues.queueArnPattern),
    'sqs:GetQueueAttributes (backlog, health) on the stack\'s queues, all named <stack>_<type>-<priority>[-dlq] (no stack name holds an underscore, so no other stack\'s queue matches); for the API also sqs:SendMessage (the redrive sends dead letters back to their task queues), and for the pool manager (it sends a dead agent\'s direct-queue messages back to their task queues).',
  ];
  const deadLetterQueues: [string, string] = [
    resource(queues.deadLetterQueueArnPattern),
    'The dead-letter sweep, GET /dead-letters and the redrive read every DLQ of the stack (named <stack>_<type>-<priority>-dlq); no task queue.',
  ];
  const directQueues: [string, string] = [
    resource(queues.directQueueArnPattern()),
    'Agents\' direct queues (affinity: <stack>_<type>-direct-<agent>) are made by the agents at run time; Dispatch sends to the one Gate names, the pool manager drains a dead agent\'s into the task queues.',
  ];
  const clusterTasks: [string, string] = [
    resource(agents.clusterTasksArn),
    'ECS task ids are made at run time; the pattern is limited to the agents\' cluster.',
  ];
  const listTasks: [string, string] = [
    STAR,
    'ecs:ListTasks has no task resource to scope to; the ecs:cluster condition limits it to the agents\' cluster. X-Ray\'s PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions.',
  ];

  // --- API Gateway
  for (const method of api.restApi.methods) {
    ack(method, 'AwsSolutions-COG4', 'Every method uses IAM (SigV4) authorization, as CONTRACT.md requires; callers are IAM principals, not Cognito users.');
  }
  ack(
    api.restApi.deploymentStage,
    'AwsSolutions-APIG3',
    'Only SigV4-signed IAM principals reach the integration and the stage is throttled; a WAF web ACL is left to deployments that expose the API more widely.',
  );
  const cloudWatchRole = api.restApi.node.tryFindChild('CloudWatchRole');
  if (cloudWatchRole) {
    ack(
      cloudWatchRole,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      'API Gateway\'s account-level logging role; this AWS managed policy is the documented one for it.',
    );
  }

  // --- Lambda
  for (const fn of functions) {
    ack(fn.function, 'AwsSolutions-L1', 'CONTRACT.md fixes Node.js 22 everywhere (Lambda nodejs22.x, the agent image, local mode).');
  }
  // Active tracing (infra/constructs/functions.ts) adds xray:PutTraceSegments/PutTelemetryRecords on `*`.
  const xray: [string, string] = [STAR, 'X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions.'];
  // (The API's pool function's and the pool manager's `*` findings say so among their other reasons.)
  for (const fn of [patterns.steps, patterns.executionEvents, pool.healthMonitor]) iam5(fn.role, [xray]);
  // The API's functions (core/api-groups.ts), each with its routes' grants.
  iam5(api.handlers.executions.role, [
    executionsIndexes,
    agentsIndexes,
    payloadObjects,
    xray,
    ...[patterns.sequential, patterns.parallel, patterns.pipeline].map(
      (m): [string, string] => [
        resource(Patterns.executionArnPattern(m)),
        'DELETE /executions/{id} stops executions of the pattern machines; execution names are made at run time.',
      ],
    ),
  ]);
  iam5(api.handlers.logs.role, [executionsIndexes, xray]);
  iam5(api.handlers.pool.role, [executionsIndexes, agentsIndexes, queuePattern, clusterTasks, listTasks]);
  iam5(api.handlers.operations.role, [executionsIndexes, agentsIndexes, queuePattern, deadLetterQueues, xray]);
  iam5(patterns.steps.role, [executionsIndexes, agentsIndexes]);
  iam5(patterns.executionEvents.role, [
    executionsIndexes,
    ...[patterns.sequential, patterns.parallel, patterns.pipeline].map(
      (m): [string, string] => [
        resource(Patterns.executionArnPattern(m)),
        'The reconcile describes executions of the pattern machines (DescribeExecution only); execution names are made at run time.',
      ],
    ),
  ]);
  ack(
    patterns.executionEventsDeadLetters,
    'AwsSolutions-SQS3',
    'It is a dead-letter queue: EventBridge\'s target DLQ and the events function\'s on-failure destination (neither is a redrive policy, which the rule looks for).',
  );
  for (const [owner, id, reason] of stack.events.nagAcknowledgments()) ack(owner, id, reason);
  iam5(pool.poolManager.role, [
    executionsIndexes,
    agentsIndexes,
    queuePattern,
    deadLetterQueues,
    directQueues,
    clusterTasks,
    [
      STAR,
      'ecs:ListTasks has no task resource (the ecs:cluster condition limits it to the agents\' cluster); X-Ray\'s PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions.',
    ],
  ]);
  iam5(pool.healthMonitor.role, [agentsIndexes, clusterTasks]);

  // --- Step Functions
  const machineStar: [string, string] = [
    STAR,
    'X-Ray tracing and CloudWatch Logs delivery (logging level ALL) actions support no resource-level permissions.',
  ];
  const invokeSteps: [string, string] = [
    resource(`${patterns.steps.functionArn}:*`),
    'Invokes the steps function and its versions/aliases (qualified ARNs); no other function.',
  ];
  iam5(patterns.taskBatch.role, [machineStar, invokeSteps, directQueues]);
  const taskBatchExecutions: [string, string] = [
    resource(
      `arn:${Aws.PARTITION}:states:${Aws.REGION}:${Aws.ACCOUNT_ID}:execution:${Fn.select(6, Fn.split(':', patterns.taskBatch.stateMachineArn))}*`,
    ),
    'RunBatch (startExecution.sync:2) describes and stops its child executions of TaskBatch, named at run time.',
  ];
  for (const m of [patterns.sequential, patterns.parallel, patterns.pipeline]) {
    iam5(m.role, [machineStar, invokeSteps, taskBatchExecutions]);
  }

  // --- ECS agents
  iam5(agents.executionRole, [
    [STAR, 'ecr:GetAuthorizationToken supports no resource-level permissions; image pulls are limited to the asset repository.'],
  ]);
  for (const [type, role] of Object.entries(agents.taskRoles)) {
    iam5(role, [
      [
        resource(queues.directQueueArnPattern(type as AgentType)),
        `A ${type} agent creates its own direct queue at start (named by its id, made at run time), polls it and deletes it at its stop; ${type} agents' direct queues only.`,
      ],
      [
        resource(storage.bucket.arnForObjects('*')),
        `GetObject only: a ${type} agent reads the definitions, inputs and earlier outputs its task records name, whose keys are made at run time; it writes under outputs/, artifacts/ and checkpoints/ only.`,
      ],
      ...AGENT_WRITE_PREFIXES.map((prefix): [string, string] => [
        resource(storage.bucket.arnForObjects(`${prefix}*`)),
        `PutObject under ${prefix} only: keys are made per execution, task and attempt at run time.`,
      ]),
      [
        resource(agents.credentialsSecretsArn),
        'Tasks name their repository credentials (credentialsSecret) at run time; GetSecretValue only, on secrets under the stack\'s configured prefix.',
      ],
      ...(agents.modelAccess === 'bedrock'
        ? agents.bedrockModelArns.map((arn): [string, string] => [
            resource(arn),
            'Claude Code on Bedrock invokes (and counts tokens of) Anthropic models only; cross-region inference profiles route to those models in other regions, so the model ARN names no region.',
          ])
        : []),
    ]);
  }
  for (const [type, td] of Object.entries(agents.taskDefinitions)) {
    ack(
      td,
      'AwsSolutions-ECS2',
      `The ${type} container's environment holds only resource names (tables, bucket, queue URL prefix), the agent type, the heartbeat span, a log service name and the model-access mode; the API key, when configured, is an ECS secret.`,
    );
  }
  return done;
}
