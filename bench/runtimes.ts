// The agent runtimes side by side (issue 15), run by `npm run bench` after its own figures (or alone:
// `node --import tsx bench/runtimes.ts [--quick]`). For worker processes, Docker containers and
// containerd containers, a local layer (`npm start`, a child process) measures:
// - agent start: from the pool's decision (the agent.started event's requestedAt) to the agent's
//   first claim (its task's startedAt), for a type with no agent running;
// - per-task overhead: a plan of no-op tasks, 8 at once on 2 agents of 4 slots, wall time per task
//   (processes and docker; the ratio is the aim: within 1.2x).
// A runtime whose engine or image is missing is reported as skipped, with what to run.
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Engine, ensureEngine, privateEngineUnavailable, socketOf } from '../scripts/docker-engine.ts';
import { IMAGE_REPOSITORY, buildImage, importToContainerd } from '../scripts/image.ts';
import { DEFAULT_CONTAINERD_ADDRESS } from '../local/containerd-runtime.ts';
import { type Layer, removeStateDir, startLayer, waitFor, waitForEnd } from '../test/e2e/harness.ts';
import { mergeResults } from './results.ts';

const quick = process.argv.includes('--quick');
// `--only=process` (or docker, containerd, comma-separated): those runtimes alone.
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const wanted = (kind: string) => !only || only.includes(kind);
const SIZES = quick ? { starts: 3, tasks: 60 } : { starts: 7, tasks: 200 };
const IMAGE = `${IMAGE_REPOSITORY}:latest`;
type Kind = 'process' | 'docker' | 'containerd';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Every agent.started event the layer logged (its log file), by agent id. */
function startRequests(layer: Layer): Map<string, number> {
  const out = new Map<string, number>();
  const file = join(layer.stateDir, 'logs', 'layer.jsonl');
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('"agent.started"')) continue;
    const record = JSON.parse(line) as { event?: string; agentId?: string; requestedAt?: string };
    if (record.event === 'agent.started' && record.agentId && record.requestedAt) out.set(record.agentId, Date.parse(record.requestedAt));
  }
  return out;
}

const liveOf = async (layer: Layer, type: string) =>
  ((await layer.request('GET', '/agents')).body.items as { agentType: string; status: string }[]).filter((a) => a.agentType === type && a.status !== 'terminated');

/** Starts of a tester agent from none: each sample waits until the last one has drained. */
async function agentStarts(layer: Layer): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < SIZES.starts; i++) {
    await waitFor('no tester agent', async () => ((await liveOf(layer, 'tester')).length === 0) || undefined, 120_000);
    const res = await layer.request('POST', '/executions', { pattern: 'sequential', tasks: [{ id: `start${i}`, agentType: 'tester', command: 'true' }] });
    if (res.status !== 202) throw new Error(`submit: ${res.status} ${JSON.stringify(res.body)}`);
    const ex = await waitForEnd(layer, res.body.executionId, 180_000);
    const task = ex.tasks[0] as { status: string; agentId: string; startedAt: string };
    if (task.status !== 'completed') throw new Error(`start sample ${i}: task ${task.status}`);
    const requestedAt = await waitFor('its agent.started event', async () => startRequests(layer).get(task.agentId), 10_000);
    samples.push(Date.parse(task.startedAt) - requestedAt);
    process.stderr.write(`runtimes: start ${i + 1}/${SIZES.starts}: ${samples.at(-1)} ms\n`);
  }
  return samples;
}

/** Wall time per task of a no-op plan, 8 at once on the two coder agents (4 slots each). */
async function overheadPerTask(layer: Layer): Promise<number> {
  await waitFor('two coder agents idle', async () => {
    const coders = await liveOf(layer, 'coder');
    return (coders.length === 2 && coders.every((a) => a.status === 'idle')) || undefined;
  }, 120_000);
  const tasks = Array.from({ length: SIZES.tasks }, (_, i) => ({ id: `t${i}`, agentType: 'coder', command: 'true' }));
  const submitted = Date.now();
  const res = await layer.request('POST', '/executions', { pattern: 'parallel', maxConcurrency: 8, tasks });
  if (res.status !== 202) throw new Error(`submit: ${res.status} ${JSON.stringify(res.body)}`);
  const ex = await waitForEnd(layer, res.body.executionId, 600_000);
  if (ex.status !== 'SUCCEEDED') throw new Error(`overhead plan ${ex.status}`);
  return (Date.parse(ex.stoppedAt) - submitted) / SIZES.tasks;
}

async function measure(kind: Kind, env: Record<string, string>): Promise<{ startMs: { median: number; samples: number[] }; overheadMsPerTask?: number }> {
  process.stderr.write(`runtimes: ${kind}\n`);
  const layer = await startLayer({
    env: {
      ...env,
      XL_RUNTIME: kind,
      XL_POOL: 'coder=2..2,tester=0..1,reviewer=0..0',
      XL_AGENT_SLOTS: '4',
      XL_POOL_IDLE_SECONDS: '1',
      // A pool round each 2 s, and no room kept for arrivals (the samples come a few seconds apart,
      // which the pool would read as a rate worth an agent): each sample starts from no agent.
      XL_HEARTBEAT_SECONDS: '6',
      XL_POOL_REACTION_SECONDS: '1',
      XL_LOG_LEVEL: 'info',
      // The agent.started events are read from the layer's log (startRequests), where they are INFO
      // lines: whatever level the caller's environment asks for (bench/run.ts asks for WARN).
      POWERTOOLS_LOG_LEVEL: 'INFO',
    },
    startTimeoutMs: 300_000,
  });
  try {
    const samples = await agentStarts(layer);
    const overheadMsPerTask = kind === 'containerd' ? undefined : await overheadPerTask(layer);
    return { startMs: { median: round(median(samples)), samples: samples.map((s) => round(s)) }, ...(overheadMsPerTask !== undefined ? { overheadMsPerTask: round(overheadMsPerTask, 2) } : {}) };
  } finally {
    await layer.stop();
    await removeStateDir(layer.stateDir);
  }
}

async function main(): Promise<void> {
  const results: Record<string, unknown> = {};
  const skipped: Record<string, string> = {};
  if (wanted('process')) results.process = await measure('process', {});
  if (!wanted('docker') && !wanted('containerd')) return report(results, skipped);


  let engine: Engine | undefined;
  const dir = process.env.XL_DOCKER_DIR ?? join(tmpdir(), 'xl-docker');
  const socket = socketOf();
  const why = socket && existsSync(socket) ? undefined : privateEngineUnavailable();
  if (why) skipped.docker = skipped.containerd = `${why}: no Docker engine`;
  else {
    engine = await ensureEngine(dir);
    process.env.DOCKER_HOST = engine.dockerHost;
  }
  try {
    // The image of these sources (built when they changed: the build cache keeps it to a minute or so).
    let tag = IMAGE;
    if (engine) {
      const built = buildImage();
      tag = built.tag;
      process.stderr.write(`runtimes: ${built.tag}${built.base ? `, built in ${built.seconds.toFixed(0)} s` : ''}\n`);
    }
    if (engine && !skipped.docker && wanted('docker')) results.docker = await measure('docker', { DOCKER_HOST: engine.dockerHost });
    const address = [process.env.XL_CONTAINERD_ADDRESS, join(dir, 'containerd.sock'), DEFAULT_CONTAINERD_ADDRESS].find((a) => a && existsSync(a));
    if (engine && !skipped.containerd && !address) skipped.containerd = 'no containerd socket';
    if (engine && !skipped.containerd && address && wanted('containerd')) {
      importToContainerd(tag, address);
      results.containerd = await measure('containerd', { XL_CONTAINERD_ADDRESS: address });
    }
  } finally {
    await engine?.stop();
  }
  await report(results, skipped);
}

/** Writes the runtimes' figures into bench/results/latest.json and prints them. */
async function report(results: Record<string, unknown>, skipped: Record<string, string>): Promise<void> {
  const p = results.process as { overheadMsPerTask: number } | undefined;
  const d = results.docker as { overheadMsPerTask: number } | undefined;
  const runtimes = { mode: quick ? 'quick' : 'full', tasks: SIZES.tasks, ...results, ...(d && p ? { dockerOverheadRatio: round(d.overheadMsPerTask / p.overheadMsPerTask, 2) } : {}), skipped };
  await mergeResults({ runtimes });
  console.log(`\nagent runtimes (${runtimes.mode}) → bench/results/latest.json`);
  for (const kind of ['process', 'docker', 'containerd'] as const) {
    const r = results[kind] as Awaited<ReturnType<typeof measure>> | undefined;
    if (!r) {
      if (skipped[kind]) console.log(`${kind.padEnd(11)} skipped: ${skipped[kind]}`);
      continue;
    }
    const overhead = r.overheadMsPerTask !== undefined ? `; ${SIZES.tasks} × true, 8 at once: ${r.overheadMsPerTask} ms per task` : '';
    console.log(`${kind.padEnd(11)} agent start (decision to first claim) median ${r.startMs.median} ms of ${r.startMs.samples.join(', ')}${overhead}`);
  }
  if (d && p) console.log(`docker / process per-task time: ${runtimes.dockerOverheadRatio}x (aim ≤ 1.2x); docker agent start median aim < 2000 ms`);
}

await main();
process.exit(0);
