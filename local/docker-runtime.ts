// AgentRuntime for the local layer with XL_RUNTIME=docker: each agent is a container of the agent
// image (`npm run image`) with the settings of its type's ECS task definition (core/container-spec.ts),
// driven through the Docker Engine API (dockerode; Podman's service speaks the same API). Containers
// use the host's network: the emulators listen on 127.0.0.1 only, and that is where agents reach them.
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough, type Writable } from 'node:stream';
import Docker from 'dockerode';
import type { AgentType } from '#core/agent-types.ts';
import { type ContainerSpec, LABELS } from '#core/container-spec.ts';
import { newAgentId } from '#core/pool.ts';
import type { AgentRecord, AgentRuntimeRef } from '#core/records.ts';
import type { AgentRuntime } from '#core/runtime.ts';

/** Which layer a container belongs to (one per state dir): its leftovers are found by this label. */
export const LAYER_LABEL = 'xl.layer';
export const DEFAULT_AGENT_IMAGE = 'xl-agent:latest';

/** The LAYER_LABEL value of the layer on a state dir. */
export function layerIdOf(stateDir: string): string {
  return createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 16);
}

/** Where dockerode connects (it reads DOCKER_HOST the same way), for error messages. */
export const engineAddress = () => process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';

const statusOf = (err: unknown) => (err as { statusCode?: number }).statusCode;

/** The Engine API create request for a spec: the one place the spec becomes Docker's vocabulary. */
export function dockerCreateOptions(spec: ContainerSpec, name: string, opts: { hostCpus?: number; extraLabels?: Record<string, string> } = {}): Docker.ContainerCreateOptions {
  // The engine refuses a limit above the host's CPUs; a smaller host gives what it has.
  const cpus = opts.hostCpus ? Math.min(spec.cpus, opts.hostCpus) : spec.cpus;
  return {
    name,
    Image: spec.image,
    ...(spec.command ? { Cmd: spec.command } : {}),
    User: spec.user,
    Env: Object.entries(spec.environment).map(([k, v]) => `${k}=${v}`),
    Labels: { ...spec.labels, ...opts.extraLabels },
    StopTimeout: spec.stopTimeoutSeconds,
    HostConfig: {
      NetworkMode: 'host',
      ReadonlyRootfs: spec.readOnlyRootFilesystem,
      // Anonymous volumes: seeded from the image's folder (its owner and mode), removed with the container.
      Mounts: spec.volumes.map((v) => ({ Type: 'volume' as const, Source: '', Target: v.containerPath, ReadOnly: v.readOnly })),
      // Exactly the spec's capabilities, whatever the engine's default set.
      CapDrop: ['ALL'],
      CapAdd: spec.capabilities,
      SecurityOpt: spec.noNewPrivileges ? ['no-new-privileges'] : [],
      Init: spec.init,
      NanoCpus: Math.round(cpus * 1e9),
      Memory: spec.memoryMiB * 1024 * 1024,
      // No swap beyond the limit: the limit is the task definition's memory, as on Fargate.
      MemorySwap: spec.memoryMiB * 1024 * 1024,
    },
  };
}

export interface DockerRuntimeOptions {
  docker?: Docker;
  /** Labels every container of this layer (LAYER_LABEL): how its leftovers are found. */
  layerId: string;
  /** The container of an agent of a type (containerSpec() over its task definition). */
  specFor: (type: AgentType, agentId: string, containerName: string) => ContainerSpec;
  /** Called when a container exits by itself (crash, kill, OOM), after it is removed. */
  onExit?: (agentId: string, code: number | null) => void;
  logStream?: Writable;
  /** Each line an agent writes (its structured log lines reach the layer's log file: `xl logs`). */
  onLogLine?: (line: string) => void;
}

export class DockerRuntime implements AgentRuntime {
  readonly docker: Docker;
  private readonly containers = new Map<string, { name: string; container: Docker.Container; exited: Promise<void> }>();
  private stopping = false;
  private hostCpus?: number;

  constructor(private readonly opts: DockerRuntimeOptions) {
    this.docker = opts.docker ?? new Docker();
  }

  static containerName(agentId: string): string {
    return `xl-${agentId}`;
  }

  /**
   * Checks before the layer comes up: the engine answers, the image is there, and the engine accepts
   * an agent's settings (a probe container of `probe` runs `node --version`). Each failure names its fix.
   */
  async preflight(image: string, probe?: ContainerSpec): Promise<void> {
    try {
      await this.docker.ping();
    } catch (err) {
      throw new Error(
        `XL_RUNTIME=docker: no Docker engine answers at ${engineAddress()} (${(err as Error).message}). Start dockerd, or point DOCKER_HOST ` +
          `at its socket (unix:///path/docker.sock); a private one: node --import tsx scripts/docker-engine.ts <dir>`,
        { cause: err },
      );
    }
    const info = (await this.docker.info()) as { NCPU?: number };
    this.hostCpus = info.NCPU;
    try {
      await this.docker.getImage(image).inspect();
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      throw new Error(`XL_RUNTIME=docker: the image ${image} is not on the engine at ${engineAddress()}: build it with \`npm run image\` (or set XL_AGENT_IMAGE)`, { cause: err });
    }
    if (!probe) return;
    const name = `xl-probe-${crypto.randomUUID().slice(0, 8)}`;
    const options = dockerCreateOptions({ ...probe, command: ['node', '--version'] }, name, { hostCpus: this.hostCpus, extraLabels: { [LAYER_LABEL]: this.opts.layerId } });
    let container: Docker.Container | undefined;
    try {
      container = await this.docker.createContainer(options);
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      if (StatusCode !== 0) throw new Error(`node --version exited with ${StatusCode}`);
    } catch (err) {
      throw new Error(`XL_RUNTIME=docker: the engine at ${engineAddress()} does not run an agent's container of ${image}: ${(err as Error).message}`, { cause: err });
    } finally {
      await container?.remove({ force: true, v: true }).catch(() => undefined);
    }
  }

  async start(agentType: AgentType, count: number): Promise<{ agentId: string; runtime: AgentRuntimeRef }[]> {
    const started: { agentId: string; runtime: AgentRuntimeRef }[] = [];
    for (let i = 0; i < count; i++) {
      const agentId = newAgentId(agentType);
      const name = DockerRuntime.containerName(agentId);
      const spec = this.opts.specFor(agentType, agentId, name);
      const container = await this.docker.createContainer(
        dockerCreateOptions(spec, name, { hostCpus: this.hostCpus, extraLabels: { [LAYER_LABEL]: this.opts.layerId } }),
      );
      // Asked before the start, so that no exit is missed: the next exit, since a created container
      // is already "not running" (the default condition), which would answer at once.
      const waited = container.wait({ condition: 'next-exit' }) as Promise<{ StatusCode: number }>;
      try {
        await container.start();
      } catch (err) {
        await container.remove({ force: true, v: true }).catch(() => undefined);
        throw err;
      }
      const exited = waited
        .then((r) => r.StatusCode, () => null)
        .then(async (code) => {
          // A wait that failed (the engine restarted, a dropped connection) is not an exit.
          if (code === null && (await this.isAlive({ kind: 'docker', containerId: name }).catch(() => true))) return;
          this.containers.delete(agentId);
          await container.remove({ force: true, v: true }).catch(() => undefined);
          if (!this.stopping) this.opts.onExit?.(agentId, code);
        });
      this.containers.set(agentId, { name, container, exited });
      void this.followLogs(container);
      started.push({ agentId, runtime: { kind: 'docker', containerId: name } });
    }
    return started;
  }

  private async followLogs(container: Docker.Container): Promise<void> {
    const out = this.opts.logStream ?? process.stderr;
    try {
      const stream = await container.logs({ follow: true, stdout: true, stderr: true });
      // Without a TTY the engine multiplexes stdout and stderr on one stream; one line reader per
      // container, so that two agents' partial lines never join.
      const lines = new PassThrough();
      lines.pipe(out, { end: false });
      if (this.opts.onLogLine) createInterface({ input: lines, crlfDelay: Infinity }).on('line', this.opts.onLogLine);
      stream.once('end', () => lines.end());
      this.docker.modem.demuxStream(stream, lines, lines);
    } catch {
      // gone already: its exit is handled by wait()
    }
  }

  async stop(agent: Pick<AgentRecord, 'agentId' | 'runtime'>, graceful: boolean): Promise<void> {
    if (agent.runtime.kind !== 'docker') return;
    const container = this.docker.getContainer(agent.runtime.containerId);
    if (graceful) {
      // SIGTERM now, SIGKILL after the container's StopTimeout (the task definition's stopTimeout),
      // counted by the engine: the worker hands back or finishes its task meanwhile.
      void container.stop().catch(() => undefined);
      return;
    }
    await container.kill({ signal: 'SIGKILL' }).catch((err) => {
      if (statusOf(err) !== 404 && statusOf(err) !== 409) throw err;
    });
  }

  async isAlive(runtime: AgentRuntimeRef): Promise<boolean> {
    if (runtime.kind !== 'docker') return false;
    try {
      const info = await this.docker.getContainer(runtime.containerId).inspect();
      // A paused container is a frozen agent, not a dead one (as a SIGSTOPped process).
      return info.State.Running || info.State.Paused || info.State.Restarting;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  /** Removes every container labelled with this layer's id (a layer that was SIGKILLed left them). */
  async removeLeftovers(): Promise<string[]> {
    const found = await this.docker.listContainers({ all: true, filters: { label: [`${LAYER_LABEL}=${this.opts.layerId}`] } });
    await Promise.all(found.map((c) => this.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
    return found.map((c) => c.Labels[LABELS.agentId] ?? c.Names[0] ?? c.Id);
  }

  /**
   * Stops every container: SIGINT (the worker finishes or hands back its task and, the queues
   * stopping with the layer, does not wait on its long polls), SIGKILL after `graceMs`; then removes
   * them all.
   */
  async stopAll(graceMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.containers.values()].map(async ({ container, exited }) => {
        await container.kill({ signal: 'SIGINT' }).catch(() => undefined);
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), graceMs)));
        if ((await Promise.race([exited, late])) === 'late') await container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
        clearTimeout(timer);
        await exited;
      }),
    );
    await this.removeLeftovers().catch(() => undefined);
  }

  get size(): number {
    return this.containers.size;
  }

  /** The name of a running agent's container (tests kill and inspect it). */
  containerOf(agentId: string): string | undefined {
    return this.containers.get(agentId)?.name;
  }
}
