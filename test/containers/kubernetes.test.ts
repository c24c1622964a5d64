// The kubernetes runtime on a real cluster: only when XL_TEST_KUBECONFIG names a kubeconfig whose
// cluster answers. No API server can run on these machines, so here it prints one line and skips:
// it has never run against a cluster. The image (XL_TEST_K8S_IMAGE, default xl-agent:latest) must be
// on the cluster's nodes or pullable by them (kind load docker-image / minikube image load), and the
// namespace (XL_TEST_K8S_NAMESPACE, default xl-test), its `xl-agent` service account and the Role of
// the README must exist.
import { BatchV1Api, CoreV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ContainerSpec, containerSpec } from '../../core/container-spec.ts';
import { KubernetesRuntime, agentJob } from '../../core/kubernetes-runtime.ts';
import { coderTaskDefinition } from '../fixtures/task-definitions.ts';
import { waitFor } from '../support/processes.ts';

const file = process.env.XL_TEST_KUBECONFIG;
const namespace = process.env.XL_TEST_K8S_NAMESPACE || 'xl-test';
const image = process.env.XL_TEST_K8S_IMAGE || 'xl-agent:latest';

async function clusterOf(path: string | undefined): Promise<KubeConfig | string> {
  if (!path) return 'XL_TEST_KUBECONFIG is not set';
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(path);
    await kc.makeApiClient(VersionApi).getCode();
    return kc;
  } catch (err) {
    return `the cluster of ${path} does not answer: ${(err as Error).message.split('\n')[0]}`;
  }
}

const cluster = await clusterOf(file);
if (typeof cluster === 'string') process.stdout.write(`kubernetes: skipped, ${cluster} (no Kubernetes API server runs here)\n`);

describe.skipIf(typeof cluster === 'string')('the kubernetes runtime on a real cluster', () => {
  const kc = cluster as KubeConfig;
  const owner = { 'xl.layer': `test-${crypto.randomUUID().slice(0, 8)}` };
  const exits: { agentId: string; code: number | null }[] = [];
  let command: string[] = ['sleep', '3600'];
  const spec = (agentId = 'coder-probe'): ContainerSpec => ({
    ...containerSpec(coderTaskDefinition, { image, stack: 'xl-test', agentId }),
    command,
    // Small enough for a test cluster's node.
    cpus: 0.25,
    memoryMiB: 256,
    stopTimeoutSeconds: 5,
  });
  // Built in beforeAll: a skipped suite's body still runs, with no cluster.
  let runtime: KubernetesRuntime;
  let core: CoreV1Api;
  let batch: BatchV1Api;

  beforeAll(async () => {
    runtime = new KubernetesRuntime({ kubeConfig: kc, namespace, ownerLabels: owner, specFor: (_t, agentId) => spec(agentId), onExit: (agentId, code) => exits.push({ agentId, code }) });
    core = kc.makeApiClient(CoreV1Api);
    batch = kc.makeApiClient(BatchV1Api);
    await runtime.preflight(spec());
  });
  afterAll(async () => {
    await runtime.stopAll(5000);
    expect(await runtime.removeLeftovers()).toEqual([]);
  });

  it('runs an agent\'s pod under the hardening: not root unless the spec is, read-only root, writable /tmp, no token', async () => {
    const name = `xl-hardening-${crypto.randomUUID().slice(0, 8)}`;
    const checks = [
      'id -u',
      'grep CapEff /proc/self/status',
      '(touch /probe 2>/dev/null && echo root-writable) || echo root-read-only',
      '(touch /tmp/probe && echo tmp-writable) || echo tmp-read-only',
      '(test -e /var/run/secrets/kubernetes.io/serviceaccount/token && echo token) || echo no-token',
    ].join('; ');
    const job = agentJob({ ...spec(), command: ['sh', '-c', checks] }, { name, namespace, serviceAccount: 'xl-agent', secretName: 'xl-agent-secrets', extraLabels: owner });
    await batch.createNamespacedJob({ namespace, body: job });
    let pod = '';
    await waitFor(async () => {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${name}` });
      pod = pods.items[0]?.metadata?.name ?? '';
      return pods.items[0]?.status?.phase === 'Succeeded';
    }, 180_000, 1000);
    const log = await core.readNamespacedPodLog({ name: pod, namespace });
    expect(log.split('\n')[0]).toBe('0'); // the worker's user in the task definition; agents' processes run as node
    expect(log).toContain('root-read-only');
    expect(log).toContain('tmp-writable');
    expect(log).toContain('no-token');
    await batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' });
  });

  it('starts an agent that is alive while it runs and dead once stopped at once', async () => {
    command = ['sleep', '3600'];
    const [agent] = await runtime.start('coder', 1);
    await waitFor(async () => (await core.listNamespacedPod({ namespace, labelSelector: `job-name=${(agent!.runtime as { name: string }).name}` })).items[0]?.status?.phase === 'Running', 180_000, 1000);
    expect(await runtime.isAlive(agent!.runtime)).toBe(true);
    await runtime.stop(agent!, false);
    await waitFor(async () => !(await runtime.isAlive(agent!.runtime)), 60_000, 500);
  });

  it('reports an agent whose process exits as dead, with its exit code', async () => {
    command = ['sh', '-c', 'exit 3'];
    const [agent] = await runtime.start('coder', 1);
    await waitFor(() => exits.some((e) => e.agentId === agent!.agentId), 180_000, 500);
    expect(exits.find((e) => e.agentId === agent!.agentId)!.code).toBe(3);
  });

  it('removes what an earlier run of the same owner left', async () => {
    command = ['sleep', '3600'];
    const earlier = new KubernetesRuntime({ kubeConfig: kc, namespace, ownerLabels: owner, specFor: (_t, agentId) => spec(agentId) });
    const left = await earlier.start('coder', 2);
    expect((await runtime.removeLeftovers()).sort()).toEqual(left.map((a) => a.agentId).sort());
    for (const a of left) await waitFor(async () => !(await runtime.isAlive(a.runtime)), 60_000, 500);
  });
});
