// Bad input for agents in containers (XL_RUNTIME): each stops the layer at start with the fix named.
import { afterEach, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../local/docker-runtime.ts';
import { parseRuntimeKind } from '../../local/layer.ts';

describe('XL_RUNTIME', () => {
  it('is the process runtime when unset', () => {
    expect(parseRuntimeKind(undefined)).toBe('process');
    expect(parseRuntimeKind('')).toBe('process');
  });
  it('takes docker', () => {
    expect(parseRuntimeKind('docker')).toBe('docker');
  });
  it('refuses anything else, naming what it takes', () => {
    expect(() => parseRuntimeKind('podman')).toThrow('XL_RUNTIME must be one of process, docker, containerd, got "podman"');
  });
});

describe('a docker runtime whose engine does not answer', () => {
  const saved = process.env.DOCKER_HOST;
  afterEach(() => {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  });

  it('fails its start check naming the socket it tried and how to get an engine', async () => {
    process.env.DOCKER_HOST = 'unix:///nonexistent/xl-test/docker.sock';
    const runtime = new DockerRuntime({ layerId: 'test', specFor: () => { throw new Error('not reached'); } });
    await expect(runtime.preflight('xl-agent:latest')).rejects.toThrow(
      /^XL_RUNTIME=docker: no Docker engine answers at unix:\/\/\/nonexistent\/xl-test\/docker\.sock .*point DOCKER_HOST at its socket .*scripts\/docker-engine\.ts/,
    );
  });
});
