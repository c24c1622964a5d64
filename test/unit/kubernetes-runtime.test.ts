// The kubernetes runtime (core/kubernetes-runtime.ts). No API server can run on these machines, so:
// the Job it builds is held to the Kubernetes schemas (the client library's typed models, generated
// from the API's OpenAPI document: a field they do not know is dropped by a round trip through
// ObjectSerializer) and to every hardening setting of the agent's ContainerSpec; and its start,
// stop, isAlive, leftovers and start checks run through the real client library against a stand-in
// API server (test/support/kube-api.ts) that speaks the few endpoints it uses.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectSerializer } from '@kubernetes/client-node/dist/serializer.js';
import { quantityToScalar } from '@kubernetes/client-node/dist/util.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ContainerSpec, LABELS, containerSpec } from '../../core/container-spec.ts';
import {
  APP_LABEL,
  DEFAULT_TTL_SECONDS,
  KubernetesRuntime,
  agentJob,
  kubernetesSettingsFromEnv,
  loadKubeConfig,
} from '../../core/kubernetes-runtime.ts';
import { AGENT_DROPPED_CAPABILITIES } from '../../infra/constructs/agents.ts';
import { coderTaskDefinition } from '../fixtures/task-definitions.ts';
import { parseRuntimeKind } from '../../local/layer.ts';
import { StandInKubeApi } from '../support/kube-api.ts';
import { waitFor } from '../support/processes.ts';

const coderSpec = (environment: Record<string, string> = {}, agentId = 'coder-1a2b3c4d'): ContainerSpec =>
  containerSpec(coderTaskDefinition, { image: 'registry.example/xl-agent:1', stack: 'xl', agentId, environment });

const jobOptions = { name: 'xl-coder-1a2b3c4d', namespace: 'agents', serviceAccount: 'xl-agent', secretName: 'xl-agent-secrets', extraLabels: { 'xl.layer': '0123456789abcdef' } };

describe('the Job of an agent', () => {
  const spec = coderSpec({ AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:4566', XL_TASK_QUEUE_URL: 'http://127.0.0.1:4566/000000000000/xl-tasks', ANTHROPIC_API_KEY: 'sk-ant-never-in-a-job' });
  const job = agentJob(spec, jobOptions);
  const pod = job.spec!.template.spec!;
  const container = pod.containers[0]!;

  it('survives a round trip through the Kubernetes models unchanged: every field is one the API knows', () => {
    const plain = JSON.parse(JSON.stringify(job)) as object;
    const roundTrip = ObjectSerializer.serialize(ObjectSerializer.deserialize(plain, 'V1Job'), 'V1Job') as object;
    expect(roundTrip).toEqual(plain);
  });

  it('is a Job that never retries and is collected a while after it ends', () => {
    expect(job.apiVersion).toBe('batch/v1');
    expect(job.kind).toBe('Job');
    expect(job.metadata).toMatchObject({ name: 'xl-coder-1a2b3c4d', namespace: 'agents' });
    expect(job.spec!.backoffLimit).toBe(0);
    expect(job.spec!.ttlSecondsAfterFinished).toBe(DEFAULT_TTL_SECONDS);
    expect(pod.restartPolicy).toBe('Never');
  });

  it('runs the image as the task definition\'s user, saying plainly that the worker is root', () => {
    expect(container.image).toBe('registry.example/xl-agent:1');
    expect(container.command).toBeUndefined();
    for (const sc of [pod.securityContext!, container.securityContext!]) {
      expect(sc.runAsUser).toBe(0);
      expect(sc.runAsGroup).toBe(0);
      expect(sc.runAsNonRoot).toBe(false);
    }
  });

  it('runs a non-root user as non-root', () => {
    const sc = agentJob({ ...spec, user: '1000:1000' }, jobOptions).spec!.template.spec!.containers[0]!.securityContext!;
    expect(sc).toMatchObject({ runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true });
  });

  it('has the hardening of the task definition: read-only root, no privilege escalation, exactly its capabilities, seccomp', () => {
    const sc = container.securityContext!;
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.privileged).toBe(false);
    expect(sc.capabilities!.drop).toEqual(['ALL']);
    expect(sc.capabilities!.add).toEqual(spec.capabilities);
    for (const dropped of AGENT_DROPPED_CAPABILITIES) expect(sc.capabilities!.add).not.toContain(dropped);
    expect(sc.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(pod.securityContext!.seccompProfile).toEqual({ type: 'RuntimeDefault' });
  });

  it('reserves and limits the task definition\'s CPUs and memory', () => {
    const { requests, limits } = container.resources!;
    expect(requests).toEqual(limits);
    expect(Number(quantityToScalar(limits!.cpu!))).toBe(2);
    expect(Number(quantityToScalar(limits!.memory!))).toBe(4096 * 1024 * 1024);
  });

  it('mounts the workspace and /tmp as size-limited emptyDir volumes', () => {
    expect(container.volumeMounts).toEqual([
      { name: 'workspace', mountPath: '/workspace', readOnly: false },
      { name: 'tmp', mountPath: '/tmp', readOnly: false },
    ]);
    expect(pod.volumes).toEqual([
      { name: 'workspace', emptyDir: { sizeLimit: '16Gi' } },
      { name: 'tmp', emptyDir: { sizeLimit: '4Gi' } },
    ]);
  });

  it('has a dedicated service account whose token is not mounted, and no host namespaces', () => {
    expect(pod.serviceAccountName).toBe('xl-agent');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.hostNetwork).toBe(false);
    expect(pod.hostPID).toBe(false);
    expect(pod.hostIPC).toBe(false);
    expect(pod.enableServiceLinks).toBe(false);
  });

  it('gives the pod the task definition\'s stop grace, and an init (the shared process namespace\'s pause) as PID 1', () => {
    expect(pod.terminationGracePeriodSeconds).toBe(120);
    expect(pod.shareProcessNamespace).toBe(true);
  });

  it('labels the Job and its pod with the application, the stack, the agent type, the agent and the owner', () => {
    const labels = { [APP_LABEL]: 'xl-agent', [LABELS.stack]: 'xl', [LABELS.agentType]: 'coder', [LABELS.agentId]: 'coder-1a2b3c4d', 'xl.layer': '0123456789abcdef' };
    expect(job.metadata!.labels).toEqual(labels);
    expect(job.spec!.template.metadata!.labels).toEqual(labels);
  });

  it('takes secret variables from the Secret by reference, never as text', () => {
    const key = container.env!.filter((e) => e.name === 'ANTHROPIC_API_KEY');
    expect(key).toEqual([{ name: 'ANTHROPIC_API_KEY', valueFrom: { secretKeyRef: { name: 'xl-agent-secrets', key: 'ANTHROPIC_API_KEY', optional: true } } }]);
    expect(JSON.stringify(job)).not.toContain('sk-ant-never-in-a-job');
  });

  it('carries the rest of the environment as it is, loopback endpoints included when no service host is set', () => {
    const env = Object.fromEntries(container.env!.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    expect(env).toEqual({ XL_AGENT_TYPE: 'coder', XL_HEARTBEAT_SECONDS: '30', AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:4566', XL_TASK_QUEUE_URL: 'http://127.0.0.1:4566/000000000000/xl-tasks' });
  });

  it('rewrites loopback endpoints to the service host pods reach the layer at (XL_K8S_SERVICE_HOST)', () => {
    const env = agentJob(spec, { ...jobOptions, serviceHost: 'host.example.internal' }).spec!.template.spec!.containers[0]!.env!;
    const value = (n: string) => env.find((e) => e.name === n)!.value;
    expect(value('AWS_ENDPOINT_URL_SQS')).toBe('http://host.example.internal:4566');
    expect(value('XL_TASK_QUEUE_URL')).toBe('http://host.example.internal:4566/000000000000/xl-tasks');
    expect(value('XL_AGENT_TYPE')).toBe('coder');
  });

  it('refuses a user name, which Kubernetes cannot run as, naming it', () => {
    expect(() => agentJob({ ...spec, user: 'node' }, jobOptions)).toThrow('kubernetes: the container user must be numeric (uid or uid:gid) for runAsUser, got "node"');
  });

  it('refuses a name that is not a DNS label and a label value Kubernetes refuses', () => {
    expect(() => agentJob(spec, { ...jobOptions, name: 'XL_Coder' })).toThrow('job name "XL_Coder" is not a DNS label');
    expect(() => agentJob(spec, { ...jobOptions, extraLabels: { 'xl.layer': 'a/b' } })).toThrow('label xl.layer="a/b" is not a valid label value');
  });
});

describe('the runtime\'s settings from the environment', () => {
  it('is what XL_RUNTIME=kubernetes picks', () => {
    expect(parseRuntimeKind('kubernetes')).toBe('kubernetes');
  });
  it('has a dedicated service account and Secret by default', () => {
    expect(kubernetesSettingsFromEnv({})).toEqual({ serviceAccount: 'xl-agent', secretName: 'xl-agent-secrets', job: {} });
  });
  it('takes the namespace, service account, Secret, service host and pull policy', () => {
    expect(
      kubernetesSettingsFromEnv({ XL_K8S_NAMESPACE: 'ns', XL_K8S_SERVICE_ACCOUNT: 'sa', XL_K8S_SECRET: 's', XL_K8S_SERVICE_HOST: '10.0.0.1', XL_K8S_IMAGE_PULL_POLICY: 'Never' }),
    ).toEqual({ namespace: 'ns', serviceAccount: 'sa', secretName: 's', job: { serviceHost: '10.0.0.1', imagePullPolicy: 'Never' } });
  });
  it('refuses an unknown pull policy', () => {
    expect(() => kubernetesSettingsFromEnv({ XL_K8S_IMAGE_PULL_POLICY: 'Sometimes' })).toThrow('XL_K8S_IMAGE_PULL_POLICY must be Always, IfNotPresent or Never, got "Sometimes"');
  });
});

describe('the kubeconfig chain', () => {
  const home = mkdtempSync(join(tmpdir(), 'xl-kube-home-'));
  it('refuses to start with no kubeconfig anywhere, naming where it looked', () => {
    expect(() => loadKubeConfig({ HOME: home })).toThrow(`XL_RUNTIME=kubernetes: no kubeconfig: set KUBECONFIG to a kubeconfig file, or write ${join(home, '.kube', 'config')}`);
  });
  it('refuses a KUBECONFIG that names a missing file', () => {
    expect(() => loadKubeConfig({ HOME: home, KUBECONFIG: join(home, 'nope.yaml') })).toThrow(`KUBECONFIG names ${join(home, 'nope.yaml')}, which does not exist`);
  });
  it('loads the file KUBECONFIG names, with its context\'s namespace', () => {
    const file = join(home, 'config.yaml');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://k8s.example:6443"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: agents}}]\ncurrent-context: x\n`,
    );
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = file; // loadFromDefault reads the process's own environment
    try {
      const runtime = new KubernetesRuntime({ kubeConfig: loadKubeConfig({ KUBECONFIG: file }), ownerLabels: {}, specFor: () => coderSpec() });
      expect(runtime.kc.getCurrentCluster()!.server).toBe('https://k8s.example:6443');
      expect(runtime.namespace).toBe('agents');
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });
});

describe('the runtime against a stand-in API server', () => {
  let api: StandInKubeApi;
  let exits: { agentId: string; code: number | null }[];
  const owner = { 'xl.layer': 'layer-under-test' };
  const runtimeOn = (ns = 'agents', extra: Partial<ConstructorParameters<typeof KubernetesRuntime>[0]> = {}) =>
    new KubernetesRuntime({
      kubeConfig: api.kubeConfig(ns),
      ownerLabels: owner,
      specFor: (_type, agentId) => coderSpec({}, agentId),
      onExit: (agentId, code) => exits.push({ agentId, code }),
      pollMs: 20,
      ...extra,
    });

  type KubernetesRef = { kind: 'kubernetes'; namespace: string; name: string };
  const startOne = async (runtime: KubernetesRuntime) => {
    const [agent] = await runtime.start('coder', 1);
    return { agentId: agent!.agentId, ref: agent!.runtime as KubernetesRef, pod: api.podsOf((agent!.runtime as KubernetesRef).name)[0]!.metadata!.name! };
  };

  beforeEach(async () => {
    api = await new StandInKubeApi().start();
    api.namespaces.add('agents');
    api.serviceAccounts.add('agents/xl-agent');
    exits = [];
  });
  afterEach(async () => {
    await api.close();
  });

  it('starts each agent as a Job of its type in the namespace and names it in the agent\'s record', async () => {
    const runtime = runtimeOn();
    const started = await runtime.start('coder', 2);
    expect(started).toHaveLength(2);
    for (const { agentId, runtime: ref } of started) {
      expect(ref).toEqual({ kind: 'kubernetes', namespace: 'agents', name: `xl-${agentId}` });
      const job = api.jobs.get(`xl-${agentId}`)!;
      expect(job.metadata!.labels).toMatchObject({ ...owner, [LABELS.agentId]: agentId, [LABELS.agentType]: 'coder' });
      expect(job.spec!.template.spec!.containers[0]!.securityContext!.readOnlyRootFilesystem).toBe(true);
    }
    await runtime.stopAll(1000);
  });

  it('reads an agent as alive while its pod is Pending or Running, and dead once it ended or is gone', async () => {
    const runtime = runtimeOn();
    const { ref, pod } = await startOne(runtime);
    expect(await runtime.isAlive(ref)).toBe(true);
    api.setPhase(pod, 'Running');
    expect(await runtime.isAlive(ref)).toBe(true);
    api.setPhase(pod, 'Failed', 137);
    expect(await runtime.isAlive(ref)).toBe(false);
    expect(await runtime.isAlive({ kind: 'kubernetes', namespace: 'agents', name: 'xl-coder-gone' })).toBe(false);
    expect(await runtime.isAlive({ kind: 'docker', containerId: 'x' })).toBe(false);
  });

  it('reports a pod that ended by itself as a dead agent with its exit code, and removes its Job', async () => {
    const runtime = runtimeOn();
    const { agentId, ref, pod } = await startOne(runtime);
    api.setPhase(pod, 'Running');
    api.setPhase(pod, 'Failed', 137);
    await waitFor(() => exits.length === 1);
    expect(exits).toEqual([{ agentId, code: 137 }]);
    await waitFor(() => !api.jobs.has(ref.name));
    expect(runtime.size).toBe(0);
    await runtime.stopAll(1000);
  });

  it('stops a drained agent by deleting its Job and its pod with the task definition\'s grace', async () => {
    const runtime = runtimeOn();
    const { agentId, ref, pod } = await startOne(runtime);
    api.setPhase(pod, 'Running');
    await runtime.stop({ agentId, runtime: ref }, true);
    expect(api.jobs.has(ref.name)).toBe(false);
    const deletes = api.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.map((r) => [r.path.split('/').slice(-2)[0], r.query.propagationPolicy ?? r.query.gracePeriodSeconds])).toEqual([
      ['jobs', 'Background'],
      ['pods', '120'],
    ]);
    // Its worker has its grace to hand back or finish the task: still alive until its process ends.
    expect(api.pods.get(pod)!.metadata!.deletionGracePeriodSeconds).toBe(120);
    expect(await runtime.isAlive(ref)).toBe(true);
    api.terminate(pod);
    expect(await runtime.isAlive(ref)).toBe(false);
    await runtime.stopAll(1000);
  });

  it('stops an agent at once when not graceful (grace 0)', async () => {
    const runtime = runtimeOn();
    const { agentId, ref, pod } = await startOne(runtime);
    api.setPhase(pod, 'Running');
    await runtime.stop({ agentId, runtime: ref }, false);
    expect(api.podsOf(ref.name)).toEqual([]);
    expect(await runtime.isAlive(ref)).toBe(false);
    await runtime.stopAll(1000);
  });

  it('removes what an earlier run of the same owner left, and only that', async () => {
    const earlier = runtimeOn();
    const left = await earlier.start('coder', 2);
    const other = runtimeOn('agents', { ownerLabels: { 'xl.layer': 'another-layer' } });
    const [kept] = await other.start('coder', 1);
    const removed = await runtimeOn().removeLeftovers();
    expect(removed.sort()).toEqual(left.map((a) => a.agentId).sort());
    expect([...api.jobs.keys()]).toEqual([`xl-${kept!.agentId}`]);
    expect([...api.pods.values()].map((p) => p.metadata!.labels![LABELS.agentId])).toEqual([kept!.agentId]);
    expect(api.requests.filter((r) => r.method === 'GET' && r.query.labelSelector === 'xl.layer=layer-under-test' && !r.query.watch)).toHaveLength(2);
  });

  it('stops every agent at the layer\'s stop, waiting until their pods are gone', async () => {
    const runtime = runtimeOn();
    const started = await runtime.start('coder', 2);
    for (const { runtime: ref } of started) api.setPhase(api.podsOf((ref as { name: string }).name)[0]!.metadata!.name!, 'Running');
    const stopped = runtime.stopAll(2000);
    // Each pod is deleted with the layer's grace (shorter than the 120 s the Job's deletion gives it)...
    await waitFor(() => [...api.pods.values()].every((p) => p.metadata!.deletionGracePeriodSeconds === 2));
    // ...and its worker exits within it.
    for (const p of [...api.pods.values()]) api.terminate(p.metadata!.name!);
    await stopped;
    expect(api.jobs.size + api.pods.size).toBe(0);
    expect(exits).toEqual([]);
  });

  describe('start checks', () => {
    it('pass on a namespace that admits an agent\'s pod, through dry runs that create nothing', async () => {
      await runtimeOn().preflight(coderSpec());
      expect(api.requests.filter((r) => r.method === 'POST' && !r.path.includes('selfsubjectaccessreviews')).map((r) => [r.path, r.query.dryRun])).toEqual([
        ['/apis/batch/v1/namespaces/agents/jobs', 'All'],
        ['/api/v1/namespaces/agents/pods', 'All'],
      ]);
      expect(api.jobs.size + api.pods.size).toBe(0);
    });

    it('name an API server that does not answer', async () => {
      const url = api.url;
      const kc = api.kubeConfig('agents');
      await api.close();
      await expect(new KubernetesRuntime({ kubeConfig: kc, ownerLabels: owner, specFor: () => coderSpec() }).preflight()).rejects.toThrow(
        `XL_RUNTIME=kubernetes: the Kubernetes API server at ${url} (context stand-in) does not answer (ECONNREFUSED)`,
      );
      api = await new StandInKubeApi().start(); // for afterEach
    });

    it('name a namespace that does not exist and how to make it', async () => {
      await expect(runtimeOn('missing').preflight(coderSpec())).rejects.toThrow('the namespace missing does not exist on http://127.0.0.1:');
      await expect(runtimeOn('missing').preflight(coderSpec())).rejects.toThrow('kubectl create namespace missing (or set XL_K8S_NAMESPACE)');
    });

    it('name a namespace that does not exist even when namespaces cannot be read (the dry run finds it)', async () => {
      api.namespaceReadForbidden = true;
      await expect(runtimeOn('missing').preflight(coderSpec())).rejects.toThrow('the namespace missing does not exist');
    });

    it('name every verb and resource RBAC forbids', async () => {
      api.denied.add('watch pods');
      api.denied.add('delete jobs');
      await expect(runtimeOn().preflight(coderSpec())).rejects.toThrow(
        'XL_RUNTIME=kubernetes: RBAC forbids the kubeconfig\'s user in namespace agents: delete jobs.batch, watch pods. Bind it a Role with create, get, list, delete, watch on jobs (batch) and pods',
      );
    });

    it('name an API server that will not say what the user may do', async () => {
      api.reviewsForbidden = true;
      await expect(runtimeOn().preflight(coderSpec())).rejects.toThrow(
        'does not say what the kubeconfig\'s user may do (SelfSubjectAccessReview): selfsubjectaccessreviews.authorization.k8s.io is forbidden',
      );
    });

    it('name a missing service account and how to make it', async () => {
      api.serviceAccounts.clear();
      await expect(runtimeOn().preflight(coderSpec())).rejects.toThrow('serviceaccount "xl-agent" not found: kubectl create serviceaccount xl-agent -n agents (or set XL_K8S_SERVICE_ACCOUNT)');
    });

    it('pass on what the cluster\'s admission says when it refuses the pod', async () => {
      api.refusePods = 'violates PodSecurity "restricted:latest": runAsNonRoot != true';
      await expect(runtimeOn().preflight(coderSpec())).rejects.toThrow(
        'XL_RUNTIME=kubernetes: namespace agents does not admit an agent\'s pod: pods "xl-probe-',
      );
      await expect(runtimeOn().preflight(coderSpec())).rejects.toThrow('violates PodSecurity "restricted:latest"');
    });
  });
});
