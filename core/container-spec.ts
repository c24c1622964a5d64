// An agent's container, said once for every runtime that is not Fargate. The synthesized ECS task
// definition of the agent's type (infra/constructs/agents.ts) is the source: containerSpec() reads it
// into a ContainerSpec, which the docker runtime (local/docker-runtime.ts) turns into an Engine API
// create request, and which a containerd runtime (an OCI runtime spec) or a Kubernetes runtime (a Pod
// template) can turn into theirs. The spec holds no runtime's vocabulary: sizes in plain units,
// capabilities by their Linux names, volumes as empty scratch space that lives and dies with the
// container. test/unit/container-spec.test.ts holds its output against the synthesized template.

/** A task definition resource as it appears in the synthesized template (the fields read here). */
export interface TaskDefinitionResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}

interface ContainerDefinition {
  Name?: string;
  Command?: string[];
  EntryPoint?: string[];
  User?: string;
  ReadonlyRootFilesystem?: boolean;
  StopTimeout?: number;
  Environment?: { Name: string; Value: unknown }[];
  Secrets?: { Name: string; ValueFrom: unknown }[];
  MountPoints?: { SourceVolume: string; ContainerPath: string; ReadOnly?: boolean }[];
  LinuxParameters?: { Capabilities?: { Add?: string[]; Drop?: string[] }; InitProcessEnabled?: boolean };
}

/**
 * The capabilities a container gets when nothing is said: Docker's default set, which ECS (Fargate
 * included), containerd's default OCI spec and Kubernetes on those runtimes all use. Podman's default
 * is smaller: a runtime should grant `capabilities` exactly (drop ALL, add these) rather than rely on it.
 */
export const DEFAULT_CAPABILITIES = [
  'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD',
  'NET_BIND_SERVICE', 'NET_RAW', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
] as const;

/** Label keys every runtime puts on an agent's container (Docker labels, containerd labels, Pod labels). */
export const LABELS = {
  stack: 'xl.stack',
  agentType: 'xl.agent-type',
  agentId: 'xl.agent-id',
} as const;

export interface ScratchVolume {
  /** The task definition's volume name (`workspace`, `tmp`). */
  name: string;
  containerPath: string;
  readOnly: boolean;
}

export interface ContainerSpec {
  image: string;
  /** The process to run; undefined: the image's own CMD (the worker, agent/Dockerfile). */
  command?: string[];
  /** `uid`, `uid:gid` or a user name of the image; the worker runs as root ("0") and runs agents as `node`. */
  user: string;
  readOnlyRootFilesystem: boolean;
  /**
   * Writable scratch space, empty (or seeded from the image's folder) at start and gone with the
   * container: Fargate's task storage, a Docker anonymous volume, a Kubernetes emptyDir.
   */
  volumes: ScratchVolume[];
  /** Linux capability names (no CAP_ prefix) the task definition drops from DEFAULT_CAPABILITIES. */
  capDrop: string[];
  /** What the container keeps: DEFAULT_CAPABILITIES less capDrop. Runtimes grant exactly these. */
  capabilities: string[];
  /**
   * No gain of privileges through exec (setuid binaries, file capabilities). Fargate offers no such
   * setting; every runtime here sets it: the worker switches user by setuid(2), never by exec.
   */
  noNewPrivileges: boolean;
  /** An init process as PID 1 that passes signals on and reaps orphans (ECS initProcessEnabled). */
  init: boolean;
  /** vCPUs (ECS units / 1024): a limit (a CFS quota), not a reservation. */
  cpus: number;
  /** The memory limit in MiB: past it the kernel's OOM killer ends the container's processes. */
  memoryMiB: number;
  /** The task definition's environment, resolved, then the caller's additions over it. */
  environment: Record<string, string>;
  /**
   * Variables the task definition fills from a secret store (ANTHROPIC_API_KEY from Secrets Manager):
   * names only. A runtime supplies their values from its own store, or leaves them out.
   */
  secretEnvironment: string[];
  /** How long the process has between SIGTERM and SIGKILL when the container is stopped. */
  stopTimeoutSeconds: number;
  /** LABELS: stack, agent type and agent id, plus any the caller adds. */
  labels: Record<string, string>;
}

export interface ContainerSpecOptions {
  /** The image to run (locally `xl-agent:latest`; the template's names an ECR asset). */
  image: string;
  stack: string;
  agentId: string;
  /** Resolves the template's intrinsic functions (Ref, Fn::Join...) in environment values. */
  resolve?: (value: unknown) => unknown;
  /** Added over the task definition's environment (local endpoints, the agent's id). */
  environment?: Record<string, string>;
  labels?: Record<string, string>;
  /** Over the task definition's memory (the local layer's XL_AGENT_MEMORY_MIB: tests that run out of it). */
  memoryMiB?: number;
}

const num = (value: unknown, what: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`task definition: ${what} must be a positive number, got ${JSON.stringify(value)}`);
  return n;
};

/** The agent type a task definition runs (its `xl:agentType` metadata), if any. */
export function agentTypeOf(td: TaskDefinitionResource): string | undefined {
  return td.Metadata?.['xl:agentType'] as string | undefined;
}

/** The one translation of an agent type's ECS task definition into an agent's container. */
export function containerSpec(td: TaskDefinitionResource, opts: ContainerSpecOptions): ContainerSpec {
  if (td.Type !== 'AWS::ECS::TaskDefinition') throw new Error(`not a task definition: ${td.Type}`);
  const props = td.Properties ?? {};
  const agentType = agentTypeOf(td);
  if (!agentType) throw new Error('task definition has no xl:agentType metadata');
  const containers = (props.ContainerDefinitions as ContainerDefinition[] | undefined) ?? [];
  // One container per agent task (the worker); a sidecar would need a spec of its own.
  if (containers.length !== 1) throw new Error(`task definition of ${agentType} has ${containers.length} containers, expected 1`);
  const c = containers[0]!;
  const resolve = opts.resolve ?? ((v: unknown) => v);

  const declared = new Set(((props.Volumes as { Name: string }[] | undefined) ?? []).map((v) => v.Name));
  const volumes = (c.MountPoints ?? []).map((m) => {
    if (!declared.has(m.SourceVolume)) throw new Error(`task definition of ${agentType}: mount of undeclared volume ${m.SourceVolume}`);
    return { name: m.SourceVolume, containerPath: m.ContainerPath, readOnly: m.ReadOnly === true };
  });
  const capDrop = [...(c.LinuxParameters?.Capabilities?.Drop ?? [])];
  const capAdd = c.LinuxParameters?.Capabilities?.Add ?? [];
  const dropped = new Set(capDrop.includes('ALL') ? DEFAULT_CAPABILITIES : capDrop);
  const capabilities = [...new Set([...DEFAULT_CAPABILITIES.filter((cap) => !dropped.has(cap)), ...capAdd])].sort();

  const environment: Record<string, string> = {};
  for (const e of c.Environment ?? []) environment[e.Name] = String(resolve(e.Value));
  Object.assign(environment, opts.environment ?? {});
  const command = c.EntryPoint || c.Command ? [...(c.EntryPoint ?? []), ...(c.Command ?? [])] : undefined;

  return {
    image: opts.image,
    ...(command ? { command } : {}),
    user: c.User ?? '0',
    readOnlyRootFilesystem: c.ReadonlyRootFilesystem === true,
    volumes,
    capDrop,
    capabilities,
    noNewPrivileges: true,
    init: c.LinuxParameters?.InitProcessEnabled === true,
    cpus: num(props.Cpu, 'Cpu') / 1024,
    memoryMiB: opts.memoryMiB ?? num(props.Memory, 'Memory'),
    environment,
    secretEnvironment: (c.Secrets ?? []).map((s) => s.Name),
    // Fargate's default when the task definition says nothing: 30 s (ContainerDefinition.stopTimeout, ECS API reference).
    stopTimeoutSeconds: c.StopTimeout ?? 30,
    labels: { ...opts.labels, [LABELS.stack]: opts.stack, [LABELS.agentType]: agentType, [LABELS.agentId]: opts.agentId },
  };
}
