// `npm run test:reliability [-- --quick] [-- --case <name>[,<name>...]]`: the fault suite on the local layer,
// with real processes. Prints a table of case, trials, tasks, lost, doubled; writes it to
// bench/results/reliability.json; exits non-zero when any task was lost or doubled, or any trial
// failed its own expectations. Quick mode (`--quick`, or CI=true) runs fewer trials.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_TYPES } from '#core/agent-types.ts';
import { type Layer, ROOT, removeStateDir, startLayer, waitFor } from '../e2e/harness.ts';
import { CASES } from './cases/index.ts';
import { Ledger } from './ledger.ts';
import type { CaseContext, CaseResult, Mode, ReliabilityCase } from './suite.ts';

const args = process.argv.slice(2);
const mode: Mode = args.includes('--quick') || process.env.CI === 'true' ? 'quick' : 'full';
const only = args.includes('--case') ? (args[args.indexOf('--case') + 1] ?? '').split(',') : undefined;
const unknown = only?.find((name) => !CASES.some((c) => c.name === name));
if (unknown !== undefined) throw new Error(`no case named "${unknown}"; the cases: ${CASES.map((c) => c.name).join(', ')}`);
const cases = CASES.filter((c) => !only || only.includes(c.name));
const types = cases.flatMap((c) => (c.agentType ? [c.agentType] : []));
const clash = types.find((t, i) => types.indexOf(t) !== i);
if (clash) throw new Error(`two cases use agent type ${clash}: each needs its own on the shared layer`);

/**
 * The heartbeat span of the shared layer: agents renew leases every third of it, a lease lasts two
 * thirds, an agent silent for all of it is dead. 6 s leaves the frozen-agent case 2 s between a
 * lease running out and the agent being declared dead (and killed).
 */
const HEARTBEAT_SECONDS = 6;

interface Row extends CaseResult {
  case: string;
  trials: number;
  seconds: number;
}

const log = (message: string) => process.stderr.write(`reliability: ${message}\n`);

async function main(): Promise<number> {
  const began = Date.now();
  log(`${mode} mode: ${cases.map((c) => `${c.name} (${c.trials(mode)})`).join(', ')}`);
  const shared = await startLayer({
    env: {
      XL_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS),
      XL_POOL: AGENT_TYPES.map((t) => `${t}=0..0`).join(','),
      XL_MAX_CONCURRENT_TASKS: cases.flatMap((c) => (c.agentType ? [`${c.agentType}=${c.slots ?? 1}`] : [])).join(','),
      XL_LOG_LEVEL: 'info',
      XL_BREAKER_POLICY: JSON.stringify(Object.fromEntries(cases.flatMap((c) => (c.agentType && c.breaker ? [[`agent:${c.agentType}`, c.breaker]] : [])))),
    },
  });
  log(`layer up in ${((Date.now() - began) / 1000).toFixed(1)} s (state in ${shared.stateDir})`);
  const rows: Row[] = [];
  const kept: string[] = [];
  try {
    for (const c of cases) rows.push(await runCase(c, shared, kept));
  } finally {
    await shared.stop();
  }
  const failed = rows.filter((r) => r.lost || r.doubled || r.failures.length);
  if (failed.length) kept.push(shared.stateDir);
  else await removeStateDir(shared.stateDir);

  printTable(rows);
  for (const r of failed) {
    process.stdout.write(`\n${r.case}: ${r.failures.length} failed expectation(s)\n`);
    for (const f of r.failures.slice(0, 20)) process.stdout.write(`  - ${f}\n`);
    if (r.failures.length > 20) process.stdout.write(`  ... and ${r.failures.length - 20} more\n`);
  }
  const totalSeconds = Math.round((Date.now() - began) / 1000);
  const results = join(ROOT, 'bench/results');
  await mkdir(results, { recursive: true });
  const file = join(results, 'reliability.json');
  await writeFile(file, JSON.stringify({ mode, at: new Date().toISOString(), heartbeatSeconds: HEARTBEAT_SECONDS, totalSeconds, cases: rows }, null, 2) + '\n');
  process.stdout.write(`\n${mode} run in ${totalSeconds} s; written to ${file}\n`);
  if (kept.length) process.stdout.write(`kept for inspection: ${kept.join(' ')}\n`);
  process.stdout.write(`reliability: ${rows.length - failed.length} passed, ${failed.length} failed\n`);
  return failed.length ? 1 : 0;
}

async function runCase(c: ReliabilityCase, shared: Layer, kept: string[]): Promise<Row> {
  const trials = c.trials(mode);
  const ledger = new Ledger(`xl-reliability-${c.name}-`);
  const own: Layer[] = [];
  const began = Date.now();
  const ctx: CaseContext = {
    mode,
    trials,
    layer: shared,
    ledger,
    agents: async (count) => {
      if (!c.agentType) throw new Error(`case ${c.name} has no agentType on the shared layer`);
      const res = await shared.request('PUT', `/pool/${c.agentType}`, { min: count, max: count });
      if (res.status !== 200) throw new Error(`PUT /pool/${c.agentType}: ${res.status} ${JSON.stringify(res.body)}`);
      await waitFor(`${count} idle ${c.agentType} agents`, async () => {
        const agents = (await shared.request('GET', '/agents')).body.items.filter((a: any) => a.agentType === c.agentType);
        return agents.filter((a: any) => a.status === 'idle').length >= count;
      }, 60_000);
    },
    startLayer: async (env = {}, opts = {}) => {
      const layer = await startLayer({ stateDir: opts.stateDir, env: { XL_HEARTBEAT_SECONDS: String(HEARTBEAT_SECONDS), ...env } });
      own.push(layer);
      return layer;
    },
    log: (message) => log(`${c.name}: ${message}`),
  };
  log(`${c.name}: ${trials} trials`);
  let result: CaseResult;
  try {
    result = await c.run(ctx);
  } catch (err) {
    // A case that could not finish its trials is a failure, whatever it had counted.
    result = { tasks: 0, lost: 0, doubled: 0, failures: [`the case stopped: ${(err as Error).stack ?? err}`], notes: 'did not finish' };
    log(`${c.name}: stopped: ${(err as Error).message}`);
  } finally {
    if (c.agentType) await shared.request('PUT', `/pool/${c.agentType}`, { min: 0, max: 0 }).catch(() => undefined);
    for (const layer of own) await layer.stop();
  }
  const bad = result.lost || result.doubled || result.failures.length;
  const dirs = [...new Set([ledger.dir, ...own.map((l) => l.stateDir)])]; // a restarted layer shares its state dir
  if (bad) kept.push(...dirs);
  else for (const dir of dirs) await removeStateDir(dir);
  const seconds = Math.round((Date.now() - began) / 100) / 10;
  log(`${c.name}: ${result.tasks} tasks, ${result.lost} lost, ${result.doubled} doubled, ${result.failures.length} failed expectations, ${seconds} s`);
  return { case: c.name, trials, seconds, ...result };
}

function printTable(rows: Row[]): void {
  const header = ['case', 'trials', 'tasks', 'lost', 'doubled', 'failed checks', 'seconds', 'notes'];
  const lines = rows.map((r) => [r.case, r.trials, r.tasks, r.lost, r.doubled, r.failures.length, r.seconds, r.notes].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  process.stdout.write(['', fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n') + '\n');
}

process.exitCode = await main();
