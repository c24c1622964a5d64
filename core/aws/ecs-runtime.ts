// AgentRuntime over ECS Fargate: agents are tasks of each agent type's task definition.
import { DescribeTasksCommand, type ECSClient, RunTaskCommand, StopTaskCommand } from '@aws-sdk/client-ecs';
import type { AgentType } from '../agent-types.ts';
import type { AgentRuntime } from '../runtime.ts';
import type { AgentRecord, AgentRuntimeRef } from '../records.ts';

export interface EcsRuntimeConfig {
  cluster: string;
  /** Task definition ARN per agent type. */
  taskDefinitions: Partial<Record<AgentType, string>>;
  subnets: string[];
  securityGroups: string[];
}

export class EcsRuntime implements AgentRuntime {
  constructor(
    private readonly ecs: ECSClient,
    private readonly config: EcsRuntimeConfig,
  ) {}

  static fromEnv(ecs: ECSClient): EcsRuntime {
    return new EcsRuntime(ecs, {
      cluster: process.env.XL_CLUSTER ?? '',
      taskDefinitions: JSON.parse(process.env.XL_TASK_DEFINITIONS ?? '{}'),
      subnets: (process.env.XL_SUBNETS ?? '').split(',').filter(Boolean),
      securityGroups: (process.env.XL_SECURITY_GROUPS ?? '').split(',').filter(Boolean),
    });
  }

  async start(agentType: AgentType, count: number): Promise<{ agentId: string; runtime: AgentRuntimeRef }[]> {
    const taskDefinition = this.config.taskDefinitions[agentType];
    if (!taskDefinition) throw new Error(`no task definition for agent type ${agentType}`);
    const ids: { agentId: string; runtime: AgentRuntimeRef }[] = [];
    // RunTask starts at most 10 tasks per call.
    for (let left = count; left > 0; left -= 10) {
      const res = await this.ecs.send(
        new RunTaskCommand({
          cluster: this.config.cluster,
          taskDefinition,
          count: Math.min(10, left),
          launchType: 'FARGATE',
          startedBy: `xl-pool-${agentType}`,
          networkConfiguration: {
            awsvpcConfiguration: { subnets: this.config.subnets, securityGroups: this.config.securityGroups, assignPublicIp: 'DISABLED' },
          },
        }),
      );
      // The worker names itself after its ECS task id, so the record written now is the one it updates.
      for (const t of res.tasks ?? []) if (t.taskArn) ids.push({ agentId: t.taskArn.split('/').pop()!, runtime: { kind: 'ecs', taskArn: t.taskArn } });
      if (res.failures?.length) throw new Error(`ECS could not start ${agentType} agents: ${res.failures.map((f) => f.reason).join(', ')}`);
    }
    return ids;
  }

  async stop(agent: Pick<AgentRecord, 'agentId' | 'runtime'>, graceful: boolean): Promise<void> {
    if (agent.runtime.kind !== 'ecs') return;
    // StopTask sends SIGTERM, then SIGKILL after stopTimeout: the worker hands back its task on SIGTERM.
    await this.ecs.send(
      new StopTaskCommand({ cluster: this.config.cluster, task: agent.runtime.taskArn, reason: graceful ? 'xl: drained' : 'xl: stopped' }),
    );
  }

  async isAlive(runtime: AgentRuntimeRef): Promise<boolean> {
    if (runtime.kind !== 'ecs') return false;
    const res = await this.ecs.send(new DescribeTasksCommand({ cluster: this.config.cluster, tasks: [runtime.taskArn] }));
    const status = res.tasks?.[0]?.lastStatus;
    return status !== undefined && status !== 'STOPPED' && status !== 'DEPROVISIONING';
  }
}
