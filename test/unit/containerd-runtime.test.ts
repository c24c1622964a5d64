// The containerd runtime's translation of a ContainerSpec into `ctr run` arguments, and its start
// check when containerd does not answer. (Against a real containerd: test/containers/.)
import { describe, expect, it } from 'vitest';
import { ContainerdRuntime, ctrRunArgs, envFileText, normalizeImageRef } from '../../local/containerd-runtime.ts';
import type { ContainerSpec } from '../../core/container-spec.ts';
import { parseAgentMemory } from '../../local/layer.ts';

const spec: ContainerSpec = {
  image: 'xl-agent:latest',
  user: '0',
  readOnlyRootFilesystem: true,
  volumes: [
    { name: 'workspace', containerPath: '/workspace', readOnly: false },
    { name: 'tmp', containerPath: '/tmp', readOnly: false },
  ],
  capDrop: ['MKNOD'],
  capabilities: ['CHOWN', 'KILL', 'SYS_PTRACE'],
  noNewPrivileges: true,
  init: true,
  cpus: 2,
  memoryMiB: 4096,
  environment: { A: '1' },
  secretEnvironment: [],
  stopTimeoutSeconds: 120,
  labels: { 'xl.stack': 'xl', 'xl.agent-type': 'coder', 'xl.agent-id': 'coder-1' },
};
const ctx = {
  defaultCapabilities: ['CAP_CHOWN', 'CAP_KILL', 'CAP_MKNOD', 'CAP_NET_RAW'],
  imageCommand: ['node', 'dist/agent/main.mjs'],
  initBinary: '/usr/bin/tini-static',
  volumeDirs: { '/workspace': '/s/c/volumes/workspace', '/tmp': '/s/c/volumes/tmp' },
  logPath: '/s/c/container.log',
  envFile: '/s/c/env',
  extraLabels: { 'xl.layer': 'abc' },
  hostCpus: 1,
};

describe('ctr run arguments for a spec', () => {
  const args = ctrRunArgs(spec, 'xl-coder-1', ctx);
  const values = (flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]] : []));

  it('run detached, on the host network, read-only, the environment from a file and output to a log file', () => {
    expect(args.slice(0, 6)).toEqual(['run', '--detach', '--log-uri', 'file:///s/c/container.log', '--env-file', '/s/c/env']);
    expect(args).toContain('--net-host');
    expect(args).toContain('--read-only');
    expect(args).not.toContain('--allow-new-privs');
  });
  it('grant exactly the spec\'s capabilities over containerd\'s defaults', () => {
    expect(values('--cap-drop')).toEqual(['CAP_MKNOD', 'CAP_NET_RAW']);
    expect(values('--cap-add')).toEqual(['CAP_SYS_PTRACE']);
  });
  it('limit memory in bytes and CPUs to what the host has', () => {
    expect(values('--memory-limit')).toEqual([String(4096 * 1024 * 1024)]);
    expect(values('--cpus')).toEqual(['1']);
  });
  it('mount the volumes\' host folders, the cgroup files read-only and the init', () => {
    expect(values('--mount')).toEqual([
      'type=bind,src=/s/c/volumes/workspace,dst=/workspace,options=rbind:rw:nosuid:nodev',
      'type=bind,src=/s/c/volumes/tmp,dst=/tmp,options=rbind:rw:nosuid:nodev',
      'type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev',
      'type=bind,src=/usr/bin/tini-static,dst=/sbin/xl-init,options=rbind:ro',
    ]);
  });
  it('label the container and run the image\'s command under the init', () => {
    expect(values('--label')).toEqual(['xl.stack=xl', 'xl.agent-type=coder', 'xl.agent-id=coder-1', 'xl.layer=abc']);
    expect(args.slice(-6)).toEqual(['docker.io/library/xl-agent:latest', 'xl-coder-1', '/sbin/xl-init', '--', 'node', 'dist/agent/main.mjs']);
  });
  it('pass the user only where ctr has --user', () => {
    expect(args).not.toContain('--user');
    const withUser = ctrRunArgs(spec, 'x', { ...ctx, userFlag: true });
    expect(withUser[withUser.indexOf('--user') + 1]).toBe('0');
  });
  it('refuse an init the host cannot give', () => {
    expect(() => ctrRunArgs(spec, 'x', { ...ctx, initBinary: undefined })).toThrow('no static init binary');
  });
});

describe('image names', () => {
  it('expand as Docker\'s do', () => {
    expect(normalizeImageRef('xl-agent:latest')).toBe('docker.io/library/xl-agent:latest');
    expect(normalizeImageRef('xl-agent')).toBe('docker.io/library/xl-agent:latest');
    expect(normalizeImageRef('team/xl-agent:1')).toBe('docker.io/team/xl-agent:1');
    expect(normalizeImageRef('registry.local:5000/xl-agent')).toBe('registry.local:5000/xl-agent:latest');
  });
});

describe('the environment file', () => {
  it('holds KEY=value lines and refuses a value with a line break', () => {
    expect(envFileText({ A: '1', B: 'x=y' })).toBe('A=1\nB=x=y\n');
    expect(() => envFileText({ K: 'a\nb' })).toThrow('environment variable K: a value with a line break');
  });
});

describe('a containerd runtime whose containerd does not answer', () => {
  it('fails its start check naming the socket it tried and how to point at one', async () => {
    const runtime = new ContainerdRuntime({ address: '/nonexistent/xl-test/containerd.sock', layerId: 't', volumesDir: '/nonexistent', specFor: () => { throw new Error('not reached'); } });
    await expect(runtime.preflight('xl-agent:latest')).rejects.toThrow(
      /^XL_RUNTIME=containerd: no containerd answers at \/nonexistent\/xl-test\/containerd\.sock .*point XL_CONTAINERD_ADDRESS at its socket/,
    );
  });
});

describe('XL_AGENT_MEMORY_MIB', () => {
  it('is the task definition\'s memory when unset, a whole number of MiB (64 or more) when set', () => {
    expect(parseAgentMemory(undefined)).toBeUndefined();
    expect(parseAgentMemory('')).toBeUndefined();
    expect(parseAgentMemory('256')).toBe(256);
    expect(() => parseAgentMemory('32')).toThrow('XL_AGENT_MEMORY_MIB must be a whole number of MiB, at least 64, got "32"');
    expect(() => parseAgentMemory('1.5g')).toThrow('XL_AGENT_MEMORY_MIB');
  });
});
