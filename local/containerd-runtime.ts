// AgentRuntime for the local layer with XL_RUNTIME=containerd, for hosts that run containerd without
// Docker (Kubernetes nodes, minimal hosts): each agent is a container of the agent image with the
// settings of its type's ECS task definition (core/container-spec.ts), as with the docker runtime.
//
// It drives containerd through containerd's own client, `ctr` (Debian's containerd package), in child
// processes. containerd's API is gRPC, and no maintained Node client of it exists: @grpc/grpc-js is
// here (through dockerode) but containerd's .proto files are not, and a hand-copied API would be ours
// to keep in step with every containerd release. `ctr` ships with the daemon, so it matches it.
// What ctr 1.6 cannot say is filled in here: no `--user` flag (the image's user runs, which must be the
// spec's, checked at start), no `--init` (the host's static tini is mounted and runs first), no
// rlimit flag (containerd's default spec sets RLIMIT_NOFILE to 1024, which the VMs here accept; runc
// fails to raise it past the host's), no cgroup files in the container (mounted read-only, as Docker
// does: the worker reads its resources there, agent/resources.ts).
// The workspace and /tmp are folders on the host's disk, one pair per container, bind-mounted and
// removed with it: disk, as Fargate's task storage and Docker's volumes are (a tmpfs would count
// against the container's memory limit).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, type FSWatcher, watch } from 'node:fs';
import { chmod, mkdir, open, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { AgentType } from '#core/agent-types.ts';
import { type ContainerSpec, LABELS } from '#core/container-spec.ts';
import { newAgentId } from '#core/pool.ts';
import type { AgentRecord, AgentRuntimeRef } from '#core/records.ts';
import type { AgentRuntime } from '#core/runtime.ts';
import { LAYER_LABEL } from './docker-runtime.ts';

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';
/** The containerd namespace agents and the imported image live in (Docker's own is `moby`). */
export const CONTAINERD_NAMESPACE = 'xl';
/** Static init binaries a host may have (Debian's tini and docker.io packages): the spec's `init`. */
export const INIT_CANDIDATES = ['/usr/bin/tini-static', '/usr/bin/docker-init', '/usr/libexec/docker/docker-init', '/sbin/tini-static'];
/** Where the init binary appears in the container. */
const INIT_PATH = '/sbin/xl-init';

/** Where the runtime finds containerd: XL_CONTAINERD_ADDRESS, else containerd's default socket. */
export const containerdAddress = () => process.env.XL_CONTAINERD_ADDRESS || DEFAULT_CONTAINERD_ADDRESS;

/** containerd names images in full (docker.io/library/xl-agent:latest); Docker's short names expand so. */
export function normalizeImageRef(ref: string): string {
  const slash = ref.indexOf('/');
  const first = slash < 0 ? '' : ref.slice(0, slash);
  const hasRegistry = first.includes('.') || first.includes(':') || first === 'localhost';
  const named = hasRegistry ? ref : `docker.io/${slash < 0 ? `library/${ref}` : ref}`;
  // A tag after the last path component, or a digest; else :latest.
  const last = named.slice(named.lastIndexOf('/') + 1);
  return last.includes(':') || last.includes('@') ? named : `${named}:latest`;
}

/** What ctr needs that the spec does not hold: found on the host and in the image at start. */
export interface CtrRunContext {
  /** The capabilities containerd's default spec grants (`ctr oci spec`), to drop to the spec's. */
  defaultCapabilities: string[];
  /** The image's own command (Entrypoint + Cmd), run after the init when the spec has none. */
  imageCommand: string[];
  /** A static init binary on the host, mounted as the container's PID 1 when the spec asks for one. */
  initBinary?: string;
  /** Host folders for the spec's volumes, by container path. */
  volumeDirs: Record<string, string>;
  /** A file the task's output goes to (the shim appends stdout and stderr). */
  logPath: string;
  /** A file of KEY=value lines: the environment, kept off ctr's command line (any user can read that). */
  envFile: string;
  /** Labels beyond the spec's (the layer's id). */
  extraLabels?: Record<string, string>;
  /** The host's CPUs: a larger quota than the host has is capped to it. */
  hostCpus?: number;
  /** ctr has a --user flag (1.7 and later): the spec's user then runs, whatever the image's. */
  userFlag?: boolean;
}

/** The `ctr run` arguments (after the global ones) for a spec: the one place it becomes ctr's vocabulary. */
export function ctrRunArgs(spec: ContainerSpec, id: string, ctx: CtrRunContext): string[] {
  const cap = (c: string) => (c.startsWith('CAP_') ? c : `CAP_${c}`);
  const keep = new Set(spec.capabilities.map(cap));
  const defaults = new Set(ctx.defaultCapabilities.map(cap));
  const cpus = ctx.hostCpus ? Math.min(spec.cpus, ctx.hostCpus) : spec.cpus;
  const args = ['run', '--detach', '--log-uri', `file://${ctx.logPath}`, '--env-file', ctx.envFile];
  // The host's network, as the docker runtime: the local emulators listen on 127.0.0.1.
  args.push('--net-host');
  if (spec.readOnlyRootFilesystem) args.push('--read-only');
  // Exactly the spec's capabilities, whatever containerd's defaults.
  for (const c of [...defaults].filter((c) => !keep.has(c)).sort()) args.push('--cap-drop', c);
  for (const c of [...keep].filter((c) => !defaults.has(c)).sort()) args.push('--cap-add', c);
  // containerd sets no_new_privileges unless told otherwise.
  if (!spec.noNewPrivileges) args.push('--allow-new-privs');
  args.push('--memory-limit', String(spec.memoryMiB * 1024 * 1024));
  args.push('--cpus', String(cpus));
  if (ctx.userFlag) args.push('--user', spec.user);
  for (const v of spec.volumes) {
    const src = ctx.volumeDirs[v.containerPath];
    if (!src) throw new Error(`no host folder for the volume ${v.name} (${v.containerPath})`);
    args.push('--mount', `type=bind,src=${src},dst=${v.containerPath},options=rbind:${v.readOnly ? 'ro' : 'rw'}:nosuid:nodev`);
  }
  args.push('--mount', 'type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev');
  if (spec.init) {
    if (!ctx.initBinary) throw new Error('the spec asks for an init process and the host has no static init binary');
    args.push('--mount', `type=bind,src=${ctx.initBinary},dst=${INIT_PATH},options=rbind:ro`);
  }
  for (const [k, v] of Object.entries({ ...spec.labels, ...ctx.extraLabels })) args.push('--label', `${k}=${v}`);
  const command = spec.command ?? ctx.imageCommand;
  if (!command.length) throw new Error(`the image ${spec.image} has no command and the spec gives none`);
  args.push(normalizeImageRef(spec.image), id, ...(spec.init ? [INIT_PATH, '--', ...command] : command));
  return args;
}

/** The env file's text; a value with a line break cannot be said in it. */
export function envFileText(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => {
      if (/[\r\n]/.test(v)) throw new Error(`environment variable ${k}: a value with a line break cannot be passed to a containerd container`);
      return `${k}=${v}\n`;
    })
    .join('');
}

interface CtrResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ContainerdRuntimeOptions {
  /** containerd's socket (XL_CONTAINERD_ADDRESS). */
  address?: string;
  namespace?: string;
  /** Labels every container of this layer (LAYER_LABEL): how its leftovers are found. */
  layerId: string;
  /** Host folders of the containers' volumes and logs (under the layer's state dir). */
  volumesDir: string;
  specFor: (type: AgentType, agentId: string, containerName: string) => ContainerSpec;
  /** Called when a container exits by itself (crash, kill, OOM), after it is removed. */
  onExit?: (agentId: string, code: number | null) => void;
  logStream?: Writable;
  /** Each line an agent writes (its structured log lines reach the layer's log file: `xl logs`). */
  onLogLine?: (line: string) => void;
  /** What an earlier preflight() learned (the layer checks with one runtime and runs agents with another). */
  runContext?: RunContext;
}

type RunContext = Omit<CtrRunContext, 'volumeDirs' | 'logPath' | 'envFile'>;

interface Tracked {
  name: string;
  exited: Promise<void>;
  resolveExit: (code: number | null) => void;
  stopLog: () => Promise<void>;
  /** The spec's stop grace. */
  graceMs: number;
}

export class ContainerdRuntime implements AgentRuntime {
  readonly address: string;
  readonly namespace: string;
  private readonly containers = new Map<string, Tracked>();
  private stopping = false;
  private events?: ChildProcess;
  private context?: RunContext;

  constructor(private readonly opts: ContainerdRuntimeOptions) {
    this.address = opts.address ?? containerdAddress();
    this.namespace = opts.namespace ?? CONTAINERD_NAMESPACE;
    this.context = opts.runContext;
  }

  /** This runtime's options, with what its preflight() learned: for the runtime that runs the agents. */
  get options(): ContainerdRuntimeOptions {
    return { ...this.opts, address: this.address, namespace: this.namespace, runContext: this.context };
  }

  static containerName(agentId: string): string {
    return `xl-${agentId}`;
  }

  /** Runs `ctr` against this containerd and namespace; never throws for a non-zero exit. */
  ctr(args: string[], opts: { timeoutMs?: number } = {}): Promise<CtrResult> {
    return new Promise((ok, fail) => {
      execFile(
        'ctr',
        ['--address', this.address, '--namespace', this.namespace, '--connect-timeout', '5s', ...args],
        { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
          if (e && e.code === 'ENOENT') return fail(new Error('XL_RUNTIME=containerd: ctr is not installed (apt-get install containerd)'));
          ok({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr: stderr.trim() });
        },
      );
    });
  }

  private async ctrOk(args: string[], what: string): Promise<string> {
    const r = await this.ctr(args);
    if (r.code !== 0) throw new Error(`${what}: ctr ${args.slice(0, 2).join(' ')} exited with ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** The image's config (Cmd, Entrypoint, User): manifest (or the index's one for this host), then config. */
  async imageConfig(ref: string): Promise<{ Cmd?: string[]; Entrypoint?: string[]; User?: string } | undefined> {
    const listed = await this.ctrOk(['images', 'ls', `name==${ref}`], 'reading the image list');
    const row = listed.split('\n').slice(1).find((l) => l.startsWith(`${ref} `));
    if (!row) return undefined;
    const [, , digest] = row.trim().split(/\s+/);
    // An OCI index (or Docker manifest list), a manifest, an image config: the fields read here.
    interface Blob {
      manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[];
      config?: { digest: string } & { Cmd?: string[]; Entrypoint?: string[]; User?: string };
    }
    const get = async (d: string) => JSON.parse(await this.ctrOk(['content', 'get', d], `reading ${d}`)) as Blob;
    let manifest = await get(digest!);
    if (Array.isArray(manifest.manifests)) {
      const arch = process.arch === 'x64' ? 'amd64' : process.arch;
      const entry = manifest.manifests.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === arch);
      if (!entry) throw new Error(`the image ${ref} has no linux/${arch} manifest`);
      manifest = await get(entry.digest);
    }
    if (!manifest.config) throw new Error(`the image ${ref} has no config`);
    return (await get(manifest.config.digest)).config ?? {};
  }

  /**
   * Checks before the layer comes up: containerd answers, the image is in its namespace, the host
   * can say the spec (init, user), and containerd runs an agent's container of it (a probe that
   * runs `node --version` under `probe`'s settings). Each failure names its fix.
   */
  async preflight(image: string, probe?: ContainerSpec): Promise<void> {
    // No socket: said at once (ctr would wait out its connect timeout).
    const version = existsSync(this.address) ? await this.ctr(['version']) : { code: 1, stderr: 'no such socket' };
    if (version.code !== 0) {
      throw new Error(
        `XL_RUNTIME=containerd: no containerd answers at ${this.address} (${version.stderr.split('\n').pop()}). Start containerd, or point ` +
          `XL_CONTAINERD_ADDRESS at its socket; a private one comes with node --import tsx scripts/docker-engine.ts <dir> (<dir>/containerd.sock)`,
      );
    }
    const ref = normalizeImageRef(image);
    const config = await this.imageConfig(ref);
    if (!config) {
      throw new Error(
        `XL_RUNTIME=containerd: the image ${ref} is not in containerd's namespace ${this.namespace} at ${this.address}: ` +
          `import it with \`XL_CONTAINERD_ADDRESS=${this.address} npm run image -- --containerd\` (or set XL_AGENT_IMAGE)`,
      );
    }
    const spec = JSON.parse(await this.ctrOk(['oci', 'spec'], 'reading containerd\'s default spec')) as { process?: { capabilities?: { bounding?: string[] } } };
    const help = await this.ctr(['run', '--help']);
    this.context = {
      defaultCapabilities: spec.process?.capabilities?.bounding ?? [],
      imageCommand: [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])],
      initBinary: INIT_CANDIDATES.find((p) => existsSync(p)),
      hostCpus: availableParallelism(),
      userFlag: /--user\b/.test(help.stdout),
    };
    if (!probe) return;
    if (probe.init && !this.context.initBinary) {
      throw new Error(`XL_RUNTIME=containerd: the task definition asks for an init process and none of ${INIT_CANDIDATES.join(', ')} is on this host (apt-get install tini)`);
    }
    const imageUser = config.User || '0';
    const asRoot = (u: string) => ['0', 'root', '0:0', 'root:root'].includes(u);
    if (!this.context.userFlag && imageUser !== probe.user && !(asRoot(imageUser) && asRoot(probe.user))) {
      throw new Error(`XL_RUNTIME=containerd: the task definition's user ${probe.user} is not the image's (${imageUser}), and this ctr has no --user flag (containerd 1.7 has)`);
    }
    const name = `xl-probe-${crypto.randomUUID().slice(0, 8)}`;
    const { args, dir } = await this.prepare({ ...probe, command: ['node', '--version'], labels: { ...probe.labels, [LABELS.agentId]: 'probe' } }, name);
    try {
      // Not detached: ctr waits for the task and exits with its code.
      const r = await this.ctr(args.map((a) => (a === '--detach' ? '--rm' : a)));
      if (r.code !== 0) throw new Error(`node --version exited with ${r.code}: ${r.stderr}`);
    } catch (err) {
      throw new Error(`XL_RUNTIME=containerd: containerd at ${this.address} does not run an agent's container of ${ref}: ${(err as Error).message}`, { cause: err });
    } finally {
      await this.remove(name);
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The container's folder (volumes, log, env file) and its `ctr run` arguments. */
  private async prepare(spec: ContainerSpec, name: string): Promise<{ args: string[]; dir: string; logPath: string; envFile: string }> {
    if (!this.context) throw new Error('ContainerdRuntime: preflight() first');
    const dir = join(this.opts.volumesDir, name);
    const volumeDirs: Record<string, string> = {};
    for (const v of spec.volumes) {
      const host = join(dir, 'volumes', v.name);
      await mkdir(host, { recursive: true });
      // As the image's folders are (agent/Dockerfile): /tmp for everyone with the sticky bit, the rest root's.
      await chmod(host, v.containerPath === '/tmp' ? 0o1777 : 0o755);
      volumeDirs[v.containerPath] = host;
    }
    const logPath = join(dir, 'container.log');
    const envFile = join(dir, 'env');
    await writeFile(envFile, envFileText(spec.environment), { mode: 0o600 });
    const args = ctrRunArgs(spec, name, { ...this.context, volumeDirs, logPath, envFile, extraLabels: { [LAYER_LABEL]: this.opts.layerId } });
    return { args, dir, logPath, envFile };
  }

  /** One `ctr events` for the runtime's life: how exits (and OOM kills) are heard. */
  private listen(): void {
    if (this.events) return;
    // Through a shell that ends ctr when its stdin closes: when this process dies (a SIGKILLed layer),
    // no `ctr events` is left behind.
    const child = spawn('sh', ['-c', 'ctr --address "$1" events & trap \'kill $! 2>/dev/null\' EXIT; read _ || true', 'sh', this.address], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    this.events = child;
    // `<date> <time> +0000 UTC <namespace> <topic> <json>`
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /^\S+ \S+ \S+ \S+ (\S+) (\/tasks\/exit|\/tasks\/oom) (\{.*\})$/.exec(line);
      if (!m || m[1] !== this.namespace) return;
      const event = JSON.parse(m[3]!) as { container_id: string; id?: string; exit_status?: number };
      const agentId = [...this.containers].find(([, t]) => t.name === event.container_id)?.[0];
      if (!agentId) return;
      if (m[2] === '/tasks/oom') this.write(`xl: agent ${agentId}: out of memory in its container (${event.container_id})\n`);
      // The init process's exit (id = container id), not an exec's.
      else if (event.id === event.container_id) this.containers.get(agentId)!.resolveExit(event.exit_status ?? null);
    });
    child.once('exit', () => {
      this.events = undefined;
      if (this.stopping) return;
      // containerd restarted, say: listen again, and ask about each container in case an exit was missed.
      setTimeout(() => {
        this.listen();
        for (const [, t] of this.containers) void this.isAlive({ kind: 'containerd', containerId: t.name }).then((alive) => alive || t.resolveExit(null), () => undefined);
      }, 1000).unref();
    });
  }

  private write(text: string): void {
    (this.opts.logStream ?? process.stderr).write(text);
  }

  async start(agentType: AgentType, count: number): Promise<{ agentId: string; runtime: AgentRuntimeRef }[]> {
    this.listen();
    const started: { agentId: string; runtime: AgentRuntimeRef }[] = [];
    for (let i = 0; i < count; i++) {
      const agentId = newAgentId(agentType);
      const name = ContainerdRuntime.containerName(agentId);
      const spec = this.opts.specFor(agentType, agentId, name);
      const { args, dir, logPath, envFile } = await this.prepare(spec, name);
      let resolveExit!: (code: number | null) => void;
      const code = new Promise<number | null>((r) => (resolveExit = r));
      const tracked: Tracked = { name, resolveExit, stopLog: async () => undefined, exited: Promise.resolve(), graceMs: spec.stopTimeoutSeconds * 1000 };
      // Tracked before the start: an exit heard at once is not missed.
      this.containers.set(agentId, tracked);
      const r = await this.ctr(args);
      // containerd holds the environment now (as Docker does); the file goes.
      await rm(envFile, { force: true });
      if (r.code !== 0) {
        this.containers.delete(agentId);
        await this.remove(name);
        await rm(dir, { recursive: true, force: true });
        throw new Error(`containerd did not start ${name}: ${r.stderr}`);
      }
      tracked.stopLog = this.followLog(logPath);
      tracked.exited = code.then(async (exitCode) => {
        this.containers.delete(agentId);
        await tracked.stopLog();
        await this.remove(name);
        await rm(dir, { recursive: true, force: true });
        if (!this.stopping) this.opts.onExit?.(agentId, exitCode);
      });
      started.push({ agentId, runtime: { kind: 'containerd', containerId: name } });
    }
    return started;
  }

  /**
   * Copies what the container writes to its log file to the layer's log, as it comes: the file is
   * watched (inotify), with a poll behind it in case a change goes unheard. The returned stop reads
   * what is left, so a container's last lines are never lost to its exit.
   */
  private followLog(path: string): () => Promise<void> {
    let offset = 0;
    // One read at a time; a read asked for while one runs runs after it (never skipped: the bytes
    // written meanwhile may be the container's last).
    let current: Promise<void> | undefined;
    let again = false;
    // A read may end mid-character and mid-line: both are carried to the next.
    const decoder = new StringDecoder('utf8');
    let partial = '';
    const emit = (text: string) => {
      this.write(text);
      if (!this.opts.onLogLine) return;
      const lines = (partial + text).split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.opts.onLogLine(line);
    };
    const drain = async () => {
      try {
        const file = await open(path, 'r');
        try {
          const buf = Buffer.alloc(64 * 1024);
          for (;;) {
            const { bytesRead } = await file.read(buf, 0, buf.length, offset);
            if (!bytesRead) break;
            offset += bytesRead;
            emit(decoder.write(buf.subarray(0, bytesRead)));
          }
        } finally {
          await file.close();
        }
      } catch {
        // not there yet, or gone
      }
    };
    const read = (): Promise<void> => {
      if (current) {
        again = true;
        return current;
      }
      current = (async () => {
        do {
          again = false;
          await drain();
        } while (again);
      })().finally(() => (current = undefined));
      return current;
    };
    let watcher: FSWatcher | undefined;
    const watchFile = () => {
      try {
        watcher = watch(path, () => void read());
        watcher.on('error', () => undefined);
        watcher.unref();
      } catch {
        // the shim has not made the file yet: the next poll tries again
      }
    };
    watchFile();
    const timer = setInterval(() => {
      if (!watcher) watchFile();
      void read();
    }, 500);
    timer.unref();
    return async () => {
      clearInterval(timer);
      watcher?.close();
      // A read already running takes another turn (`again`), so what landed since is read too.
      await read();
    };
  }

  /** Kills a container's task and deletes the task, the container and its snapshot. */
  private async remove(name: string): Promise<void> {
    await this.ctr(['tasks', 'kill', '--signal', 'SIGKILL', name]);
    await this.ctr(['tasks', 'delete', '--force', name]);
    await this.ctr(['containers', 'delete', name]);
  }

  async stop(agent: Pick<AgentRecord, 'agentId' | 'runtime'>, graceful: boolean): Promise<void> {
    if (agent.runtime.kind !== 'containerd') return;
    const name = agent.runtime.containerId;
    if (!graceful) {
      await this.ctr(['tasks', 'kill', '--signal', 'SIGKILL', name]);
      return;
    }
    // SIGTERM now, SIGKILL after the spec's stop grace (the task definition's stopTimeout): the worker
    // finishes or hands back its task meanwhile. containerd has no stop timeout of its own.
    const graceMs = [...this.containers.values()].find((t) => t.name === name)?.graceMs ?? 30_000;
    void this.terminate(name, graceMs);
  }

  private async terminate(name: string, graceMs: number, signal: 'SIGTERM' | 'SIGINT' = 'SIGTERM'): Promise<void> {
    await this.ctr(['tasks', 'kill', '--signal', signal, name]);
    const tracked = [...this.containers.values()].find((t) => t.name === name);
    const timer = new Promise<'late'>((r) => setTimeout(() => r('late'), graceMs).unref());
    if (!tracked || (await Promise.race([tracked.exited.then(() => 'done' as const), timer])) === 'late') {
      await this.ctr(['tasks', 'kill', '--signal', 'SIGKILL', name]);
    }
  }

  private tasks?: Promise<Map<string, string>>;
  /** `ctr tasks ls`: each task's status, one ask shared by the callers of the moment. */
  private taskStatuses(): Promise<Map<string, string>> {
    this.tasks ??= this.ctrOk(['tasks', 'ls'], 'listing tasks')
      .then((out) => new Map(out.split('\n').slice(1).filter(Boolean).map((l) => { const [id, , status] = l.trim().split(/\s+/); return [id!, status!] as const; })))
      .finally(() => setTimeout(() => (this.tasks = undefined), 200).unref());
    return this.tasks;
  }

  async isAlive(runtime: AgentRuntimeRef): Promise<boolean> {
    if (runtime.kind !== 'containerd') return false;
    const status = (await this.taskStatuses()).get(runtime.containerId);
    // A paused task is a frozen agent, not a dead one (as a SIGSTOPped process).
    return status === 'RUNNING' || status === 'PAUSED' || status === 'PAUSING' || status === 'CREATED';
  }

  /** Removes every container labelled with this layer's id (a layer that was SIGKILLed left them), and their folders. */
  async removeLeftovers(): Promise<string[]> {
    const out = await this.ctrOk(['containers', 'ls', '--quiet', `labels."${LAYER_LABEL}"==${this.opts.layerId}`], 'listing containers');
    const names = out.split('\n').map((l) => l.trim()).filter(Boolean);
    await Promise.all(names.map((n) => this.remove(n)));
    await rm(this.opts.volumesDir, { recursive: true, force: true });
    await mkdir(this.opts.volumesDir, { recursive: true });
    return names;
  }

  /** Stops every container: SIGINT (as DockerRuntime.stopAll), SIGKILL after `graceMs`; then removes them all. */
  async stopAll(graceMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.containers.values()].map(async (t) => {
      await this.terminate(t.name, graceMs, 'SIGINT');
      await t.exited;
    }));
    this.events?.stdin?.end();
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
