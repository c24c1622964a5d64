// The layer's settings, read from the environment once. Names are listed in docs/design.md.

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is not set`);
  return value;
}

function int(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got "${raw}"`);
  return value;
}

/** An idle agent is kept this long (s) before the pool manager may drain it. */
export const DEFAULT_POOL_IDLE_SECONDS = 120;

export interface LayerConfig {
  tables: { executions: string; agents: string; breakers: string };
  bucket: string;
  queueUrlPrefix: string;
  heartbeatSeconds: number;
  dispatchAllowanceSeconds: number;
  /** How long a started agent may take to send its first heartbeat (Fargate: about a minute). */
  startAllowanceSeconds: number;
  /** How long an idle agent is kept before the pool manager may drain it. */
  poolIdleSeconds: number;
  /** The pool keeps room for the tasks expected to arrive within this long (core/pool.ts sizeType). */
  poolReactionSeconds: number;
  poolStartSeconds: number;
}

/** 2.5 times a Fargate agent's start (about 60 s) plus a pool round (60 s): bench/pool-sim.ts. */
export const DEFAULT_POOL_REACTION_SECONDS = 300;

/** How long a Fargate agent takes to start (image pull, ENI, boot): the pool weighs a start against holding one. */
export const DEFAULT_POOL_START_SECONDS = 60;

export function loadConfig(): LayerConfig {
  return {
    tables: {
      executions: required('XL_TABLE_EXECUTIONS'),
      agents: required('XL_TABLE_AGENTS'),
      breakers: required('XL_TABLE_BREAKERS'),
    },
    bucket: required('XL_BUCKET'),
    queueUrlPrefix: required('XL_QUEUE_URL_PREFIX'),
    heartbeatSeconds: int('XL_HEARTBEAT_SECONDS', 60),
    dispatchAllowanceSeconds: int('XL_DISPATCH_ALLOWANCE_SECONDS', 86400),
    startAllowanceSeconds: int('XL_START_ALLOWANCE_SECONDS', 300),
    poolIdleSeconds: int('XL_POOL_IDLE_SECONDS', DEFAULT_POOL_IDLE_SECONDS),
    poolReactionSeconds: int('XL_POOL_REACTION_SECONDS', DEFAULT_POOL_REACTION_SECONDS),
    poolStartSeconds: int('XL_POOL_START_SECONDS', DEFAULT_POOL_START_SECONDS),
  };
}

/** Agents heartbeat three times per heartbeat span; lease and visibility last two intervals. */
export function heartbeatIntervalMs(config: Pick<LayerConfig, 'heartbeatSeconds'>): number {
  return (config.heartbeatSeconds * 1000) / 3;
}
