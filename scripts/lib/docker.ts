// The agent image is a CDK Docker asset for linux/arm64 (infra/constructs/agents.ts: DockerImageAsset
// with Platform.LINUX_ARM64); cdk builds it with `docker build --platform linux/arm64` (CDK_DOCKER
// names another docker binary). On an x86_64 host that needs BuildKit's buildx and QEMU's binfmt
// handlers for arm64 (Docker's multi-platform build guide); Docker Desktop has both, a Linux host
// registers QEMU with the tonistiigi/binfmt image.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeployError, type Run } from './run.ts';

/** The platforms of the Docker image assets of a synthesized stack (`<stack>.assets.json`). */
export async function imagePlatforms(assemblyDir: string, stackName: string): Promise<string[]> {
  const manifest = JSON.parse(await readFile(join(assemblyDir, `${stackName}.assets.json`), 'utf8')) as {
    dockerImages?: Record<string, { source?: { platform?: string } }>;
  };
  const platforms = Object.values(manifest.dockerImages ?? {}).map((image) => image.source?.platform ?? 'native');
  return [...new Set(platforms)];
}

/** The Docker platform of this machine (Node's `process.arch`). */
export function nativePlatform(arch: string = process.arch): string {
  return arch === 'arm64' ? 'linux/arm64' : arch === 'x64' ? 'linux/amd64' : `linux/${arch}`;
}

const BINFMT_FIX = (arch: string) =>
  `register QEMU for ${arch} once per machine: docker run --privileged --rm tonistiigi/binfmt --install ${arch} (Docker Desktop has it built in); then check with docker buildx inspect --bootstrap`;

/**
 * Checks that docker can build images for every platform given, and says what to install when not.
 * Returns the lines worth showing (the builder and what it can build).
 */
export async function checkImageBuilder(run: Run, platforms: readonly string[], opts: { arch?: string; docker?: string } = {}): Promise<string[]> {
  if (platforms.length === 0) return [];
  const docker = opts.docker ?? 'docker';
  const version = await run(docker, ['version', '--format', '{{.Server.Version}}'], { capture: true });
  if (version.code === 127) {
    throw new DeployError(`${docker} is not installed: cdk builds the agent image (infra/constructs/agents.ts) with it`, 'install Docker Engine (with the buildx plugin) or Docker Desktop; CDK_DOCKER may name another docker-compatible binary');
  }
  if (version.code !== 0) {
    throw new DeployError(`the Docker daemon does not answer (${firstLine(version.stderr)})`, 'start Docker (sudo systemctl start docker, or open Docker Desktop), and make sure your user may use it (docker info)');
  }
  const buildx = await run(docker, ['buildx', 'version'], { capture: true });
  if (buildx.code !== 0) {
    throw new DeployError(
      `docker buildx is missing (${firstLine(buildx.stderr) || 'no buildx plugin'}): building the linux/arm64 agent image needs BuildKit's buildx`,
      'install the buildx plugin (Debian/Ubuntu with Docker\'s repository: sudo apt-get install docker-buildx-plugin; Docker Desktop has it)',
    );
  }
  const native = nativePlatform(opts.arch);
  const foreign = platforms.filter((p) => p !== 'native' && p !== native);
  const lines = [`docker ${version.stdout.trim()}, ${firstLine(buildx.stdout)}`];
  if (foreign.length === 0) return lines;
  const inspect = await run(docker, ['buildx', 'inspect', '--bootstrap'], { capture: true });
  const supported = builderPlatforms(inspect.stdout);
  for (const platform of foreign) {
    if (!supported.includes(platform)) {
      const arch = platform.split('/')[1] ?? platform;
      throw new DeployError(`the docker builder cannot build ${platform} images on this ${native} machine (it builds: ${supported.join(', ') || 'nothing it reports'})`, BINFMT_FIX(arch));
    }
  }
  lines.push(`builds ${foreign.join(', ')} by emulation on this ${native} machine`);
  return lines;
}

/** The platforms `docker buildx inspect` lists (`Platforms: linux/amd64, linux/arm64, ...`). */
export function builderPlatforms(inspectOutput: string): string[] {
  const line = inspectOutput.split('\n').find((l) => /^\s*Platforms:/.test(l));
  if (!line) return [];
  return line
    .slice(line.indexOf(':') + 1)
    .split(',')
    .map((p) => p.trim().replace(/\*$/, ''))
    .filter(Boolean);
}

const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';
