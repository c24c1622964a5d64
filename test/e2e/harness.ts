// Starts the embedded local layer as `npm start` does (a child process) and talks to it over HTTP.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface Endpoint {
  url: string;
  pid: number;
  services?: Record<string, string>;
}

export interface Layer {
  url: string;
  stateDir: string;
  endpoint: Endpoint;
  process: ChildProcess;
  output: () => string;
  request: <T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: T }>;
  /** SIGTERM and wait for the exit; resolves with the exit code and how long it took. */
  stop: () => Promise<{ code: number | null; ms: number }>;
  /** SIGKILL (a crash: nothing is drained or saved) and wait for the exit. */
  kill: () => Promise<void>;
}

export async function startLayer(opts: { env?: Record<string, string>; stateDir?: string; startTimeoutMs?: number } = {}): Promise<Layer> {
  const startTimeoutMs = opts.startTimeoutMs ?? 90_000;
  const stateDir = opts.stateDir ?? mkdtempSync(join(tmpdir(), 'xl-e2e-'));
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'local/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, XL_PORT: '0', XL_STATE_DIR: stateDir, XL_QUIET: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`layer did not start in ${startTimeoutMs / 1000} s:\n${output}`)), startTimeoutMs);
    const check = () => {
      if (/xl: ready at/.test(output)) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`layer exited with ${code}:\n${output}`));
    });
  });
  const endpoint = JSON.parse(await readFile(join(stateDir, 'endpoint.json'), 'utf8')) as Endpoint;
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(endpoint.url + path, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const stop = async () => {
    const started = Date.now();
    // A killed layer has no exit code, only a signal: it has exited all the same.
    if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, ms: 0 };
    const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
    child.kill('SIGTERM');
    const code = await exited;
    return { code, ms: Date.now() - started };
  };
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
    child.kill('SIGKILL');
    await exited;
  };
  return { url: endpoint.url, stateDir, endpoint, process: child, output: () => output, request, stop, kill };
}

/**
 * How many times each task's command ran, from a side-effect file its commands append their task id
 * to (one line per run): what a crash and a resume must neither lose nor double.
 */
export function runCounts(file: string): Record<string, number> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  const counts: Record<string, number> = {};
  for (const line of text.split('\n').filter(Boolean)) counts[line] = (counts[line] ?? 0) + 1;
  return counts;
}

export async function removeStateDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Polls GET /executions/{id} until its status is not RUNNING. */
export async function waitForEnd(layer: Layer, executionId: string, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await layer.request('GET', `/executions/${executionId}`);
    if (res.status === 200 && res.body.status !== 'RUNNING') return res.body;
    if (Date.now() > deadline) throw new Error(`execution ${executionId} still ${res.body?.status} after ${timeoutMs} ms: ${JSON.stringify(res.body)}\n${layer.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Largest number of [start, end) intervals that overlap at one moment. */
export function peakOverlap(intervals: { start: number; end: number }[]): number {
  const events = intervals.flatMap((i) => [
    { t: i.start, d: 1 },
    { t: i.end, d: -1 },
  ]);
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let peak = 0;
  for (const e of events) peak = Math.max(peak, (now += e.d));
  return peak;
}

/** Alive and not a zombie (a killed process its parent has not reaped yet is gone). */
export { alive as isAlive } from '../support/processes.ts';

/**
 * A folder that commands can write to. When the layer runs as root its agents run commands as
 * another user (agent/run-as.ts), which cannot write into a private temporary folder.
 */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o777);
  return dir;
}
