// What a driver is handed for one run, in tests that call drivers directly.
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverContext } from '../../agent/drivers/types.ts';

/**
 * A run's context in a fresh workspace under `root`, with the worker's per-task variables (and
 * `extraEnv`); `spawned` collects the process groups the driver reports.
 */
export async function driverContext(
  root: string,
  input: Record<string, unknown>,
  extraEnv: Record<string, string> = {},
  over: Partial<DriverContext> = {},
): Promise<DriverContext & { spawned: number[] }> {
  const workspace = await mkdtemp(join(root, 'ws-'));
  const spawned: number[] = [];
  return {
    workspace,
    input,
    signal: new AbortController().signal,
    env: { XL_TASK_ID: 't1', XL_EXECUTION_ID: 'ex-1', XL_ATTEMPT: '1', XL_WORKSPACE: workspace, ...extraEnv },
    onSpawn: (pgid) => spawned.push(pgid),
    spawned,
    ...over,
  };
}
