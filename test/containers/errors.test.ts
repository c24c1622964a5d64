// Bad input with XL_RUNTIME=docker or containerd, against a real engine: the layer does not come up, and its
// error names the fix. (Also in test/unit/docker-runtime.test.ts and containerd-runtime.test.ts.)
import { describe, expect, it } from 'vitest';
import { removeStateDir, startLayer } from '../e2e/harness.ts';
import { noContainerd } from './ctr.ts';

async function startFails(env: Record<string, string>): Promise<string> {
  try {
    const layer = await startLayer({ env, startTimeoutMs: 240_000 });
    await layer.stop();
    await removeStateDir(layer.stateDir);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the layer started');
}

describe('the layer refuses to start', () => {
  it('with an unknown XL_RUNTIME', async () => {
    expect(await startFails({ XL_RUNTIME: 'podman' })).toMatch(/XL_RUNTIME must be one of process, docker, .*got "podman"/);
  });

  it('when the engine does not answer, naming the socket', async () => {
    const message = await startFails({ XL_RUNTIME: 'docker', DOCKER_HOST: 'unix:///nonexistent/xl/docker.sock' });
    expect(message).toContain('no Docker engine answers at unix:///nonexistent/xl/docker.sock');
    expect(message).toContain('DOCKER_HOST');
  });

  it('when the image is not on the engine, naming `npm run image`', async () => {
    const message = await startFails({ XL_RUNTIME: 'docker', XL_AGENT_IMAGE: 'xl-agent:not-built' });
    expect(message).toContain('the image xl-agent:not-built is not on the engine');
    expect(message).toContain('npm run image');
  });

  it('when containerd does not answer, naming the socket and XL_CONTAINERD_ADDRESS', async () => {
    const message = await startFails({ XL_RUNTIME: 'containerd', XL_CONTAINERD_ADDRESS: '/nonexistent/xl/containerd.sock' });
    expect(message).toContain('XL_RUNTIME=containerd: no containerd answers at /nonexistent/xl/containerd.sock');
    expect(message).toContain('XL_CONTAINERD_ADDRESS');
  });

  it.skipIf(noContainerd())('when the image is not in containerd, naming `npm run image -- --containerd`', async () => {
    const message = await startFails({ XL_RUNTIME: 'containerd', XL_AGENT_IMAGE: 'xl-agent:not-built' });
    expect(message).toContain('the image docker.io/library/xl-agent:not-built is not in containerd\'s namespace xl');
    expect(message).toContain('npm run image -- --containerd');
  });
});
