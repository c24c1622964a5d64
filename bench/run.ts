// `npm run bench [-- --quick]`: measures the embedded local layer (issue 4) and writes
// bench/results/latest.json. Figures are reported, never asserted.
//
// The layer runs in this process (as `npm start` does), with only coder agents: 2 worker
// processes of 4 task slots each, so 8 tasks can run at once. The layer's boot is measured on its
// own and counted in no other figure.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { AGENT_TYPES } from '#core/agent-types.ts';
import { RepositoryMirrors } from '../agent/engines/repository-mirrors.ts';
import { WorkspaceGit } from '../agent/engines/workspace-git.ts';
import type { ExecutionRecord, TaskRecord } from '#core/records.ts';
import { LocalLayer } from '../local/layer.ts';
import { bundleFigures } from './bundles.ts';
import { chainFigures, type ChainFigures, finishedLines } from './chain.ts';
import { mergeResults } from './results.ts';

const ROOT = resolve(import.meta.dirname, '..');
const quick = process.argv.includes('--quick');
// `--only=affinity,batching,bundles,chain,overhead,runtimes,scale`: those sections alone, on a fresh layer (their keys merged into the results).
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const run = promisify(execFile);

const SIZES = quick
  ? { overhead: 60, realistic: 32, sequential: 30, scale: 1000, coldImports: 3, cloneCommits: 5, batchRuns: 1, chainRuns: 3 }
  : { overhead: 200, realistic: 200, sequential: 100, scale: 10_000, coldImports: 7, cloneCommits: 20, batchRuns: 3, chainRuns: 3 };
const CONCURRENCY = 8;

// Published us-east-1 prices (November 2026), orchestration only: no agent compute.
const PRICES = {
  stateTransition: 0.025 / 1000, // Step Functions Standard
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecondArm: 0.0000133334,
  sqsRequest: 0.4 / 1e6, // standard queue, per 64 KiB chunk
  dynamoWrite: 0.625 / 1e6, // on-demand WRU
  dynamoRead: 0.125 / 1e6, // on-demand RRU
  s3Put: 0.005 / 1000,
  s3Get: 0.0004 / 1000,
};
const LAMBDA_MEMORY_GB = 0.5; // infra/constructs/functions.ts default
const LAMBDA_BILLED_MS = 50; // assumed per step invocation (a few DynamoDB calls), not measured on AWS

const stateDir = mkdtempSync(join(tmpdir(), 'xl-bench-'));
const pool = AGENT_TYPES.map((t) => `${t}=${t === 'coder' ? '2..2' : '0..0'}`).join(',');
process.env.XL_AGENT_SLOTS = '4';
process.env.XL_LOG_LEVEL = 'warn';
// The layer's functions too (Powertools reads it as their modules load): their INFO lines (an event per
// execution started and ended) would come between the figures. WARN and above are still written.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
const layer = new LocalLayer({ port: 0, stateDir, heartbeatSeconds: 60, pool, quiet: true });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(layer.url + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function stores() {
  const { executionStore } = await import('../functions/lib/deps.ts');
  return executionStore();
}

async function waitForAgents(count: number): Promise<void> {
  for (;;) {
    const { items } = await api<{ items: { status: string }[] }>('GET', '/agents');
    if (items.filter((a) => a.status === 'idle').length >= count) return;
    await sleep(100);
  }
}

interface Measured {
  executionId: string;
  wallMs: number;
  execution: ExecutionRecord;
  tasks: TaskRecord[];
  requests: Map<string, number>;
  /** CPU of this process (the layer's, with this loop's polls) over the run, user + system, in ms. */
  layerCpuMs: number;
  /** The requests of `requests` the layer's own clients made in process (0 with XL_LOCAL_INPROCESS=0). */
  requestsInProcess: number;
}

/** How the layer counts the GetItem the benchmark polls the execution with. */
const POLL_KEY = 'dynamodb:GetItem';

/** Submits a plan, waits for its end; wall time is from just before the POST to the recorded end. */
async function measure(plan: object): Promise<Measured> {
  const executions = await stores();
  const before = new Map(layer.requests);
  const inProcess0 = layer.requestsInProcess;
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  const { executionId } = await api<{ executionId: string }>('POST', '/executions', plan);
  let execution: ExecutionRecord | undefined;
  let polls = 0; // this loop's own reads, taken out of the request counts below
  for (;;) {
    polls++;
    execution = await executions.getExecution(executionId);
    if (execution && execution.status !== 'RUNNING' && execution.status !== 'PENDING') break;
    await sleep(20);
  }
  const cpu = process.cpuUsage(cpu0);
  // This loop's reads are in process too when the layer's calls are.
  const requestsInProcess = layer.requestsInProcess - inProcess0 - (layer.requestsInProcess > inProcess0 ? polls : 0);
  if (execution.status !== 'SUCCEEDED') throw new Error(`benchmark execution ${executionId} ended ${execution.status}: ${execution.message ?? ''}`);
  const requests = new Map<string, number>();
  for (const [k, v] of layer.requests) requests.set(k, v - (before.get(k) ?? 0));
  requests.set(POLL_KEY, (requests.get(POLL_KEY) ?? 0) - polls);
  const layerCpuMs = (cpu.user + cpu.system) / 1000;
  return { executionId, wallMs: Date.parse(execution.stoppedAt!) - t0, execution, tasks: await executions.listTasks(executionId), requests, layerCpuMs, requestsInProcess };
}

async function direct(command: string, count: number, concurrency: number): Promise<number> {
  const { stdout } = await run(process.execPath, [join(ROOT, 'bench/direct.mjs'), command, String(count), String(concurrency)]);
  return (JSON.parse(stdout) as { ms: number }).ms;
}

const tasksOf = (n: number, command: string) => Array.from({ length: n }, (_, i) => ({ id: `t${i}`, agentType: 'coder', command }));

/** Every execution of the run (the pattern machine's and its TaskBatch children) with its history. */
async function histories(executionId: string): Promise<{ name: string; events: { type?: string }[] }[]> {
  const sfn = layer.sfn!;
  const out: { name: string; events: { type?: string }[] }[] = [];
  for (const machine of (await sfn.listStateMachines()).stateMachines ?? []) {
    let nextToken: string | undefined;
    do {
      const page = await sfn.listExecutions({ stateMachineArn: machine.stateMachineArn, maxResults: 1000, nextToken });
      for (const e of page.executions ?? []) {
        if (e.name !== executionId && !e.name!.startsWith(`${executionId}-`)) continue;
        const events: { type?: string }[] = [];
        let token: string | undefined;
        do {
          const h = await sfn.getExecutionHistory({ executionArn: e.executionArn, maxResults: 1000, nextToken: token });
          events.push(...(h.events ?? []));
          token = h.nextToken;
        } while (token);
        out.push({ name: e.name!, events });
      }
      nextToken = page.nextToken;
    } while (nextToken);
  }
  return out;
}

/** AWS bills a transition per state entered. */
const transitions = (hs: { events: { type?: string }[] }[]) =>
  hs.reduce((n, h) => n + h.events.filter((e) => e.type?.endsWith('StateEntered')).length, 0);

function costPer1000(m: Measured, hs: { events: { type?: string }[] }[]): { usd: number; perTask: Record<string, number> } {
  const n = m.tasks.length;
  const count = (prefix: string, ops: string[]) => ops.reduce((s, op) => s + (m.requests.get(`${prefix}:${op}`) ?? 0), 0);
  // Lambda steps (Resource = the function's ARN) show as LambdaFunctionScheduled events.
  const lambdaSteps = hs.reduce((s, h) => s + h.events.filter((e) => e.type === 'LambdaFunctionScheduled').length, 0);
  const perTask = {
    transitions: transitions(hs) / n,
    lambdaInvocations: lambdaSteps / n,
    // Agents' calls over HTTP; the state machine's own SendMessage goes over HTTP too.
    sqsRequests: [...m.requests].filter(([k]) => k.startsWith('sqs:')).reduce((s, [, v]) => s + v, 0) / n,
    dynamoWrites: count('dynamodb', ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']) / n,
    dynamoReads: count('dynamodb', ['GetItem', 'Query', 'Scan', 'BatchGetItem']) / n,
    s3Puts: count('s3', ['PUT']) / n,
    s3Gets: count('s3', ['GET']) / n,
  };
  const usd =
    perTask.transitions * PRICES.stateTransition +
    perTask.lambdaInvocations * (PRICES.lambdaRequest + (LAMBDA_BILLED_MS / 1000) * LAMBDA_MEMORY_GB * PRICES.lambdaGbSecondArm) +
    perTask.sqsRequests * PRICES.sqsRequest +
    perTask.dynamoWrites * PRICES.dynamoWrite +
    perTask.dynamoReads * PRICES.dynamoRead +
    perTask.s3Puts * PRICES.s3Put +
    perTask.s3Gets * PRICES.s3Get;
  return { usd: round(usd * 1000, 4), perTask: Object.fromEntries(Object.entries(perTask).map(([k, v]) => [k, round(v, 2)])) };
}

/** Resident memory of this process and its worker processes, sampled until stopped. */
function memorySampler() {
  let peakTotal = 0;
  let peakMain = 0;
  const rss = (pid: number) => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  };
  let peakHeap = 0;
  let peakExternal = 0;
  const timer = setInterval(() => {
    const main = process.memoryUsage.rss();
    const usage = process.memoryUsage();
    peakHeap = Math.max(peakHeap, usage.heapUsed);
    peakExternal = Math.max(peakExternal, usage.external); // Node counts buffers (arrayBuffers) in external already
    const children = (readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)).map(Number);
    const total = main + children.reduce((s, pid) => s + rss(pid), 0);
    peakMain = Math.max(peakMain, main);
    peakTotal = Math.max(peakTotal, total);
  }, 250);
  return () => {
    clearInterval(timer);
    // Of the main process: its JavaScript heap, and what lives outside it (buffers; LevelDB and SQLite caches are neither).
    return { peakMainMb: round(peakMain / 2 ** 20, 0), peakTotalMb: round(peakTotal / 2 ** 20, 0), peakMainHeapMb: round(peakHeap / 2 ** 20, 0), peakMainExternalMb: round(peakExternal / 2 ** 20, 0) };
  };
}

/**
 * Affinity's warm mirror: clone time of a repository with some history (20 commits, 5 with
 * --quick, each rewriting 500 files of 4 KB) cold (shallow, from the origin) against warm (the mirror fetches what is new, the
 * workspace is a local clone of it), the median of 5 each, and the first clone that fills the mirror.
 */
async function cloneFigures(): Promise<{ coldMs: number; warmMs: number; firstMs: number; repositoryMb: number; speedup: number }> {
  const dir = join(stateDir, 'clone-bench');
  const seed = join(dir, 'seed');
  await mkdir(seed, { recursive: true });
  const git = (cwd: string, ...args: string[]) => run('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', ...args], { cwd, maxBuffer: 1 << 26 });
  await git(seed, 'init', '--quiet', '--initial-branch=main');
  const { randomBytes } = await import('node:crypto');
  for (let c = 0; c < SIZES.cloneCommits; c++) {
    await Promise.all(Array.from({ length: 500 }, (_, i) => writeFile(join(seed, `f${i}.txt`), randomBytes(3000).toString('base64'))));
    await git(seed, 'add', '-A');
    await git(seed, 'commit', '--quiet', '-m', `c${c}`);
  }
  const origin = join(dir, 'origin.git');
  await git(dir, 'clone', '--quiet', '--bare', seed, origin);
  const repositoryMb = round(Number((await run('du', ['-sk', origin])).stdout.split('\t')[0]) / 1024, 1);
  const payloads = { putBytes: async () => 0, uri: (k: string) => k };
  const cold = new WorkspaceGit({ payloads });
  const warm = new WorkspaceGit({ payloads, mirrors: new RepositoryMirrors({ root: join(dir, 'mirrors') }) });
  const spec = { repository: `file://${origin}`, ref: 'main' };
  let n = 0;
  const time = async (wg: WorkspaceGit) => {
    const ws = join(dir, `ws${n++}`);
    await mkdir(ws);
    const t0 = performance.now();
    const prepared = await wg.clone(spec, ws);
    const ms = performance.now() - t0;
    if (prepared.failed) throw new Error(`clone failed: ${JSON.stringify(prepared.failed)}`);
    await rm(ws, { recursive: true, force: true });
    await rm(`${ws}.git`, { recursive: true, force: true });
    return ms;
  };
  const firstMs = await time(warm);
  const colds: number[] = [];
  const warms: number[] = [];
  for (let i = 0; i < 5; i++) {
    colds.push(await time(cold));
    warms.push(await time(warm));
  }
  const coldMs = round(percentile(colds, 50), 0);
  const warmMs = round(percentile(warms, 50), 0);
  return { coldMs, warmMs, firstMs: round(firstMs, 0), repositoryMb, speedup: round(coldMs / warmMs, 1) };
}

/** The coder agents replaced by fresh ones started with `env` (their environment comes from this process's). */
async function replaceAgents(env: Record<string, string | undefined>): Promise<void> {
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const { items: before } = await api<{ items: { agentId: string; status: string }[] }>('GET', '/agents');
  const old = new Set(before.map((a) => a.agentId));
  for (const a of before.filter((x) => x.status !== 'terminated')) await api('DELETE', `/agents/${a.agentId}`);
  // The pool manager starts the two replacements (its min) once the old ones are gone: no extra
  // agent to drain (and no task handed back) in the runs measured.
  for (;;) {
    const { items } = await api<{ items: { agentId: string; status: string }[] }>('GET', '/agents');
    const live = items.filter((a) => a.status !== 'terminated');
    if (live.every((a) => !old.has(a.agentId)) && live.filter((a) => a.status === 'idle').length >= 2) return;
    await sleep(200);
  }
}

/**
 * Task batching: the per-task overhead of a 200-task plan of no-op commands (60 with --quick), and
 * the SQS requests per task, with the agents' batching on (deletes and visibility changes
 * coalesced) and off (XL_BATCH=0): medians of three alternating runs each (one with --quick).
 */
async function batchingFigures(): Promise<Record<string, unknown>> {
  const n = SIZES.overhead;
  const plan = { pattern: 'parallel', maxConcurrency: CONCURRENCY, tasks: tasksOf(n, 'true') };
  const sqsPerTask = (m: Measured) => round([...m.requests].filter(([k]) => k.startsWith('sqs:')).reduce((s, [, v]) => s + v, 0) / n, 2);
  const byOp = (m: Measured) => Object.fromEntries([...m.requests].filter(([k, v]) => k.startsWith('sqs:') && v > 0).map(([k, v]) => [k.slice(4), round(v / n, 2)]));
  const direct0 = await direct('true', n, CONCURRENCY);
  const figures: Record<string, unknown> = {};
  type F = { overheadMsPerTask: number; sqsRequestsPerTask: number; deleteCallsPerTask: number };
  const runs: Record<'on' | 'off', F[]> = { on: [], off: [] };
  // Alternating, three runs each: the machine is shared, so one run of each says little.
  for (const name of Array.from({ length: SIZES.batchRuns }, () => ['off', 'on'] as const).flat()) {
    await replaceAgents({ XL_BATCH: name === 'off' ? '0' : undefined });
    await measure({ pattern: 'parallel', maxConcurrency: CONCURRENCY, tasks: tasksOf(40, 'true') }); // warm-up
    const m = await measure(plan);
    const ops = byOp(m);
    runs[name].push({
      overheadMsPerTask: round((m.wallMs - direct0) / n),
      sqsRequestsPerTask: sqsPerTask(m),
      deleteCallsPerTask: round((ops.DeleteMessage ?? 0) + (ops.DeleteMessageBatch ?? 0)),
    });
    figures[`${name}${runs[name].length}`] = { ...runs[name].at(-1), sqsByOperation: ops, wallMs: m.wallMs };
  }
  await replaceAgents({ XL_BATCH: undefined });
  const median = (xs: F[], k: keyof F) => percentile(xs.map((x) => x[k]), 50);
  const summary = (xs: F[]) => ({
    overheadMsPerTask: median(xs, 'overheadMsPerTask'),
    sqsRequestsPerTask: median(xs, 'sqsRequestsPerTask'),
    deleteCallsPerTask: median(xs, 'deleteCallsPerTask'),
  });
  return { tasks: n, on: summary(runs.on), off: summary(runs.off), runs: figures };
}

/**
 * `--only=overhead`: the per-task overhead at 8 at once and along a chain, with the layer process's
 * CPU per task, alone (XL_LOCAL_INPROCESS=0 to compare the layer's own calls over HTTP).
 */
async function overheadFigures(): Promise<Record<string, unknown>> {
  await measure({ pattern: 'parallel', maxConcurrency: CONCURRENCY, tasks: tasksOf(40, 'true') }); // warm-up
  const overhead = await measure({ pattern: 'parallel', maxConcurrency: CONCURRENCY, tasks: tasksOf(SIZES.overhead, 'true') });
  const overheadDirect = await direct('true', SIZES.overhead, CONCURRENCY);
  const sequential = await measure({ pattern: 'sequential', tasks: tasksOf(SIZES.sequential, 'true') });
  const sequentialDirect = await direct('true', SIZES.sequential, 1);
  return {
    inProcess: process.env.XL_LOCAL_INPROCESS !== '0',
    overheadMsPerTask: round((overhead.wallMs - overheadDirect) / SIZES.overhead),
    layerCpuMsPerTask: round(overhead.layerCpuMs / SIZES.overhead),
    sequentialOverheadMsPerTask: round((sequential.wallMs - sequentialDirect) / SIZES.sequential),
    sequentialLayerCpuMsPerTask: round(sequential.layerCpuMs / SIZES.sequential),
    // The work behind the CPU: requests the layer's services served per task (its own and the agents').
    requestsPerTask: round([...overhead.requests.values()].reduce((a, b) => a + b, 0) / SIZES.overhead),
    inProcessRequestsPerTask: round(overhead.requestsInProcess / SIZES.overhead),
  };
}

/** The TaskBatch execution of a sequential plan (one while it has at most 250 tasks) and its history. */
async function batchHistory(executionId: string): Promise<{ type?: string }[]> {
  const batch = (await histories(executionId)).find((h) => h.name === `${executionId}-0`);
  if (!batch) throw new Error(`no TaskBatch execution for ${executionId}`);
  return batch.events;
}

/**
 * A sequential plan of no-op tasks measured as the main run does, and its chain split into phases
 * (bench/chain.ts): from the agents' "task finished" lines (so the agents log at info for it),
 * the TaskBatch history and the task records.
 */
async function chainRun(direct1: number): Promise<{ overheadMsPerTask: number; figures: ChainFigures }> {
  const n = SIZES.sequential;
  const m = await measure({ pattern: 'sequential', tasks: tasksOf(n, 'true') });
  const log = await readFile(join(stateDir, 'agents.log'), 'utf8');
  const figures = chainFigures(m.tasks, await batchHistory(m.executionId), finishedLines(log, m.executionId));
  return { overheadMsPerTask: round((m.wallMs - direct1) / n), figures };
}

/**
 * `--only=chain`: the sequential overhead per task and the chain's phases, over SIZES.chainRuns
 * sequential plans (medians of the runs' medians and p90s), with the agents logging at info.
 */
async function chainSection(): Promise<Record<string, unknown>> {
  await replaceAgents({ XL_LOG_LEVEL: 'info' });
  await measure({ pattern: 'sequential', tasks: tasksOf(10, 'true') }); // warm-up
  const direct1 = await direct('true', SIZES.sequential, 1);
  const runs: Awaited<ReturnType<typeof chainRun>>[] = [];
  for (let i = 0; i < SIZES.chainRuns; i++) runs.push(await chainRun(direct1));
  await replaceAgents({ XL_LOG_LEVEL: 'warn' });
  const mid = (xs: number[]) => percentile(xs, 50);
  const of = (q: 'p50' | 'p90') => Object.fromEntries(Object.keys(runs[0]!.figures[q]).map((k) => [k, mid(runs.map((r) => r.figures[q][k as keyof ChainFigures['p50']]))]));
  return {
    tasks: SIZES.sequential,
    runs: runs.length,
    sequentialOverheadMsPerTask: mid(runs.map((r) => r.overheadMsPerTask)),
    perRun: runs.map((r) => r.overheadMsPerTask),
    chainPhasesMs: { p50: of('p50'), p90: of('p90') },
  };
}

/** One parallel plan of SIZES.scale no-op tasks: its wall time, the peak memory, and its executions' history sizes against the 25,000-event limit. */
async function scaleFigures() {
  const stopSampling = memorySampler();
  const scaleStart = Date.now();
  const scale = await measure({ pattern: 'parallel', maxConcurrency: CONCURRENCY, tasks: tasksOf(SIZES.scale, 'true') });
  const memory = stopSampling();
  const scaleHistories = await histories(scale.executionId);
  return {
    tasks: SIZES.scale,
    wallMs: Date.parse(scale.execution.stoppedAt!) - scaleStart,
    /** CPU of the layer's process over the run (less noisy than the wall time on a shared machine). */
    layerCpuMs: round(scale.layerCpuMs, 0),
    ...memory,
    executions: scaleHistories.length,
    maxEventsPerExecution: Math.max(...scaleHistories.map((h) => h.events.length)),
  };
}

async function onlySections(sections: string[]): Promise<void> {
  const results: Record<string, unknown> = {};
  if (sections.includes('bundles')) {
    const { bundleKb, coldImportMs } = await bundleFigures(join(stateDir, 'bundles'), SIZES.coldImports);
    Object.assign(results, { bundleKb, coldImportMs });
  }
  // The bundles need no layer.
  if (['affinity', 'batching', 'chain', 'overhead', 'scale'].some((s) => sections.includes(s))) {
    await layer.start();
    await waitForAgents(2);
  }
  if (sections.includes('affinity')) results.affinity = { clone: await cloneFigures() };
  if (sections.includes('batching')) results.batching = await batchingFigures();
  if (sections.includes('overhead')) results.overheadOnly = await overheadFigures();
  if (sections.includes('chain')) results.chain = await chainSection();
  // On a fresh layer, unlike the full run's (which has run every other measure first).
  if (sections.includes('scale')) results.scaleOnly = await scaleFigures();
  await mergeResults(results);
  console.log(JSON.stringify(results, null, 2));
}

async function main(): Promise<void> {
  if (only) return onlySections(only);
  await layer.start();
  const bootMs = round(layer.bootMs, 0);
  await waitForAgents(2);
  // Warm-up: the first tasks pay for lazy imports and JIT in every process.
  await measure({ pattern: 'parallel', maxConcurrency: CONCURRENCY, tasks: tasksOf(40, 'true') });

  const overhead = await measure({ pattern: 'parallel', maxConcurrency: CONCURRENCY, tasks: tasksOf(SIZES.overhead, 'true') });
  const overheadDirect = await direct('true', SIZES.overhead, CONCURRENCY);
  const realistic = await measure({ pattern: 'parallel', maxConcurrency: CONCURRENCY, tasks: tasksOf(SIZES.realistic, 'sleep 0.5') });
  const realisticDirect = await direct('sleep 0.5', SIZES.realistic, CONCURRENCY);
  const sequential = await measure({ pattern: 'sequential', tasks: tasksOf(SIZES.sequential, 'true') });
  const sequentialDirect = await direct('true', SIZES.sequential, 1);
  const pipeline = await measure({
    pattern: 'pipeline',
    stages: Array.from({ length: 5 }, (_, s) => ({ name: `s${s}`, tasks: tasksOf(SIZES.sequential / 5, 'true').map((t) => ({ ...t, id: `s${s}${t.id}` })) })),
  });

  const latencies = overhead.tasks.map((t) => Date.parse(t.startedAt!) - t.dispatchedAt!).filter((n) => Number.isFinite(n));
  const patterns = { parallel: overhead, sequential, pipeline };
  const transitionsPerTask: Record<string, number> = {};
  const costPer1000TasksUsd: Record<string, number> = {};
  const callsPerTask: Record<string, Record<string, number>> = {};
  for (const [pattern, m] of Object.entries(patterns)) {
    const hs = await histories(m.executionId);
    transitionsPerTask[pattern] = round(transitions(hs) / m.tasks.length, 2);
    const cost = costPer1000(m, hs);
    costPer1000TasksUsd[pattern] = cost.usd;
    callsPerTask[pattern] = cost.perTask;
  }

  const scale = await scaleFigures();

  const { bundleKb, coldImportMs } = await bundleFigures(join(stateDir, 'bundles'), SIZES.coldImports);
  const affinity = { clone: await cloneFigures() };
  const batching = await batchingFigures();
  const chain = await chainSection();

  const results = {
    generatedAt: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    bootMs,
    // A first start synthesizes the CDK app (seconds); later ones read the kept template.
    bootTemplateCached: layer.templateCached,
    overheadMsPerTask: round((overhead.wallMs - overheadDirect) / SIZES.overhead),
    overheadRatio: round(overhead.wallMs / overheadDirect),
    layerCpuMsPerTask: round(overhead.layerCpuMs / SIZES.overhead),
    realisticRatio: round(realistic.wallMs / realisticDirect, 3),
    sequentialOverheadMsPerTask: round((sequential.wallMs - sequentialDirect) / SIZES.sequential),
    dispatchLatencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
    // From one task's end to the next one's claim, by phase (bench/chain.ts), over chain.runs more sequential plans.
    chainPhasesMs: chain.chainPhasesMs,
    chain,
    bundleKb,
    coldImportMs,
    affinity,
    batching,
    transitionsPerTask,
    costPer1000TasksUsd,
    callsPerTask,
    scale,
    raw: {
      tasks: { overhead: SIZES.overhead, realistic: SIZES.realistic, sequential: SIZES.sequential },
      layerMs: { overhead: overhead.wallMs, realistic: realistic.wallMs, sequential: sequential.wallMs },
      directMs: { overhead: round(overheadDirect, 0), realistic: round(realisticDirect, 0), sequential: round(sequentialDirect, 0) },
    },
  };
  // Other benchmarks' keys (npm run bench:pool) stay.
  await mergeResults(results);
  printTable(results);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the results object printed as written
function printTable(r: Record<string, any>): void {
  const rows: [string, string, string][] = [
    ['boot (not in other figures)', `${r.bootMs} ms${r.bootTemplateCached ? ' (template kept)' : ' (synthesized)'}`, ''],
    [`overhead per task (${r.raw.tasks.overhead} × true, 8 at once)`, `${r.overheadMsPerTask} ms`, '≤ 3.5 ms'],
    ['overhead ratio', `${r.overheadRatio}x`, '≤ 5x'],
    ['layer process CPU per task (same run)', `${r.layerCpuMsPerTask} ms`, ''],
    ['realistic ratio (sleep 0.5)', `${r.realisticRatio}x`, '≤ 1.05x'],
    ['sequential overhead per task', `${r.sequentialOverheadMsPerTask} ms`, '≤ 8 ms'],
    ...Object.entries(r.chainPhasesMs.p50 as Record<string, number>).map(([k, v]) => [`chain phase ${k} p50 / p90`, `${v} / ${r.chainPhasesMs.p90[k]} ms`, ''] as [string, string, string]),
    ['dispatch latency p50 / p95 / p99', `${r.dispatchLatencyMs.p50} / ${r.dispatchLatencyMs.p95} / ${r.dispatchLatencyMs.p99} ms`, 'p50 < 20 ms'],
    ...Object.entries(r.bundleKb).map(([k, v]) => [`bundle ${k}`, `${v} KB, +${r.coldImportMs[k]} ms cold import`, '< 300 KB, < 100 ms'] as [string, string, string]),
    ...Object.entries(r.transitionsPerTask).map(([k, v]) => [`transitions per task (${k})`, String(v), ''] as [string, string, string]),
    ...Object.entries(r.costPer1000TasksUsd).map(([k, v]) => [`AWS cost per 1,000 tasks (${k})`, `$${v}`, ''] as [string, string, string]),
    [`scale: ${r.scale.tasks} tasks`, `${(r.scale.wallMs / 1000).toFixed(1)} s, peak ${r.scale.peakTotalMb} MB (main ${r.scale.peakMainMb} MB)`, ''],
    ['affinity: clone cold / warm (median of 5)', `${r.affinity.clone.coldMs} / ${r.affinity.clone.warmMs} ms (${r.affinity.clone.speedup}x; first, filling the mirror: ${r.affinity.clone.firstMs} ms)`, ''],
    [`batching: overhead per task on / off (${r.batching.tasks} × true)`, `${r.batching.on.overheadMsPerTask} / ${r.batching.off.overheadMsPerTask} ms`, ''],
    ['batching: SQS requests per task on / off', `${r.batching.on.sqsRequestsPerTask} / ${r.batching.off.sqsRequestsPerTask}`, ''],
    ['scale: most history events in one execution', `${r.scale.maxEventsPerExecution} of 25,000 (${r.scale.executions} executions)`, '< 25,000'],
  ];
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  console.log(`\nbenchmarks (${r.mode}) → bench/results/latest.json`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`);
}

try {
  await main();
} finally {
  await layer.stop().catch(() => undefined);
  await rm(stateDir, { recursive: true, force: true });
}
// Then the agent runtimes side by side (bench/runtimes.ts: layers of their own, in child processes).
if (!only || only.includes('runtimes')) {
  const { status } = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/runtimes.ts'), ...(quick ? ['--quick'] : [])], { stdio: 'inherit' });
  process.exit(status ?? 1);
}
process.exit(0);
