// `npm run bench:pool [-- --seed N] [--seeds K]`: the pool policy in simulation (bench/pool-sim.ts). Each trace
// runs under a static pool sized for its peak, a reactive backlog-only policy and the layer's own
// sizing code, on Fargate (60 s starts, a round a minute) and locally (2 s starts). Writes the
// figures under `poolSimulation` in bench/results/latest.json (other keys kept) and a plot of pool
// size against backlog to docs/pool-policy.svg, and over K seeds from N (8 unless told) how often
// each aim holds: one seed's trace is one draw. Figures are reported, never asserted.
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FARGATE, LOCAL, type Platform, type SimResult, type Trace, layerPolicy, peakSize, reactivePolicy, simulate, staticPolicy, traces } from './pool-sim.ts';
import { mergeResults } from './results.ts';

const ROOT = resolve(import.meta.dirname, '..');
const seedArg = process.argv.indexOf('--seed');
const SEED = seedArg > 0 ? Number(process.argv[seedArg + 1]) : 1;
if (!Number.isInteger(SEED)) throw new Error(`--seed must be an integer, got "${process.argv[seedArg + 1]}"`);
const seedsArg = process.argv.indexOf('--seeds');
const SEEDS = seedsArg > 0 ? Number(process.argv[seedsArg + 1]) : 8;
if (!Number.isInteger(SEEDS) || SEEDS < 1) throw new Error(`--seeds must be a positive integer, got "${process.argv[seedsArg + 1]}"`);
const SLOTS = 1;
const PLOT = { trace: 'spikes', hours: 3 };

type Figures = Omit<SimResult, 'series'>;

export interface TraceFigures {
  description: string;
  tasks: number;
  peakSizedPool: number;
  static: Figures;
  reactive: Figures;
  layer: Figures;
  aim: {
    /** p95 wait within 2x of the peak-sized pool's. */
    waitWithin2xOfStatic: boolean;
    /** Agent-minutes at most 60% of the peak-sized pool's. */
    agentMinutesWithin60PctOfStatic: boolean;
    lowerWaitThanReactive: boolean;
    fewerAgentMinutesThanReactive: boolean;
  };
}

/** The three policies on one trace; the pool's max is the peak-sized pool for the dynamic ones too. */
export function compare(trace: Trace, platform: Platform, series = false): TraceFigures & { series?: { layer: SimResult['series']; reactive: SimResult['series'] } } {
  const size = peakSize(trace, SLOTS);
  const opts = { platform, bounds: { min: 0, max: size }, slots: SLOTS, series };
  const strip = ({ series: _s, ...figures }: SimResult): Figures => figures;
  const s = simulate(trace, staticPolicy(size), opts);
  const r = simulate(trace, reactivePolicy, opts);
  const l = simulate(trace, layerPolicy(platform), opts);
  return {
    description: trace.description,
    tasks: trace.tasks.length,
    peakSizedPool: size,
    static: strip(s),
    reactive: strip(r),
    layer: strip(l),
    aim: {
      waitWithin2xOfStatic: l.waitP95Seconds <= 2 * s.waitP95Seconds,
      agentMinutesWithin60PctOfStatic: l.agentMinutes <= 0.6 * s.agentMinutes,
      lowerWaitThanReactive: l.waitP95Seconds < r.waitP95Seconds,
      fewerAgentMinutesThanReactive: l.agentMinutes < r.agentMinutes,
    },
    ...(series ? { series: { layer: l.series, reactive: r.series } } : {}),
  };
}

/** Pool size (layer and reactive) and backlog against time, as a small hand-written SVG. */
export function plot(title: string, series: { layer: SimResult['series']; reactive: SimResult['series'] }, hours: number): string {
  const W = 720;
  const H = 300;
  const M = { l: 44, r: 12, t: 46, b: 34 };
  const until = hours * 3600;
  const layer = (series.layer ?? []).filter((p) => p.t <= until);
  const reactive = (series.reactive ?? []).filter((p) => p.t <= until);
  const top = Math.max(1, ...layer.map((p) => Math.max(p.agents, p.backlog)), ...reactive.map((p) => p.agents));
  const x = (t: number) => M.l + (t / until) * (W - M.l - M.r);
  const y = (v: number) => H - M.b - (v / top) * (H - M.t - M.b);
  const steps = (points: { t: number; v: number }[]) =>
    points.map((p, i) => `${i === 0 ? 'M' : 'H'}${x(p.t).toFixed(1)}${i === 0 ? `,${y(p.v).toFixed(1)}` : ` V${y(p.v).toFixed(1)}`}`).join(' ');
  const grid: string[] = [];
  for (let h = 0; h <= hours; h++) grid.push(`<text x="${x(h * 3600)}" y="${H - 12}" text-anchor="middle">${h} h</text>`);
  const tick = Math.max(1, Math.ceil(top / 5));
  for (let v = 0; v <= top; v += tick) {
    grid.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`, `<text x="${M.l - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`);
  }
  const backlogArea = `${steps(layer.map((p) => ({ t: p.t, v: p.backlog })))} V${y(0)} H${x(layer[0]?.t ?? 0)} Z`;
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">
<rect width="${W}" height="${H}" fill="#fff"/>
<text x="${M.l}" y="16" font-size="13">${title}</text>
${grid.join('\n')}
<path d="${backlogArea}" fill="#f4b183" fill-opacity="0.6" stroke="none"/>
<path d="${steps(reactive.map((p) => ({ t: p.t, v: p.agents })))}" fill="none" stroke="#888" stroke-width="1.2" stroke-dasharray="4 3"/>
<path d="${steps(layer.map((p) => ({ t: p.t, v: p.agents })))}" fill="none" stroke="#1f5fbf" stroke-width="1.8"/>
<g transform="translate(${M.l},26)">
<rect width="12" height="8" fill="#f4b183"/><text x="16" y="8">backlog (tasks waiting)</text>
<line x1="170" x2="188" y1="4" y2="4" stroke="#1f5fbf" stroke-width="2"/><text x="192" y="8">agents, the layer's policy</text>
<line x1="350" x2="368" y1="4" y2="4" stroke="#888" stroke-dasharray="4 3"/><text x="372" y="8">agents, reactive (backlog only)</text>
</g>
</svg>
`;
}

/** Per trace, over several seeds: mean p95 wait and agent-minutes of each policy, and how many seeds met each aim. */
export interface AcrossSeeds {
  seeds: number;
  mean: Record<'static' | 'reactive' | 'layer', { waitP95Seconds: number; agentMinutes: number }>;
  /** Seeds (of `seeds`) where each aim held. */
  met: Record<keyof TraceFigures['aim'], number>;
}

export function acrossSeeds(platform: Platform, from: number, count: number): Record<string, AcrossSeeds> {
  const out: Record<string, AcrossSeeds> = {};
  for (let seed = from; seed < from + count; seed++) {
    for (const trace of traces(seed)) {
      const f = compare(trace, platform);
      const zero = () => ({ waitP95Seconds: 0, agentMinutes: 0 });
      const row = (out[trace.name] ??= {
        seeds: count,
        mean: { static: zero(), reactive: zero(), layer: zero() },
        met: { waitWithin2xOfStatic: 0, agentMinutesWithin60PctOfStatic: 0, lowerWaitThanReactive: 0, fewerAgentMinutesThanReactive: 0 },
      });
      for (const policy of ['static', 'reactive', 'layer'] as const) {
        row.mean[policy].waitP95Seconds += f[policy].waitP95Seconds / count;
        row.mean[policy].agentMinutes += f[policy].agentMinutes / count;
      }
      for (const aim of Object.keys(row.met) as (keyof AcrossSeeds['met'])[]) if (f.aim[aim]) row.met[aim]++;
    }
  }
  for (const row of Object.values(out)) for (const m of Object.values(row.mean)) Object.assign(m, { waitP95Seconds: Math.round(m.waitP95Seconds), agentMinutes: Math.round(m.agentMinutes) });
  return out;
}

async function main(): Promise<void> {
  const platforms: Record<string, { startSeconds: number; roundSeconds: number; traces: Record<string, TraceFigures>; acrossSeeds: Record<string, AcrossSeeds> }> = {};
  let svg = '';
  for (const platform of [FARGATE, LOCAL]) {
    const out: Record<string, TraceFigures> = {};
    for (const trace of traces(SEED)) {
      const drawn = platform === FARGATE && trace.name === PLOT.trace;
      const { series, ...figures } = compare(trace, platform, drawn);
      out[trace.name] = figures;
      if (drawn && series) svg = plot(`${trace.name}, Fargate (60 s starts): pool size against backlog, first ${PLOT.hours} h`, series, PLOT.hours);
    }
    platforms[platform.name] = { startSeconds: platform.startSeconds, roundSeconds: platform.roundSeconds, traces: out, acrossSeeds: acrossSeeds(platform, SEED, SEEDS) };
  }
  await mergeResults({ poolSimulation: { generatedAt: new Date().toISOString(), seed: SEED, slotsPerAgent: SLOTS, platforms } });
  await writeFile(join(ROOT, 'docs/pool-policy.svg'), svg);
  printTable(platforms);
}

function printTable(platforms: Record<string, { traces: Record<string, TraceFigures>; acrossSeeds: Record<string, AcrossSeeds> }>): void {
  console.log('pool simulation → bench/results/latest.json (poolSimulation), docs/pool-policy.svg');
  for (const [name, { traces: rows }] of Object.entries(platforms)) {
    console.log(`\n${name}: p95 queue wait (s) / agent-minutes`);
    console.log(`${'trace'.padEnd(12)} ${'peak pool'.padEnd(10)} ${'static'.padEnd(18)} ${'reactive'.padEnd(18)} ${'layer'.padEnd(18)} aim (2x wait, 60% minutes; vs reactive: wait, minutes)`);
    for (const [trace, f] of Object.entries(rows)) {
      const cell = (x: Figures) => `${x.waitP95Seconds} / ${x.agentMinutes}`.padEnd(18);
      const yes = (b: boolean) => (b ? 'yes' : 'no');
      console.log(
        `${trace.padEnd(12)} ${String(f.peakSizedPool).padEnd(10)} ${cell(f.static)} ${cell(f.reactive)} ${cell(f.layer)} ${yes(f.aim.waitWithin2xOfStatic)}, ${yes(f.aim.agentMinutesWithin60PctOfStatic)}; ${yes(f.aim.lowerWaitThanReactive)}, ${yes(f.aim.fewerAgentMinutesThanReactive)}`,
      );
    }
    const across = Object.values(platforms[name]!.acrossSeeds)[0]?.seeds ?? 0;
    console.log(`  over ${across} seeds (means; seeds meeting each aim):`);
    for (const [trace, a] of Object.entries(platforms[name]!.acrossSeeds)) {
      const cell = (x: { waitP95Seconds: number; agentMinutes: number }) => `${x.waitP95Seconds} / ${x.agentMinutes}`.padEnd(18);
      const m = a.met;
      console.log(`  ${trace.padEnd(21)} ${cell(a.mean.static)} ${cell(a.mean.reactive)} ${cell(a.mean.layer)} ${m.waitWithin2xOfStatic}, ${m.agentMinutesWithin60PctOfStatic}; ${m.lowerWaitThanReactive}, ${m.fewerAgentMinutesThanReactive}`);
    }
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) await main();
