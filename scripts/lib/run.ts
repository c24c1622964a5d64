// Child processes of the deploy scripts (cdk, cdklocal, docker), behind one small type so that tests
// hand in a fake runner and assert which commands a decision leads to.
import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Collect stdout/stderr instead of showing them (for probes such as `docker buildx version`). */
  readonly capture?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export interface RunResult {
  /** The exit code; 127 when the command does not exist. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export type Run = (command: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

/** Runs a command; shown commands inherit the terminal (cdk's progress, its approval prompt). */
export const spawnRun: Run = (command, args, options = {}) =>
  new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: options.capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', (err: NodeJS.ErrnoException) => resolve({ code: err.code === 'ENOENT' ? 127 : 1, stdout, stderr: stderr + err.message }));
    child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });

/** An error a person can act on: what is wrong, then the fix. Printed without a stack trace. */
export class DeployError extends Error {
  constructor(
    message: string,
    readonly fix?: string,
  ) {
    super(message);
  }
}

/** Prints a DeployError (or any error) and sets the exit code; for the scripts' entry points. */
export function reportFailure(err: unknown): void {
  if (err instanceof DeployError) {
    console.error(`error: ${err.message}`);
    if (err.fix) console.error(`  fix: ${err.fix}`);
  } else console.error(err);
  process.exitCode = 1;
}
