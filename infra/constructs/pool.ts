// The pool manager and the health monitor, each a Lambda function on a one-minute schedule.
import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { Agents } from './agents.ts';
import { XlFunction } from './functions.ts';
import type { TaskQueues } from './queues.ts';
import type { Tables } from './tables.ts';

export const POOL_MANAGER_RATE = Duration.minutes(1);
export const HEALTH_MONITOR_RATE = Duration.minutes(1);

export interface PoolProps {
  readonly tables: Tables;
  readonly queues: TaskQueues;
  readonly agents: Agents;
  /** The state machine whose task tokens the dead-letter sweep fails (TaskBatch). */
  readonly taskTokenSource: sfn.IStateMachine;
  /** Shared function environment plus the agents' ECS environment. */
  readonly environment: Record<string, string>;
}

export class Pool extends Construct {
  /** functions/pool-manager.ts: desired agents per type from the backlog; sizes the ECS services. */
  readonly poolManager: XlFunction;
  /** functions/health-monitor.ts: agent health, escalation, breakers. */
  readonly healthMonitor: XlFunction;
  readonly poolManagerSchedule: events.Rule;
  readonly healthMonitorSchedule: events.Rule;

  constructor(scope: Construct, id: string, props: PoolProps) {
    super(scope, id);
    const { tables, queues, agents } = props;

    [this.poolManager, this.poolManagerSchedule] = this.scheduled('PoolManager', POOL_MANAGER_RATE, {
      entry: 'functions/pool-manager.ts',
      serviceName: 'xl-pool-manager',
      description: 'Sizes the agent pool per type from the backlog (every minute)',
      environment: props.environment,
    });
    tables.agents.grantReadWriteData(this.poolManager.role);
    // Agents it replaces count against their type's breaker (escalation).
    tables.breakers.grantReadWriteData(this.poolManager.role);
    queues.grantReadAttributes(this.poolManager.role);
    agents.grantPoolControl(this.poolManager.role);
    // The dead-letter sweep: read the DLQs, mark the tasks it fails, fail their task tokens.
    queues.grantDeadLetterRead(this.poolManager.role);
    // What Gate sent to an agent that died goes back to the task queues (core/aws/direct-queues.ts).
    queues.grantDirectQueueSweep(this.poolManager.role);
    tables.executions.grantReadWriteData(this.poolManager.role);
    this.poolManager.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'FailDeadLetteredTasks',
        actions: ['states:SendTaskFailure'],
        // Evaluated against the state machine that issued the token (see Agents' ReportTaskOutcome).
        resources: [props.taskTokenSource.stateMachineArn],
      }),
    );

    [this.healthMonitor, this.healthMonitorSchedule] = this.scheduled('HealthMonitor', HEALTH_MONITOR_RATE, {
      entry: 'functions/health-monitor.ts',
      serviceName: 'xl-health-monitor',
      description: 'Checks agent health, replaces dead agents, opens breakers (every minute)',
      environment: props.environment,
    });
    tables.agents.grantReadWriteData(this.healthMonitor.role);
    tables.breakers.grantReadWriteData(this.healthMonitor.role);
    agents.grantStopTasks(this.healthMonitor.role);
  }

  /** A function `<id>Function` and the rule `<id>Schedule` that runs it every `rate`. */
  private scheduled(
    id: string,
    rate: Duration,
    props: { entry: string; serviceName: string; description: string; environment: Record<string, string> },
  ): [XlFunction, events.Rule] {
    const fn = new XlFunction(this, id, { ...props, logicalId: `${id}Function`, timeout: Duration.seconds(55), memorySize: 256 });
    const rule = new events.Rule(this, `${id}Schedule`, {
      description: `Runs ${props.entry}`,
      schedule: events.Schedule.rate(rate),
      // No retries: the next run is a minute away.
      targets: [new targets.LambdaFunction(fn.function, { retryAttempts: 0 })],
    });
    return [fn, rule];
  }
}
