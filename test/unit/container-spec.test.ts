// Parity: an agent's container (core/container-spec.ts) has the settings of its type's task
// definition in the synthesized template, and the docker runtime's create request
// (local/docker-runtime.ts) has the spec's, for every agent type. As the ASL parity test holds the
// local Step Functions definitions to the template's, this holds the local containers to Fargate's.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { testApp } from '../support/cdk-app.ts';
import { AGENT_TYPES } from '../../core/agent-types.ts';
import { type ContainerSpec, DEFAULT_CAPABILITIES, LABELS, type TaskDefinitionResource, agentTypeOf, containerSpec } from '../../core/container-spec.ts';
import { ExecutionLayerStack } from '../../infra/stack.ts';
import { LAYER_LABEL, dockerCreateOptions } from '../../local/docker-runtime.ts';
import { type CfnTemplate, localNames, resolveValue, resourcesOfType } from '../../local/template.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const { context } = JSON.parse(readFileSync(`${ROOT}cdk.json`, 'utf8'));

function synth(props = {}): CfnTemplate {
  const app = testApp({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(new ExecutionLayerStack(app, 'xl', props)).toJSON() as CfnTemplate;
}

type Loose = any;
let template: CfnTemplate;
let withKey: CfnTemplate;
const taskDefinitions = (t: CfnTemplate) => resourcesOfType(t, 'AWS::ECS::TaskDefinition').filter(([, td]) => agentTypeOf(td)) as [string, TaskDefinitionResource & { Properties: Loose }][];
beforeAll(() => {
  template = synth();
  withKey = synth({ anthropicApiKeySecretName: 'xl/anthropic-api-key' });
}, 180_000);

describe('an agent container from its task definition', () => {
  it('exists for every agent type, one task definition each', () => {
    expect(taskDefinitions(template).map(([, td]) => agentTypeOf(td)).sort()).toEqual([...AGENT_TYPES].sort());
  });

  it.each(AGENT_TYPES)('%s: user, read-only root, volumes, capabilities, init, cpu, memory, stop grace and labels are the template\'s', (type) => {
    const [, td] = taskDefinitions(template).find(([, t]) => agentTypeOf(t) === type)!;
    const c = td.Properties.ContainerDefinitions[0];
    const spec = containerSpec(td, { image: 'xl-agent:test', stack: 'xl', agentId: `${type}-1234abcd` });
    expect(spec.image).toBe('xl-agent:test');
    expect(spec.command).toBeUndefined(); // the image's CMD: the worker
    expect(spec.user).toBe(c.User);
    expect(spec.user).toBe('0');
    expect(spec.readOnlyRootFilesystem).toBe(true);
    expect(c.ReadonlyRootFilesystem).toBe(true);
    expect(spec.volumes).toEqual(
      c.MountPoints.map((m: Loose) => ({ name: m.SourceVolume, containerPath: m.ContainerPath, readOnly: m.ReadOnly })),
    );
    expect(spec.volumes.map((v) => v.containerPath).sort()).toEqual(['/tmp', '/workspace']);
    expect(spec.capDrop).toEqual(c.LinuxParameters.Capabilities.Drop);
    expect(spec.capabilities).toEqual(DEFAULT_CAPABILITIES.filter((cap) => !c.LinuxParameters.Capabilities.Drop.includes(cap)));
    expect(spec.capabilities).toEqual(['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'KILL', 'SETGID', 'SETUID']);
    expect(spec.init).toBe(c.LinuxParameters.InitProcessEnabled);
    expect(spec.noNewPrivileges).toBe(true);
    expect(spec.cpus).toBe(Number(td.Properties.Cpu) / 1024);
    expect(spec.memoryMiB).toBe(Number(td.Properties.Memory));
    expect(spec.stopTimeoutSeconds).toBe(c.StopTimeout);
    expect(spec.labels).toEqual({ [LABELS.stack]: 'xl', [LABELS.agentType]: type, [LABELS.agentId]: `${type}-1234abcd` });
    expect(spec.secretEnvironment).toEqual([]);
  });

  it.each(AGENT_TYPES)('%s: the environment is the template\'s, resolved, with the caller\'s additions over it', (type) => {
    const [, td] = taskDefinitions(template).find(([, t]) => agentTypeOf(t) === type)!;
    const names = localNames(template, 'xl', 'http://127.0.0.1:4566');
    const spec = containerSpec(td, {
      image: 'xl-agent:test',
      stack: 'xl',
      agentId: 'a',
      resolve: (v) => resolveValue(v, names),
      environment: { XL_GRACE_SECONDS: '10', XL_AGENT_ID: 'a' },
    });
    const declared = td.Properties.ContainerDefinitions[0].Environment as { Name: string; Value: unknown }[];
    for (const e of declared) {
      if (e.Name === 'XL_GRACE_SECONDS') continue;
      expect(spec.environment[e.Name], e.Name).toBe(String(resolveValue(e.Value, names)));
    }
    expect(spec.environment.XL_AGENT_TYPE).toBe(type);
    expect(spec.environment.XL_GRACE_SECONDS).toBe('10');
    expect(spec.environment.XL_AGENT_ID).toBe('a');
    expect(Object.keys(spec.environment).sort()).toEqual([...new Set([...declared.map((e) => e.Name), 'XL_AGENT_ID'])].sort());
  });

  it('names the variables the task definition fills from a secret, never their values', () => {
    for (const [, td] of taskDefinitions(withKey)) {
      const spec = containerSpec(td, { image: 'i', stack: 'xl', agentId: 'a' });
      expect(spec.secretEnvironment).toEqual(['ANTHROPIC_API_KEY']);
      expect(JSON.stringify(spec)).not.toContain('xl/anthropic-api-key');
    }
  });
});

describe('the docker create request of a spec', () => {
  const spec = (): ContainerSpec => {
    const [, td] = taskDefinitions(template).find(([, t]) => agentTypeOf(t) === 'coder')!;
    return containerSpec(td, { image: 'xl-agent:test', stack: 'xl', agentId: 'coder-1', environment: { A: 'b' } });
  };

  it('carries every setting of the spec in the Engine API\'s terms', () => {
    const s = spec();
    const o = dockerCreateOptions(s, 'xl-coder-1', { extraLabels: { [LAYER_LABEL]: 'layer-1' } });
    expect(o.name).toBe('xl-coder-1');
    expect(o.Image).toBe('xl-agent:test');
    expect(o.Cmd).toBeUndefined();
    expect(o.User).toBe('0');
    expect(o.Env).toContain('A=b');
    expect(o.Env).toContain('XL_AGENT_TYPE=coder');
    expect(o.Env).toHaveLength(Object.keys(s.environment).length);
    expect(o.StopTimeout).toBe(120);
    expect(o.Labels).toEqual({ ...s.labels, [LAYER_LABEL]: 'layer-1' });
    const h = o.HostConfig!;
    expect(h.NetworkMode).toBe('host');
    expect(h.ReadonlyRootfs).toBe(true);
    expect(h.Mounts).toEqual([
      { Type: 'volume', Source: '', Target: '/workspace', ReadOnly: false },
      { Type: 'volume', Source: '', Target: '/tmp', ReadOnly: false },
    ]);
    expect(h.CapDrop).toEqual(['ALL']);
    expect(h.CapAdd).toEqual(s.capabilities);
    expect(h.SecurityOpt).toEqual(['no-new-privileges']);
    expect(h.Init).toBe(true);
    expect(h.NanoCpus).toBe(2e9);
    expect(h.Memory).toBe(4096 * 1024 * 1024);
    expect(h.MemorySwap).toBe(h.Memory);
  });

  it('gives no more CPUs than the host has', () => {
    expect(dockerCreateOptions(spec(), 'n', { hostCpus: 1 }).HostConfig!.NanoCpus).toBe(1e9);
  });
});

describe('task definitions the spec refuses', () => {
  const td = (props: Loose): TaskDefinitionResource => ({ Type: 'AWS::ECS::TaskDefinition', Metadata: { 'xl:agentType': 'coder' }, Properties: { Cpu: '1024', Memory: '2048', ...props } });

  it('one without the agent type metadata', () => {
    expect(() => containerSpec({ Type: 'AWS::ECS::TaskDefinition', Properties: {} }, { image: 'i', stack: 's', agentId: 'a' })).toThrow(/no xl:agentType/);
  });
  it('one with two containers', () => {
    expect(() => containerSpec(td({ ContainerDefinitions: [{}, {}] }), { image: 'i', stack: 's', agentId: 'a' })).toThrow(/has 2 containers, expected 1/);
  });
  it('one that mounts a volume it does not declare', () => {
    const bad = td({ Volumes: [], ContainerDefinitions: [{ MountPoints: [{ SourceVolume: 'x', ContainerPath: '/x' }] }] });
    expect(() => containerSpec(bad, { image: 'i', stack: 's', agentId: 'a' })).toThrow(/undeclared volume x/);
  });
  it('one without a memory size', () => {
    expect(() => containerSpec(td({ Memory: undefined, ContainerDefinitions: [{}] }), { image: 'i', stack: 's', agentId: 'a' })).toThrow(/Memory must be a positive number/);
  });
});
