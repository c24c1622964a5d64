// AgentRuntime for the embedded local layer: each agent is a worker process running agent/main.ts (bundled)
// with the environment of its type's ECS task definition (resolved locally).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { AgentType } from '#core/agent-types.ts';
import { newAgentId } from '#core/pool.ts';
import type { AgentRecord, AgentRuntimeRef } from '#core/records.ts';
import type { AgentRuntime } from '#core/runtime.ts';
import { type AgentCommand, tsxAgentCommand } from './agent-bundle.ts';

export interface ProcessRuntimeOptions {
  projectRoot: string;
  /** node's arguments that start a worker: the agent's bundle (agent-bundle.ts), else agent/main.ts through tsx. */
  command?: AgentCommand;
  /** Where workers list the process groups of their running commands (`<agentId>.pgids`). */
  runDir: string;
  /** Environment per agent type: the task definition's, plus local endpoints and credentials. */
  envFor: (type: AgentType, agentId: string) => Record<string, string>;
  /** Called when a worker exits by itself (crash, kill), after its leftovers are reaped. */
  onExit?: (agentId: string, code: number | null, signal: NodeJS.Signals | null) => void;
  /** Where workers' stderr goes (the layer's stderr when absent). */
  logStream?: NodeJS.WritableStream;
  /** Each line a worker writes on its stderr (its structured log), as a whole line. */
  onLogLine?: (line: string) => void;
}

export class ProcessRuntime implements AgentRuntime {
  private readonly children = new Map<string, ChildProcess>();
  private stopping = false;

  constructor(private readonly opts: ProcessRuntimeOptions) {}

  async start(agentType: AgentType, count: number): Promise<{ agentId: string; runtime: AgentRuntimeRef }[]> {
    const started: { agentId: string; runtime: AgentRuntimeRef }[] = [];
    for (let i = 0; i < count; i++) {
      const agentId = newAgentId(agentType);
      const child = spawn(process.execPath, this.opts.command ?? tsxAgentCommand(this.opts.projectRoot), {
        cwd: this.opts.projectRoot,
        env: {
          ...this.opts.envFor(agentType, agentId),
          XL_AGENT_ID: agentId,
          XL_AGENT_TYPE: agentType,
          XL_RUN_DIR: this.opts.runDir,
          // The worker exits when this process is gone (its emulators are gone with it).
          XL_SUPERVISOR_PID: String(process.pid),
        },
        stdio: ['ignore', 'inherit', this.opts.logStream || this.opts.onLogLine ? 'pipe' : 'inherit'],
      });
      if (child.stderr) {
        child.stderr.pipe(this.opts.logStream ?? process.stderr, { end: false });
        // Split per worker, so that one worker's line is never cut by another's.
        if (this.opts.onLogLine) createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', this.opts.onLogLine);
      }
      this.children.set(agentId, child);
      child.once('exit', (code, signal) => {
        this.children.delete(agentId);
        void this.reap(agentId).then(() => {
          if (!this.stopping) this.opts.onExit?.(agentId, code, signal);
        });
      });
      started.push({ agentId, runtime: { kind: 'process', pid: child.pid! } });
    }
    return started;
  }

  async stop(agent: Pick<AgentRecord, 'agentId' | 'runtime'>, graceful: boolean): Promise<void> {
    const child = this.children.get(agent.agentId);
    if (child) child.kill(graceful ? 'SIGTERM' : 'SIGKILL');
    else if (agent.runtime.kind === 'process') {
      try {
        process.kill(agent.runtime.pid, graceful ? 'SIGTERM' : 'SIGKILL');
      } catch {
        // already gone
      }
      await this.reap(agent.agentId);
    }
  }

  async isAlive(runtime: AgentRuntimeRef): Promise<boolean> {
    if (runtime.kind !== 'process') return false;
    for (const child of this.children.values()) if (child.pid === runtime.pid) return child.exitCode === null;
    return false; // not one of ours: a worker of an earlier run of the layer
  }

  /** Kills what a dead worker's commands left running: a command never outlives its claim. */
  async reap(agentId: string): Promise<void> {
    const file = join(this.opts.runDir, `${agentId}.pgids`);
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      const pgid = Number(line.trim());
      if (pgid > 1) {
        try {
          process.kill(-pgid, 'SIGKILL');
        } catch {
          // the group is gone
        }
      }
    }
    await rm(file, { force: true });
  }

  /**
   * Stops every worker: SIGINT (they hand back or finish their tasks, and do not wait on their long
   * polls: the queues stop with the layer), SIGKILL after `graceMs`.
   */
  async stopAll(graceMs: number): Promise<void> {
    this.stopping = true;
    const exits = [...this.children.entries()].map(
      ([agentId, child]) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(timer);
            void this.reap(agentId).then(resolve);
          });
          child.kill('SIGINT');
        }),
    );
    await Promise.all(exits);
  }

  get size(): number {
    return this.children.size;
  }

  pidOf(agentId: string): number | undefined {
    return this.children.get(agentId)?.pid;
  }
}
