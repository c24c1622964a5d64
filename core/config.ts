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

export interface LayerConfig {
  tables: { executions: string; agents: string; breakers: string };
  bucket: string;
  queueUrlPrefix: string;
  heartbeatSeconds: number;
  dispatchAllowanceSeconds: number;
}

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
  };
}

/** Agents heartbeat three times per heartbeat span; lease and visibility last two intervals. */
export function heartbeatIntervalMs(config: Pick<LayerConfig, 'heartbeatSeconds'>): number {
  return (config.heartbeatSeconds * 1000) / 3;
}
