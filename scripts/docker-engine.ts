// A Docker engine for this project's container tests and image builds: the one at DOCKER_HOST (or the
// default socket) when it answers, else, where the machine allows (root, Debian's docker.io,
// containerd and runc installed), a private one: containerd and dockerd on sockets in a folder of
// their own, with no iptables rules and no bridge (only the host and none networks exist), and a
// default open-files limit the VM accepts (runc fails to raise RLIMIT_NOFILE past the host's).
// Run by hand: `node --import tsx scripts/docker-engine.ts <dir>` prints the DOCKER_HOST to export.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync } from 'node:fs';
import { request } from 'node:http';
import { join, resolve } from 'node:path';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** The socket path of a unix:// DOCKER_HOST (or the default); undefined for tcp:// and the like. */
export function socketOf(dockerHost = process.env.DOCKER_HOST): string | undefined {
  if (!dockerHost) return DEFAULT_DOCKER_SOCKET;
  return dockerHost.startsWith('unix://') ? dockerHost.slice('unix://'.length) : undefined;
}

/** Whether an engine answers GET /_ping on a unix socket. */
export function pingSocket(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((ok) => {
    if (!existsSync(socketPath)) return ok(false);
    const req = request({ socketPath, path: '/_ping', timeout: timeoutMs }, (res) => {
      res.resume();
      ok(res.statusCode === 200);
    });
    req.on('error', () => ok(false));
    req.on('timeout', () => {
      req.destroy();
      ok(false);
    });
    req.end();
  });
}

export interface Engine {
  dockerHost: string;
  /** Whether this engine was started here (and stop() stops it). */
  private: boolean;
  stop: () => Promise<void>;
}

const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** Why a private engine cannot be started here, or undefined when it can. */
export function privateEngineUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'a private Docker engine needs root';
  const missing = ['dockerd', 'containerd', 'runc', 'docker'].filter((c) => !has(c));
  if (missing.length) return `${missing.join(', ')} not installed (apt-get install docker.io containerd runc)`;
  return undefined;
}

async function waitForSocket(path: string, child: ChildProcess, what: string, log: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}: see ${log}`);
    if (what === 'dockerd' ? await pingSocket(path) : existsSync(path)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer on ${path} within ${ms / 1000} s: see ${log}`);
}

function stopChild(child: ChildProcess, ms = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((ok) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      ok();
    });
    child.kill('SIGTERM');
  });
}

/** Debian's packages of a private engine, the image build (mmdebstrap) and containerd agents' init (tini). */
export const ENGINE_PACKAGES = ['docker.io', 'containerd', 'runc', 'tini', 'mmdebstrap'];

/**
 * On a clean machine (CI, as root, with apt-get) the missing commands are installed first;
 * XL_NO_APT=1 leaves the machine as it is.
 */
export function installMissing(): void {
  const wanted = { dockerd: 'docker.io', docker: 'docker.io', containerd: 'containerd', ctr: 'containerd', runc: 'runc', mmdebstrap: 'mmdebstrap', 'tini-static': 'tini' };
  const packages = [...new Set(Object.entries(wanted).filter(([c]) => !has(c)).map(([, p]) => p))];
  if (!packages.length || process.getuid?.() !== 0 || process.env.XL_NO_APT || !has('apt-get')) return;
  process.stderr.write(`containers: apt-get install ${packages.join(' ')}\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: ['ignore', 'inherit', 'inherit'], env }).status === 0;
  // No package lists yet (a fresh machine): read them, then try again.
  if (!install()) {
    spawnSync('apt-get', ['update'], { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (!install()) throw new Error(`apt-get install ${packages.join(' ')} failed`);
  }
}

/** Starts containerd and dockerd on private sockets under `dir` (kept: images persist between runs). */
export async function startPrivateEngine(dir: string): Promise<Engine> {
  installMissing();
  const why = privateEngineUnavailable();
  if (why) throw new Error(why);
  dir = resolve(dir);
  mkdirSync(dir, { recursive: true });
  const dockerSock = join(dir, 'docker.sock');
  const dockerHost = `unix://${dockerSock}`;
  // A daemon of an earlier run still serving this folder is reused as it is.
  if (await pingSocket(dockerSock)) return { dockerHost, private: false, stop: async () => undefined };
  const ctdSock = join(dir, 'containerd.sock');
  const ctdLog = join(dir, 'containerd.log');
  const containerd = spawn('containerd', ['--root', join(dir, 'ctd-root'), '--state', join(dir, 'ctd-state'), '--address', ctdSock], {
    stdio: ['ignore', openSync(ctdLog, 'a'), openSync(ctdLog, 'a')],
  });
  await waitForSocket(ctdSock, containerd, 'containerd', ctdLog);
  const dockerLog = join(dir, 'dockerd.log');
  const dockerd = spawn(
    'dockerd',
    [
      '--host', dockerHost,
      '--containerd', ctdSock,
      '--data-root', join(dir, 'docker-root'),
      '--exec-root', join(dir, 'docker-exec'),
      '--pidfile', join(dir, 'dockerd.pid'),
      '--iptables=false',
      '--bridge=none',
      '--default-ulimit', 'nofile=4096:4096',
    ],
    { stdio: ['ignore', openSync(dockerLog, 'a'), openSync(dockerLog, 'a')] },
  );
  try {
    await waitForSocket(dockerSock, dockerd, 'dockerd', dockerLog);
  } catch (err) {
    await stopChild(dockerd);
    await stopChild(containerd);
    throw err;
  }
  return {
    dockerHost,
    private: true,
    stop: async () => {
      await stopChild(dockerd);
      await stopChild(containerd);
    },
  };
}

/** The engine at DOCKER_HOST (or the default socket) when it answers, else a private one under `dir`. */
export async function ensureEngine(dir: string): Promise<Engine> {
  const socket = socketOf();
  if (socket && (await pingSocket(socket))) return { dockerHost: `unix://${socket}`, private: false, stop: async () => undefined };
  if (process.env.DOCKER_HOST && !socket) return { dockerHost: process.env.DOCKER_HOST, private: false, stop: async () => undefined };
  return startPrivateEngine(dir);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: node --import tsx scripts/docker-engine.ts <state dir>\n');
    process.exit(2);
  }
  const engine = await startPrivateEngine(dir);
  process.stdout.write(`export DOCKER_HOST=${engine.dockerHost}\n`);
  // The daemons stay with this process: Ctrl-C stops them.
  const stop = () => void engine.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (!engine.private) process.exit(0);
}
