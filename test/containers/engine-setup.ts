// Before the container tests: a Docker engine (the one at DOCKER_HOST or the default socket, else a
// private one started here, scripts/docker-engine.ts) and the agent image (built when missing,
// scripts/image.ts). The tests read DOCKER_HOST and XL_AGENT_IMAGE from the environment set here.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Engine, ensureEngine } from '../../scripts/docker-engine.ts';
import { IMAGE_REPOSITORY, buildImage, importToContainerd } from '../../scripts/image.ts';
import { DEFAULT_CONTAINERD_ADDRESS } from '../../local/containerd-runtime.ts';

let engine: Engine | undefined;

export async function setup(): Promise<void> {
  // Kept between runs (images and build cache): XL_DOCKER_DIR, or a folder under the temp dir.
  const dir = process.env.XL_DOCKER_DIR ?? join(tmpdir(), 'xl-docker');
  engine = await ensureEngine(dir);
  process.env.DOCKER_HOST = engine.dockerHost;
  process.stderr.write(`containers: Docker engine at ${engine.dockerHost}${engine.private ? ' (private, started for these tests)' : ''}\n`);
  const built = buildImage();
  process.env.XL_AGENT_IMAGE = `${IMAGE_REPOSITORY}:latest`;
  process.env.XL_TEST_IMAGE_TAG = built.tag;
  process.stderr.write(
    `containers: ${built.tag}, ${(built.sizeBytes / 1e6).toFixed(0)} MB${built.base ? `, built in ${built.seconds.toFixed(0)} s on ${built.base}` : ', already built'}\n`,
  );
  // containerd: the one at XL_CONTAINERD_ADDRESS, else the private engine's (under dir), else the
  // default socket; the image imported into it (npm run image -- --containerd). None: the containerd
  // tests say they skipped.
  const address = [process.env.XL_CONTAINERD_ADDRESS, join(dir, 'containerd.sock'), DEFAULT_CONTAINERD_ADDRESS].find((a) => a && existsSync(a));
  if (address) {
    const imported = importToContainerd(built.tag, address);
    process.env.XL_CONTAINERD_ADDRESS = address;
    process.stderr.write(`containers: containerd at ${address}, ${built.tag} ${imported.imported ? `imported in ${imported.seconds.toFixed(0)} s` : 'already there'}\n`);
  } else {
    process.env.XL_TEST_NO_CONTAINERD = 'no containerd socket found (XL_CONTAINERD_ADDRESS, the private engine\'s, the default)';
  }
}

export async function teardown(): Promise<void> {
  await engine?.stop();
}
