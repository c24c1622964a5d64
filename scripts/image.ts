// `npm run image`: builds agent/Dockerfile, the image `cdk deploy` builds for Fargate, into
// `xl-agent:<version>-<context hash>` and `xl-agent:latest` on the engine at DOCKER_HOST (or the
// default socket), with nothing pulled when no registry is reachable. Its base (NODE_IMAGE, by
// default the official node:22-bookworm-slim) is used when present or pullable; otherwise an
// equivalent is built here first: Debian bookworm minbase from this machine's own apt sources
// (mmdebstrap), the Node binary of the `node` npm package, npm, and the `node` user (uid 1000) the
// Dockerfile expects. That base also trusts this machine's CA bundle and uses its npm registry
// (`npm config get registry`, read now), so that the build's `npm ci` reaches what the host reaches.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..');
export const IMAGE_REPOSITORY = 'xl-agent';
export const OFFICIAL_NODE_IMAGE = 'node:22-bookworm-slim';
const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
/** Where the built base keeps the host's CA bundle (NODE_EXTRA_CA_CERTS points at it). */
const BASE_CA_PATH = '/usr/local/share/xl/host-ca-certificates.crt';

const log = (m: string) => process.stderr.write(`image: ${m}\n`);

function docker(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; inherit?: boolean } = {}): { ok: boolean; out: string } {
  const r = spawnSync('docker', args, {
    input: opts.input,
    env: { ...process.env, ...opts.env },
    stdio: opts.inherit ? ['ignore', 'inherit', 'inherit'] : ['pipe', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new Error(`docker CLI: ${r.error.message} (apt-get install docker.io)`);
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
}

export const imageExists = (ref: string) => docker(['image', 'inspect', '--format', '{{.Id}}', ref]).ok;

/**
 * The build context the CDK asset stages (infra/constructs/agents.ts AGENT_IMAGE_EXCLUDES): the
 * package files, tsconfig.json, agent/ and core/, without tests and node_modules.
 */
export function contextFiles(): string[] {
  const files: string[] = ['package.json', 'package-lock.json', 'tsconfig.json'];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.name === 'node_modules') continue;
      if (entry.isDirectory()) walk(path);
      else if (!entry.name.endsWith('.test.ts')) files.push(path);
    }
  };
  walk('agent');
  walk('core');
  return files.sort();
}

/** A hash of the build context: the same sources give the same tag. */
export function contextHash(files = contextFiles()): string {
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update('\0').update(readFileSync(join(ROOT, f))).update('\0');
  return hash.digest('hex').slice(0, 12);
}

export function imageTag(): string {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return `${IMAGE_REPOSITORY}:${version}-${contextHash()}`;
}

function nodeVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules/node/package.json'), 'utf8')) as { version: string }).version;
}

/** npm's own install directory on this machine (the npm package): copied into the base as it is. */
function hostNpmDir(): string {
  const cli = execFileSync('sh', ['-c', 'readlink -f "$(command -v npm)"'], { encoding: 'utf8' }).trim();
  const dir = resolve(cli, '../..');
  if (!existsSync(join(dir, 'package.json'))) throw new Error(`cannot find npm's package next to ${cli}`);
  return dir;
}

/** Builds the stand-in for node:22-bookworm-slim (see the top of this file); returns its tag. */
export function buildBase(): string {
  const tag = `xl-node-base:${nodeVersion()}-bookworm`;
  if (imageExists(tag)) return tag;
  if (spawnSync('sh', ['-c', 'command -v mmdebstrap']).status !== 0) throw new Error('mmdebstrap is needed to build the base image here (apt-get install mmdebstrap)');
  const began = performance.now();
  const work = mkdtempSync(join(tmpdir(), 'xl-base-'));
  try {
    const rootfs = join(work, 'rootfs');
    log(`building ${tag}: Debian bookworm minbase from this machine's apt sources`);
    const r = spawnSync(
      'mmdebstrap',
      [
        '--variant=minbase',
        '--include=ca-certificates',
        // The official image's user: the worker runs agents' processes as `node` (uid 1000).
        '--customize-hook=chroot "$1" groupadd --gid 1000 node',
        '--customize-hook=chroot "$1" useradd --uid 1000 --gid node --shell /bin/bash --create-home node',
        'bookworm',
        rootfs,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    if (r.status !== 0) throw new Error(`mmdebstrap failed (${r.status ?? r.signal})`);
    // Node from the `node` npm package, npm from this machine's npm package.
    cpSync(join(ROOT, 'node_modules/node/bin/node'), join(rootfs, 'usr/local/bin/node'));
    cpSync(hostNpmDir(), join(rootfs, 'usr/local/lib/node_modules/npm'), { recursive: true, dereference: true });
    execFileSync('ln', ['-s', '../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/local/bin/npm')]);
    execFileSync('ln', ['-s', '../lib/node_modules/npm/bin/npx-cli.js', join(rootfs, 'usr/local/bin/npx')]);
    cpSync(HOST_CA_BUNDLE, join(rootfs, BASE_CA_PATH.slice(1)));
    const registry = execFileSync('npm', ['config', 'get', 'registry'], { encoding: 'utf8' }).trim();
    writeFileSync(join(rootfs, 'usr/local/etc/npmrc'), `registry=${registry}\n`);
    rmSync(join(rootfs, 'var/lib/apt/lists'), { recursive: true, force: true });
    const tar = join(work, 'rootfs.tar');
    execFileSync('tar', ['-C', rootfs, '--numeric-owner', '-cf', tar, '.']);
    const imported = docker([
      'import',
      '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--change', `ENV NODE_EXTRA_CA_CERTS=${BASE_CA_PATH}`,
      '--change', `ENV NODE_VERSION=${nodeVersion()}`,
      '--change', 'CMD ["node"]',
      tar,
      tag,
    ]);
    if (!imported.ok) throw new Error(`docker import failed: ${imported.out}`);
    log(`built ${tag} in ${((performance.now() - began) / 1000).toFixed(0)} s`);
    return tag;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The Node base: NODE_IMAGE (or the official image) when present or pullable, else one built here. */
export function nodeBase(): string {
  const wanted = process.env.NODE_IMAGE ?? OFFICIAL_NODE_IMAGE;
  if (imageExists(wanted)) return wanted;
  const pulled = docker(['pull', wanted]);
  if (pulled.ok) return wanted;
  if (process.env.NODE_IMAGE) throw new Error(`NODE_IMAGE ${wanted} is not on the engine and cannot be pulled: ${pulled.out}`);
  log(`${wanted} cannot be pulled (${pulled.out.split('\n').pop()}): building an equivalent base`);
  return buildBase();
}

export interface BuiltImage {
  tag: string;
  base: string;
  seconds: number;
  sizeBytes: number;
}

/**
 * The agent image's older builds among `refs` (repository:tag): every `xl-agent:<version>-<hash>` but
 * `current` and `latest`. Each change of the agent's sources builds one, with layers of its own, and
 * none is run again: `npm run image` removes them (docker and containerd alike) once `latest` is the
 * new one, so that a developer's engine does not fill its disk over weeks of builds.
 */
export function olderBuilds(refs: string[], current: string, prefix = ''): string[] {
  const repo = `${prefix}${IMAGE_REPOSITORY}:`;
  return refs.map((r) => r.trim()).filter((r) => r.startsWith(repo) && r !== `${prefix}${current}` && r !== `${repo}latest`);
}

/** Builds the agent image (when its tag is not there yet), tags it `latest` and removes older builds. */
export function buildImage(opts: { force?: boolean } = {}): BuiltImage {
  const began = performance.now();
  const ping = docker(['version', '--format', '{{.Server.APIVersion}}']);
  if (!ping.ok) {
    throw new Error(
      `no Docker engine answers at ${process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'}: start one, or point DOCKER_HOST at its socket ` +
        `(a private one: node --import tsx scripts/docker-engine.ts <dir>)\n${ping.out}`,
    );
  }
  const tag = imageTag();
  let base = '';
  if (opts.force || !imageExists(tag)) {
    base = nodeBase();
    const context = mkdtempSync(join(tmpdir(), 'xl-image-'));
    try {
      for (const f of contextFiles()) cpSync(join(ROOT, f), join(context, f), { recursive: false });
      log(`building ${tag} on ${base} (${contextFiles().length} files of context)`);
      // The classic builder: it uses a local FROM image without pulling (no buildx here). The host's
      // network: an engine without a bridge (scripts/docker-engine.ts) gives build steps no other.
      const built = docker(['build', '--network', 'host', '--build-arg', `NODE_IMAGE=${base}`, '-f', 'agent/Dockerfile', '-t', tag, context], {
        env: { DOCKER_BUILDKIT: '0' },
        inherit: true,
      });
      if (!built.ok) throw new Error(`docker build of agent/Dockerfile failed (see above)`);
    } finally {
      rmSync(context, { recursive: true, force: true });
    }
  }
  const tagged = docker(['tag', tag, `${IMAGE_REPOSITORY}:latest`]);
  if (!tagged.ok) throw new Error(`docker tag failed: ${tagged.out}`);
  const pruned = olderBuilds(docker(['image', 'ls', IMAGE_REPOSITORY, '--format', '{{.Repository}}:{{.Tag}}']).out.split('\n'), tag).filter(
    (ref) => docker(['image', 'rm', ref]).ok, // one a container still uses is refused: it stays
  );
  if (pruned.length) log(`removed ${pruned.length} older build(s) of the agent image: ${pruned.join(', ')}`);
  const sizeBytes = Number(docker(['image', 'inspect', '--format', '{{.Size}}', tag]).out);
  return { tag, base, seconds: (performance.now() - began) / 1000, sizeBytes };
}

/**
 * `npm run image -- --containerd`: the built image into containerd (XL_CONTAINERD_ADDRESS, namespace
 * `xl`) for XL_RUNTIME=containerd, through `docker save | ctr images import` (unpacked there, so the
 * first agent does not wait for it). Its versioned tag already there: nothing to do but tag `latest`.
 */
export function importToContainerd(tag: string, address = process.env.XL_CONTAINERD_ADDRESS || '/run/containerd/containerd.sock'): { imported: boolean; seconds: number } {
  const began = performance.now();
  const ctr = (args: string[]) => spawnSync('ctr', ['--address', address, '--namespace', 'xl', '--connect-timeout', '5s', ...args], { encoding: 'utf8' });
  const full = (ref: string) => `docker.io/library/${ref}`;
  const version = ctr(['version']);
  if (version.error) throw new Error('ctr is not installed (apt-get install containerd)');
  if (version.status !== 0) throw new Error(`no containerd answers at ${address}: start it, or point XL_CONTAINERD_ADDRESS at its socket\n${version.stderr.trim()}`);
  const present = ctr(['images', 'ls', '--quiet', `name==${full(tag)}`]).stdout.trim() !== '';
  if (!present) {
    log(`importing ${tag} into containerd at ${address} (namespace xl)`);
    // A pipe between the two CLIs: the archive (over a GB) never lands on disk.
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', 'docker save "$1" | ctr --address "$2" --namespace xl images import -', 'bash', tag, address], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`docker save ${tag} | ctr images import failed (${r.status ?? r.signal})`);
  }
  const tagged = ctr(['images', 'tag', '--force', full(tag), full(`${IMAGE_REPOSITORY}:latest`)]);
  if (tagged.status !== 0) throw new Error(`ctr images tag failed: ${tagged.stderr.trim()}`);
  // containerd keeps a running container's snapshot when its image goes; the content is collected.
  const older = olderBuilds(ctr(['images', 'ls', '--quiet']).stdout.split('\n'), tag, 'docker.io/library/');
  if (older.length && ctr(['images', 'rm', ...older]).status === 0) log(`removed ${older.length} older build(s) of the agent image from containerd`);
  return { imported: !present, seconds: (performance.now() - began) / 1000 };
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  try {
    const built = buildImage({ force: process.argv.includes('--force') });
    process.stdout.write(
      `${built.tag} (also ${IMAGE_REPOSITORY}:latest): ${(built.sizeBytes / 1e6).toFixed(0)} MB, ${built.seconds.toFixed(0)} s` +
        `${built.base ? ` on ${built.base}` : ', already built'}\n`,
    );
    if (process.argv.includes('--containerd')) {
      const imported = importToContainerd(built.tag);
      process.stdout.write(`${built.tag} in containerd (namespace xl)${imported.imported ? `: imported in ${imported.seconds.toFixed(0)} s` : ', already there'}\n`);
    }
  } catch (err) {
    process.stderr.write(`image: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
