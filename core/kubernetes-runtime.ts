// AgentRuntime over a Kubernetes cluster: each agent is a Job of the agent image in one namespace,
// with the settings of its type's ECS task definition (core/container-spec.ts) as a Pod template,
// through @kubernetes/client-node and the default kubeconfig chain. It sits in core beside the ECS
// runtime because nothing in it is local: the local layer uses it with XL_RUNTIME=kubernetes, and a
// pool manager could use it with ContainerSpecs carried in its environment.
//
// A Job, not a bare Pod: its ttlSecondsAfterFinished lets the cluster collect an agent that ended
// while no layer was there to remove it (a SIGKILLed layer, a pool manager that only runs each
// minute), a bare Pod that exited stays until someone deletes it; and a Job is what cluster quotas,
// queues and policies for batch work expect. backoffLimit 0 and restartPolicy Never: an agent that
// died is replaced by the pool manager under a new id, never restarted under its old one (its task
// is recovered through its lease, as for a dead Fargate task).
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  type V1EnvVar,
  type V1Job,
  type V1Pod,
  type V1PodSpec,
  type V1Status,
  VersionApi,
  Watch,
} from '@kubernetes/client-node';
import type { AgentType } from './agent-types.ts';
import { type ContainerSpec, LABELS } from './container-spec.ts';
import { newAgentId } from './pool.ts';
import type { AgentRecord, AgentRuntimeRef } from './records.ts';
import type { AgentRuntime } from './runtime.ts';

/** Recommended label (Kubernetes "Recommended Labels"): what application an object is part of. */
export const APP_LABEL = 'app.kubernetes.io/name';
export const APP_NAME = 'xl-agent';
/** The label the Job controller puts on its pods (also `batch.kubernetes.io/job-name` since 1.27). */
export const JOB_NAME_LABEL = 'job-name';
export const CONTAINER_NAME = 'agent';
export const DEFAULT_SERVICE_ACCOUNT = 'xl-agent';
export const DEFAULT_SECRET = 'xl-agent-secrets';
/** Where the service-account token of a pod is mounted: the in-cluster step of the kubeconfig chain. */
const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Variables that are secrets whatever the task definition says: never written into a Job as text. */
export const SECRET_VARIABLES = ['ANTHROPIC_API_KEY'] as const;

/** What the runtime must be allowed in its namespace (the Role in the README). */
export const REQUIRED_ACCESS: { verb: string; resource: string; group: string }[] = ['create', 'get', 'list', 'delete', 'watch'].flatMap((verb) => [
  { verb, resource: 'jobs', group: 'batch' },
  { verb, resource: 'pods', group: '' },
]);

export interface AgentJobOptions {
  name: string;
  namespace: string;
  serviceAccount: string;
  /** The Secret the spec's secret variables come from (each key optional: an absent one is left unset). */
  secretName: string;
  /** Labels beyond the spec's (the layer's owner label). */
  extraLabels?: Record<string, string>;
  /** How long a finished Job (and its pod) stays before the cluster collects it. */
  ttlSecondsAfterFinished?: number;
  /** emptyDir sizeLimit per scratch volume name (Kubernetes quantities); default DEFAULT_VOLUME_LIMITS. */
  volumeLimits?: Record<string, string>;
  /**
   * The address pods reach the layer's services at (XL_K8S_SERVICE_HOST): every loopback URL in the
   * environment (http://127.0.0.1:port, http://localhost:port) is rewritten to it.
   */
  serviceHost?: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
}

/** Fargate gives a task 20 GiB of ephemeral storage for all its volumes; here each gets a share. */
export const DEFAULT_VOLUME_LIMITS: Record<string, string> = { workspace: '16Gi', tmp: '4Gi' };
export const DEFAULT_TTL_SECONDS = 300;

/** `uid` or `uid:gid` (Kubernetes takes numbers only, not the image's user names). */
export function numericUser(user: string): { uid: number; gid: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) throw new Error(`kubernetes: the container user must be numeric (uid or uid:gid) for runAsUser, got "${user}"`);
  // No group given: the uid's own, as the image's users have (root 0:0, node 1000:1000).
  return { uid: Number(m[1]), gid: Number(m[2] ?? m[1]) };
}

const LOOPBACK_URL = /(https?:\/\/)(127\.0\.0\.1|localhost|\[::1\])(?=[:/]|$)/g;

/** A label value: at most 63 characters, alphanumeric at both ends, `-_.` inside. */
function checkLabel(key: string, value: string): void {
  if (value.length > 63 || !/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(value)) {
    throw new Error(`kubernetes: label ${key}=${JSON.stringify(value)} is not a valid label value (63 characters, alphanumeric at both ends)`);
  }
}

/** The Job of one agent: the one place a ContainerSpec becomes Kubernetes' vocabulary. */
export function agentJob(spec: ContainerSpec, opts: AgentJobOptions): V1Job {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(opts.name)) {
    throw new Error(`kubernetes: job name "${opts.name}" is not a DNS label (lower case, digits and '-', at most 63 characters)`);
  }
  const labels: Record<string, string> = { [APP_LABEL]: APP_NAME, ...spec.labels, ...opts.extraLabels };
  for (const [k, v] of Object.entries(labels)) checkLabel(k, v);
  const { uid, gid } = numericUser(spec.user);

  const secrets = new Set<string>([...spec.secretEnvironment, ...SECRET_VARIABLES]);
  const env: V1EnvVar[] = Object.entries(spec.environment)
    .filter(([name]) => !secrets.has(name))
    .map(([name, value]) => ({ name, value: opts.serviceHost ? value.replace(LOOPBACK_URL, `$1${opts.serviceHost}`) : value }));
  // Secret values never appear in the Job: the kubelet reads them from the Secret at the pod's start.
  for (const name of [...secrets].sort()) env.push({ name, valueFrom: { secretKeyRef: { name: opts.secretName, key: name, optional: true } } });

  const limits = { ...DEFAULT_VOLUME_LIMITS, ...opts.volumeLimits };
  // Requests equal to limits: the task definition's size is reserved, as Fargate reserves it (QoS Guaranteed).
  const resources = { cpu: `${Math.round(spec.cpus * 1000)}m`, memory: `${spec.memoryMiB}Mi` };
  const podSpec: V1PodSpec = {
    restartPolicy: 'Never',
    serviceAccountName: opts.serviceAccount,
    // The agent never talks to the Kubernetes API: no token in the pod.
    automountServiceAccountToken: false,
    hostNetwork: false,
    hostPID: false,
    hostIPC: false,
    // No variables naming the namespace's services (FOO_SERVICE_HOST...) in the agent's environment.
    enableServiceLinks: false,
    // ECS initProcessEnabled: Kubernetes has no init option; with a shared process namespace the
    // pod's pause process is PID 1 and reaps orphaned processes (one container: nothing else is shared).
    ...(spec.init ? { shareProcessNamespace: true } : {}),
    terminationGracePeriodSeconds: spec.stopTimeoutSeconds,
    securityContext: {
      runAsUser: uid,
      runAsGroup: gid,
      // The template's worker runs as root, with only the capabilities to switch user, and runs every
      // agent process as `node` (agent/run-as.ts): false says so rather than leaving it unsaid.
      runAsNonRoot: uid !== 0,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [
      {
        name: CONTAINER_NAME,
        image: spec.image,
        imagePullPolicy: opts.imagePullPolicy ?? 'IfNotPresent',
        ...(spec.command ? { command: spec.command } : {}),
        env,
        resources: { requests: resources, limits: resources },
        securityContext: {
          runAsUser: uid,
          runAsGroup: gid,
          runAsNonRoot: uid !== 0,
          readOnlyRootFilesystem: spec.readOnlyRootFilesystem,
          allowPrivilegeEscalation: !spec.noNewPrivileges,
          privileged: false,
          // Exactly the spec's capabilities, whatever the container runtime's default set.
          capabilities: { drop: ['ALL'], add: [...spec.capabilities] },
          seccompProfile: { type: 'RuntimeDefault' },
        },
        volumeMounts: spec.volumes.map((v) => ({ name: v.name, mountPath: v.containerPath, readOnly: v.readOnly })),
      },
    ],
    volumes: spec.volumes.map((v) => ({ name: v.name, emptyDir: { sizeLimit: limits[v.name] ?? '1Gi' } })),
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: opts.name, namespace: opts.namespace, labels },
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: opts.ttlSecondsAfterFinished ?? DEFAULT_TTL_SECONDS,
      template: { metadata: { labels }, spec: podSpec },
    },
  };
}

/** The default kubeconfig chain (KUBECONFIG, ~/.kube/config, in-cluster), refusing to guess past it. */
export function loadKubeConfig(env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  const files = (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  const home = join(env.HOME || homedir(), '.kube', 'config');
  for (const f of files) if (!existsSync(f)) throw new Error(`XL_RUNTIME=kubernetes: KUBECONFIG names ${f}, which does not exist`);
  // Without any of the three, the client library would fall back to http://localhost:8080: say what is missing instead.
  if (!files.length && !existsSync(home) && !(existsSync(IN_CLUSTER_TOKEN) && env.KUBERNETES_SERVICE_HOST)) {
    throw new Error(
      `XL_RUNTIME=kubernetes: no kubeconfig: set KUBECONFIG to a kubeconfig file, or write ${home} (kubectl config set-cluster / set-credentials / set-context), or run the layer in a pod`,
    );
  }
  kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error(`XL_RUNTIME=kubernetes: the kubeconfig has no current context with a cluster (kubectl config use-context <name>)`);
  return kc;
}

const codeOf = (err: unknown): number | undefined => (err as { code?: unknown }).code as number | undefined;
const statusOf = (err: unknown): V1Status | undefined => {
  const body = (err as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as V1Status;
    } catch {
      return undefined;
    }
  }
  return body as V1Status | undefined;
};
const isNotFound = (err: unknown) => codeOf(err) === 404;

export interface KubernetesRuntimeOptions {
  kubeConfig?: KubeConfig;
  /** XL_K8S_NAMESPACE, else the kubeconfig context's namespace, else `default`. */
  namespace?: string;
  serviceAccount?: string;
  secretName?: string;
  /** Labels on every object of this runtime's owner (the local layer's `xl.layer`): how leftovers are found. */
  ownerLabels: Record<string, string>;
  /** The container of an agent of a type (containerSpec() over its task definition). */
  specFor: (type: AgentType, agentId: string, jobName: string) => ContainerSpec;
  /** Called when an agent's pod ends by itself (exit, eviction, deletion by someone else). */
  onExit?: (agentId: string, code: number | null) => void;
  job?: Pick<AgentJobOptions, 'ttlSecondsAfterFinished' | 'volumeLimits' | 'serviceHost' | 'imagePullPolicy'>;
  /** How often stopAll looks whether the pods are gone. */
  pollMs?: number;
}

/** The runtime's settings from the environment (XL_K8S_*), for the layer. */
export function kubernetesSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): Pick<KubernetesRuntimeOptions, 'namespace' | 'serviceAccount' | 'secretName' | 'job'> {
  const pull = env.XL_K8S_IMAGE_PULL_POLICY;
  if (pull && !['Always', 'IfNotPresent', 'Never'].includes(pull)) throw new Error(`XL_K8S_IMAGE_PULL_POLICY must be Always, IfNotPresent or Never, got "${pull}"`);
  return {
    ...(env.XL_K8S_NAMESPACE ? { namespace: env.XL_K8S_NAMESPACE } : {}),
    serviceAccount: env.XL_K8S_SERVICE_ACCOUNT || DEFAULT_SERVICE_ACCOUNT,
    secretName: env.XL_K8S_SECRET || DEFAULT_SECRET,
    job: {
      ...(env.XL_K8S_SERVICE_HOST ? { serviceHost: env.XL_K8S_SERVICE_HOST } : {}),
      ...(pull ? { imagePullPolicy: pull as 'Always' } : {}),
    },
  };
}

const selector = (labels: Record<string, string>) => Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');

export class KubernetesRuntime implements AgentRuntime {
  readonly kc: KubeConfig;
  readonly namespace: string;
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly agents = new Map<string, { name: string; stopTimeout: number }>();
  private stopping = false;
  private watching?: AbortController;
  private rewatch?: NodeJS.Timeout;

  constructor(private readonly opts: KubernetesRuntimeOptions) {
    this.kc = opts.kubeConfig ?? loadKubeConfig();
    this.namespace = opts.namespace || this.kc.getContextObject(this.kc.getCurrentContext())?.namespace || 'default';
    this.batch = this.kc.makeApiClient(BatchV1Api);
    this.core = this.kc.makeApiClient(CoreV1Api);
  }

  static jobName(agentId: string): string {
    return `xl-${agentId}`;
  }

  private get server(): string {
    return this.kc.getCurrentCluster()?.server ?? '(no server)';
  }

  private jobOptions(name: string): AgentJobOptions {
    return {
      name,
      namespace: this.namespace,
      serviceAccount: this.opts.serviceAccount ?? DEFAULT_SERVICE_ACCOUNT,
      secretName: this.opts.secretName ?? DEFAULT_SECRET,
      extraLabels: this.opts.ownerLabels,
      ...this.opts.job,
    };
  }

  /**
   * Checks before the layer comes up, each failure naming its fix: the API server answers and takes
   * the credentials; the namespace exists (when the user may read namespaces); RBAC allows every verb
   * the runtime uses on jobs and pods; the cluster admits an agent's pod (`probe`, a server-side dry
   * run: the service account exists, Pod Security admission and quotas accept its settings).
   */
  async preflight(probe?: ContainerSpec): Promise<void> {
    const where = `the Kubernetes API server at ${this.server} (context ${this.kc.getCurrentContext() || '-'})`;
    try {
      await this.kc.makeApiClient(VersionApi).getCode();
    } catch (err) {
      if (codeOf(err) === 401) throw new Error(`XL_RUNTIME=kubernetes: ${where} refuses the kubeconfig's credentials (401): renew them`, { cause: err });
      if (codeOf(err) === undefined) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        throw new Error(`XL_RUNTIME=kubernetes: ${where} does not answer (${cause?.code ?? cause?.message ?? (err as Error).message}): is the cluster up, and the kubeconfig's server right?`, { cause: err });
      }
      // Any HTTP answer (403 for anonymous /version, say) is an API server that answers.
    }
    const ns = this.namespace;
    const missingNamespace = () => new Error(`XL_RUNTIME=kubernetes: the namespace ${ns} does not exist on ${this.server}: kubectl create namespace ${ns} (or set XL_K8S_NAMESPACE)`);
    try {
      await this.core.readNamespace({ name: ns });
    } catch (err) {
      if (isNotFound(err)) throw missingNamespace();
      // 403: reading namespaces is cluster-wide and the runtime does not need it; the checks below tell.
    }
    const authz = this.kc.makeApiClient(AuthorizationV1Api);
    const denied: string[] = [];
    for (const { verb, resource, group } of REQUIRED_ACCESS) {
      // Any authenticated user may ask what it is allowed (the system:basic-user ClusterRole).
      const review = await authz
        .createSelfSubjectAccessReview({
          body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace: ns, verb, resource, group } } },
        })
        .catch((err: unknown) => {
          throw new Error(`XL_RUNTIME=kubernetes: ${where} does not say what the kubeconfig's user may do (SelfSubjectAccessReview): ${statusOf(err)?.message ?? (err as Error).message}`, { cause: err });
        });
      if (!review.status?.allowed) denied.push(`${verb} ${group ? `${resource}.${group}` : resource}`);
    }
    if (denied.length) {
      throw new Error(
        `XL_RUNTIME=kubernetes: RBAC forbids the kubeconfig's user in namespace ${ns}: ${denied.join(', ')}. ` +
          `Bind it a Role with create, get, list, delete, watch on jobs (batch) and pods (README: "Kubernetes")`,
      );
    }
    if (!probe) return;
    const job = agentJob(probe, this.jobOptions(`xl-probe-${crypto.randomUUID().slice(0, 8)}`));
    const pod: V1Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...job.metadata, namespace: ns }, spec: job.spec!.template.spec };
    try {
      await this.batch.createNamespacedJob({ namespace: ns, body: job, dryRun: 'All' });
      // Admission of the pod itself (service account, Pod Security, quotas) happens only for pods.
      await this.core.createNamespacedPod({ namespace: ns, body: pod, dryRun: 'All' });
    } catch (err) {
      const status = statusOf(err);
      const message = status?.message ?? (err as Error).message;
      if (isNotFound(err) && status?.details?.kind === 'namespaces') throw missingNamespace();
      if (/service ?account/i.test(message)) {
        throw new Error(`XL_RUNTIME=kubernetes: ${message}: kubectl create serviceaccount ${this.jobOptions('x').serviceAccount} -n ${ns} (or set XL_K8S_SERVICE_ACCOUNT)`, { cause: err });
      }
      throw new Error(`XL_RUNTIME=kubernetes: namespace ${ns} does not admit an agent's pod: ${message}`, { cause: err });
    }
  }

  async start(agentType: AgentType, count: number): Promise<{ agentId: string; runtime: AgentRuntimeRef }[]> {
    this.watchPods();
    const started: { agentId: string; runtime: AgentRuntimeRef }[] = [];
    for (let i = 0; i < count; i++) {
      const agentId = newAgentId(agentType);
      const name = KubernetesRuntime.jobName(agentId);
      const spec = this.opts.specFor(agentType, agentId, name);
      await this.batch.createNamespacedJob({ namespace: this.namespace, body: agentJob(spec, this.jobOptions(name)) });
      this.agents.set(agentId, { name, stopTimeout: spec.stopTimeoutSeconds });
      started.push({ agentId, runtime: { kind: 'kubernetes', namespace: this.namespace, name } });
    }
    return started;
  }

  /** Follows this owner's pods: one that ended is a dead agent (its Job goes too). */
  private watchPods(): void {
    if (this.watching || this.rewatch || this.stopping) return;
    const path = `/api/v1/namespaces/${this.namespace}/pods`;
    const onEvent = (type: string, pod: V1Pod) => {
      const agentId = pod.metadata?.labels?.[LABELS.agentId];
      if (!agentId || !this.agents.has(agentId)) return;
      const phase = pod.status?.phase;
      if (type !== 'DELETED' && phase !== 'Succeeded' && phase !== 'Failed') return;
      const code = pod.status?.containerStatuses?.find((c) => c.name === CONTAINER_NAME)?.state?.terminated?.exitCode ?? null;
      const { name } = this.agents.get(agentId)!;
      this.agents.delete(agentId);
      void this.deleteJob(name).catch(() => undefined);
      if (!this.stopping) this.opts.onExit?.(agentId, code);
    };
    const done = () => {
      this.watching = undefined;
      // A watch ends (server timeout, a dropped connection): follow again while agents run.
      if (!this.stopping && this.agents.size) this.rewatch = setTimeout(() => ((this.rewatch = undefined), this.watchPods()), 1000).unref();
    };
    new Watch(this.kc)
      .watch(path, { labelSelector: selector(this.opts.ownerLabels) }, onEvent, done)
      .then((controller) => {
        if (this.stopping) controller.abort();
        else this.watching = controller;
      }, done);
  }

  private async deleteJob(name: string, namespace = this.namespace): Promise<void> {
    // Background: the Job goes now, its pods are deleted by the garbage collector (or by us, below).
    await this.batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }

  /** Deletes a Job, then its pods with the given grace (SIGTERM, SIGKILL after it). */
  private async deleteAgent(name: string, namespace: string, graceSeconds: number): Promise<void> {
    // The Job first, so that its controller does not replace a pod being deleted.
    await this.deleteJob(name, namespace);
    const pods = await this.core.listNamespacedPod({ namespace, labelSelector: `${JOB_NAME_LABEL}=${name}` });
    await Promise.all(
      pods.items.map((p) =>
        this.core.deleteNamespacedPod({ name: p.metadata!.name!, namespace, gracePeriodSeconds: graceSeconds }).catch((err) => {
          if (!isNotFound(err)) throw err;
        }),
      ),
    );
  }

  async stop(agent: Pick<AgentRecord, 'agentId' | 'runtime'>, graceful: boolean): Promise<void> {
    if (agent.runtime.kind !== 'kubernetes') return;
    const grace = graceful ? (this.agents.get(agent.agentId)?.stopTimeout ?? 30) : 0;
    await this.deleteAgent(agent.runtime.name, agent.runtime.namespace, grace);
  }

  /** Alive while its pod is Pending or Running (a terminating pod still runs its grace) or not made yet. */
  async isAlive(runtime: AgentRuntimeRef): Promise<boolean> {
    if (runtime.kind !== 'kubernetes') return false;
    const pods = await this.core.listNamespacedPod({ namespace: runtime.namespace, labelSelector: `${JOB_NAME_LABEL}=${runtime.name}` });
    // Unknown (its node lost contact) is not known to be dead: heartbeats decide, as for a frozen process.
    if (pods.items.length) return pods.items.some((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');
    try {
      const job = await this.batch.readNamespacedJob({ name: runtime.name, namespace: runtime.namespace });
      // A Job with no pod yet is starting, unless it has already ended (its pod deleted).
      return !job.status?.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True') && !job.metadata?.deletionTimestamp;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Deletes every Job and pod of this owner at once (a layer that was SIGKILLed left them). */
  async removeLeftovers(): Promise<string[]> {
    const labelSelector = selector(this.opts.ownerLabels);
    const jobs = await this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector });
    await Promise.all(jobs.items.map((j) => this.deleteJob(j.metadata!.name!)));
    const pods = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector });
    await Promise.all(
      pods.items.map((p) =>
        this.core.deleteNamespacedPod({ name: p.metadata!.name!, namespace: this.namespace, gracePeriodSeconds: 0 }).catch((err) => {
          if (!isNotFound(err)) throw err;
        }),
      ),
    );
    return [...new Set([...jobs.items, ...pods.items].map((o) => o.metadata?.labels?.[LABELS.agentId] ?? o.metadata!.name!))];
  }

  /** Stops every agent: SIGTERM, SIGKILL after `graceMs`; waits until their pods are gone (at most the grace and 5 s). */
  async stopAll(graceMs: number): Promise<void> {
    this.stopping = true;
    this.watching?.abort();
    if (this.rewatch) clearTimeout(this.rewatch);
    const grace = Math.max(1, Math.floor(graceMs / 1000));
    const names = [...this.agents.values()].map((a) => a.name);
    this.agents.clear();
    await Promise.all(names.map((name) => this.deleteAgent(name, this.namespace, grace).catch(() => undefined)));
    const labelSelector = selector(this.opts.ownerLabels);
    const deadline = Date.now() + graceMs + 5000;
    while (Date.now() < deadline) {
      const pods = await this.core.listNamespacedPod({ namespace: this.namespace, labelSelector }).catch(() => undefined);
      if (!pods || !pods.items.length) break;
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 500));
    }
    await this.removeLeftovers().catch(() => undefined);
  }

  get size(): number {
    return this.agents.size;
  }
}
