// The design's capability check, run once when an agent starts: what it cannot do on this machine.
// The findings go into its health (core/health.ts) and its log, so that `GET /agents` says why an
// agent's Claude Code tasks would fail before any does.
import { execFile } from 'node:child_process';
import type { HealthIssue } from '../core/health.ts';

export interface CapabilityProbe {
  /** The Claude Code CLI the driver runs. */
  claudeBin: string;
  /** Whether the worker has a way to the model (a key, a key's secret, or Bedrock). */
  modelAccess: boolean;
}

const VERSION_TIMEOUT_MS = 10_000;

export async function checkCapabilities(probe: CapabilityProbe): Promise<HealthIssue[]> {
  const issues: HealthIssue[] = [];
  const [shell, git, claude] = await Promise.all([runs('/bin/sh', ['-c', 'exit 0']), runs('git', ['--version']), runs(probe.claudeBin, ['--version'])]);
  // Without a shell no command task can run: the agent is of no use.
  if (shell) issues.push({ check: 'capability', severity: 'critical', message: `command: /bin/sh cannot run (${shell})` });
  if (git) issues.push({ check: 'capability', severity: 'warning', message: `workspaces: git cannot run (${git}); tasks with a repository fail` });
  if (claude) issues.push({ check: 'capability', severity: 'warning', message: `claude-code: ${probe.claudeBin} cannot run (${claude}); tasks with instructions fail` });
  if (!probe.modelAccess) {
    issues.push({
      check: 'capability',
      severity: 'warning',
      message: 'claude-code: no model access (no ANTHROPIC_API_KEY, XL_ANTHROPIC_API_KEY_SECRET or Bedrock); tasks with instructions fail',
    });
  }
  return issues;
}

/** Undefined when the program ran and exited 0; else why not. */
function runs(file: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: VERSION_TIMEOUT_MS, killSignal: 'SIGKILL' }, (err) => {
      if (!err) return resolve(undefined);
      const code = (err as NodeJS.ErrnoException).code;
      resolve(code === 'ENOENT' ? 'not found' : err.killed ? 'timed out' : (err.message.split('\n')[0] ?? 'failed'));
    });
  });
}
