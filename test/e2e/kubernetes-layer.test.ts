// The local layer with XL_RUNTIME=kubernetes, a real layer process, against a stand-in API server
// (test/support/kube-api.ts) named by a kubeconfig file: the wiring of local/layer.ts. The stand-in
// runs no pod, so agents never claim a task here: what is held is what the layer asks of the cluster.
// The start checks' refusals: test/unit/kubernetes-runtime.test.ts (a layer start costs half a minute).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Job } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS } from '../../core/container-spec.ts';
import { StandInKubeApi } from '../support/kube-api.ts';
import { type Layer, removeStateDir, startLayer, waitFor } from './harness.ts';

describe('the local layer with XL_RUNTIME=kubernetes', () => {
  let api: StandInKubeApi;
  let env: Record<string, string>;
  const stateDir = mkdtempSync(join(tmpdir(), 'xl-e2e-k8s-'));
  let layer: Layer | undefined;

  beforeAll(async () => {
    api = await new StandInKubeApi().start();
    api.namespaces.add('xl-agents');
    api.serviceAccounts.add('xl-agents/xl-agent');
    const kubeconfig = join(stateDir, '..', `${stateDir.split('/').pop()}-kubeconfig.yaml`);
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: stand-in, cluster: {server: "${api.url}", insecure-skip-tls-verify: true}}]\nusers: [{name: tester, user: {token: t}}]\n` +
        `contexts: [{name: stand-in, context: {cluster: stand-in, user: tester, namespace: xl-agents}}]\ncurrent-context: stand-in\n`,
    );
    env = { XL_RUNTIME: 'kubernetes', KUBECONFIG: kubeconfig, XL_K8S_SERVICE_HOST: 'host.test', ANTHROPIC_API_KEY: 'sk-ant-e2e-never-in-a-job', XL_POOL: 'coder=1..1', XL_QUIET: '0' };
  });
  afterAll(async () => {
    await layer?.kill();
    await api.close();
    await removeStateDir(stateDir);
  });

  const agentJobs = () => [...api.jobs.values()].filter((j) => !j.metadata!.name!.startsWith('xl-probe-'));

  it('starts the pool\'s agents as Jobs with the service host, the Secret by reference and its own label', async () => {
    layer = await startLayer({ env, stateDir, startTimeoutMs: 240_000 });
    await waitFor('a coder Job', async () => agentJobs().find((j) => j.metadata!.labels![LABELS.agentType] === 'coder'));
    const job: V1Job = agentJobs().find((j) => j.metadata!.labels![LABELS.agentType] === 'coder')!;
    const container = job.spec!.template.spec!.containers[0]!;
    const value = (name: string) => container.env!.find((e) => e.name === name);
    expect(value('AWS_ENDPOINT_URL_SQS')!.value).toMatch(/^http:\/\/host\.test:\d+$/);
    expect(value('XL_CONTAINER_RUNTIME')!.value).toBe('kubernetes');
    expect(value('ANTHROPIC_API_KEY')).toEqual({ name: 'ANTHROPIC_API_KEY', valueFrom: { secretKeyRef: { name: 'xl-agent-secrets', key: 'ANTHROPIC_API_KEY', optional: true } } });
    expect(JSON.stringify(job)).not.toContain('sk-ant-e2e-never-in-a-job');
    expect(job.metadata!.labels!['xl.layer']).toMatch(/^[0-9a-f]{16}$/);
  });

  it('removes, at its next start, the Jobs of a layer that was SIGKILLed', async () => {
    const before = agentJobs().map((j) => j.metadata!.name!);
    expect(before.length).toBeGreaterThan(0);
    await layer!.kill();
    expect(agentJobs().map((j) => j.metadata!.name!)).toEqual(before); // nothing deleted them
    layer = await startLayer({ env, stateDir, startTimeoutMs: 240_000 });
    for (const name of before) expect(api.jobs.has(name)).toBe(false);
    expect(layer.output()).toContain(`removed ${before.length} job(s) of the earlier run in namespace xl-agents`);
  });

  it('deletes every Job and pod when it stops', async () => {
    await waitFor('the new run\'s agents', async () => agentJobs().length > 0 || undefined);
    const { code } = await layer!.stop();
    expect(code).toBe(0);
    expect(api.jobs.size + api.pods.size).toBe(0);
  });
});
