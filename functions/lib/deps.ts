// Builds the domain services once per process from the environment; every handler imports this.
import { Logger } from '@aws-lambda-powertools/logger';
import { awsClients } from '#core/aws/clients.ts';
import { AgentStore } from '#core/aws/agent-store.ts';
import { DynamoBreakerStore } from '#core/aws/breaker-store.ts';
import { EcsRuntime } from '#core/aws/ecs-runtime.ts';
import { ExecutionStore } from '#core/aws/execution-store.ts';
import { PayloadStore } from '#core/aws/payload-store.ts';
import { StepFunctionsWorkflows } from '#core/aws/workflows.ts';
import { CircuitBreaker } from '#core/breakers.ts';
import { type LayerConfig, loadConfig } from '#core/config.ts';
import { ExecutionService } from '#core/executions.ts';
import { HealthMonitor, PoolManager, parsePoolSpec } from '#core/pool.ts';
import { registeredRuntime } from '#core/runtime.ts';
import { ExecutionSteps } from '#core/steps.ts';

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'xl' });

export interface Layer {
  config: LayerConfig;
  executions: ExecutionStore;
  agents: AgentStore;
  payloads: PayloadStore;
  breaker: CircuitBreaker;
  breakers: DynamoBreakerStore;
  steps: ExecutionSteps;
  service: ExecutionService;
  pool: PoolManager;
  health: HealthMonitor;
}

let layer: Layer | undefined;

export function getLayer(): Layer {
  if (layer) return layer;
  const config = loadConfig();
  const clients = awsClients();
  const executions = new ExecutionStore(clients.ddb, config.tables.executions);
  const agents = new AgentStore(clients.ddb, config.tables.agents);
  const payloads = new PayloadStore(clients.s3, config.bucket);
  const breakers = new DynamoBreakerStore(clients.ddb, config.tables.breakers);
  const breaker = new CircuitBreaker(breakers);
  const poolDeps = {
    agents,
    // Locally the embedded layer registers its process runtime; on AWS agents are ECS tasks.
    get runtime() {
      return registeredRuntime() ?? EcsRuntime.fromEnv(clients.ecs);
    },
    heartbeatSeconds: config.heartbeatSeconds,
    startAllowanceSeconds: Number(process.env.XL_START_ALLOWANCE_SECONDS ?? 300),
    defaults: parsePoolSpec(process.env.XL_POOL),
  };
  layer = {
    config,
    executions,
    agents,
    payloads,
    breaker,
    breakers,
    steps: new ExecutionSteps({
      executions,
      payloads,
      breaker,
      queueUrlPrefix: config.queueUrlPrefix,
      dispatchAllowanceSeconds: config.dispatchAllowanceSeconds,
    }),
    get service() {
      // Only the API needs state machine ARNs (the steps function must not: it would be circular).
      const service = new ExecutionService({ executions, payloads, workflows: StepFunctionsWorkflows.fromEnv(clients.sfn) });
      Object.defineProperty(this, 'service', { value: service });
      return service;
    },
    pool: new PoolManager(poolDeps),
    health: new HealthMonitor(poolDeps),
  };
  return layer;
}
