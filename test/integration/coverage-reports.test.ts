// Coverage parsing on real reports, written by the tools themselves in a temporary folder: c8
// (Istanbul json-summary and lcov), coverage.py (JSON) and go test (cover profile). The parsed
// figures are checked against what each tool itself reports (c8's text summary, `coverage report`,
// `go tool cover -func`), not against numbers typed here. Then a tester task through the agent
// worker (dynalite, fauxqs) with a real c8 run in its workspace.
//
// The tools are required, not optional: a missing one fails its tests with the package to install
// (CI installs them: `apt-get install -y python3-coverage golang-go`; c8 is a devDependency).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandDriver } from '../../agent/drivers/command.ts';
import { type Coverage, type Metric, parseCoverage, parseCoveragePy, parseGoProfile, parseIstanbulSummary, parseLcov } from '../../core/engines/coverage.ts';
import type { Task } from '../../core/plan.ts';
import { startTestWorker, type TestWorker } from '../support/worker.ts';

const ROOT = join(import.meta.dirname, '../..');
const C8 = join(ROOT, 'node_modules/c8/bin/c8.js');

let dir: string;

interface Run {
  stdout: string;
  stderr: string;
}

/** Runs a program; a missing program rejects with `missing` (what to install). */
function run(file: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; missing?: string }): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (!err) return resolve({ stdout, stderr });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && opts.missing) return reject(new Error(opts.missing));
      reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
    });
  });
}

/** Starts a tool run at once; a test awaits it (and fails with its error), others are not held up. */
function started<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {}); // awaited by the tests; not an unhandled rejection before that
  return p;
}

/** Percent with `digits` decimals as a tool prints it: within half a unit of the last digit. */
function expectPct(ours: number, theirs: number, digits: number): void {
  expect(Math.abs(ours - theirs), `${ours} vs the tool's ${theirs}`).toBeLessThanOrEqual(0.5 * 10 ** -digits + 1e-9);
}

const pctOf = (m: Metric) => (m.total === 0 ? 100 : (m.covered / m.total) * 100);

// ---- the tools --------------------------------------------------------------------------------

interface C8Run {
  summaryText: string;
  lcovText: string;
  /** c8's text-summary: "Lines : 63.63% ( 7/11 )" per metric. */
  textSummary: Record<'Statements' | 'Branches' | 'Functions' | 'Lines', { covered: number; total: number }>;
}

const JS_APP = `export function classify(n) {
  if (n > 0) {
    return 'positive';
  } else {
    return 'non-positive';
  }
}

export function unused(x) {
  return x * 2;
}

console.log(classify(1));
`;

async function runC8(): Promise<C8Run> {
  if (!existsSync(C8)) throw new Error(`c8 is missing (${C8}): run npm ci, it is a devDependency`);
  const cwd = join(dir, 'js');
  await mkdir(cwd);
  await writeFile(join(cwd, 'app.mjs'), JS_APP);
  const { stdout } = await run(
    process.execPath,
    [C8, '--reporter=lcov', '--reporter=json-summary', '--reporter=text-summary', '--report-dir', join(cwd, 'coverage'), process.execPath, join(cwd, 'app.mjs')],
    { cwd },
  );
  const textSummary = {} as C8Run['textSummary'];
  for (const m of stdout.matchAll(/^(Statements|Branches|Functions|Lines)\s*:\s*[\d.]+%\s*\(\s*(\d+)\/(\d+)\s*\)/gm)) {
    textSummary[m[1] as keyof C8Run['textSummary']] = { covered: Number(m[2]), total: Number(m[3]) };
  }
  return {
    summaryText: await readFile(join(cwd, 'coverage/coverage-summary.json'), 'utf8'),
    lcovText: await readFile(join(cwd, 'coverage/lcov.info'), 'utf8'),
    textSummary,
  };
}

interface CoveragePyRun {
  jsonText: string;
  /** `coverage report`'s TOTAL row. */
  total: { statements: number; missing: number; branches: number; percent: number };
  /** The installed coverage.py writes function regions (7.5 and later). */
  writesRegions: boolean;
}

const PY_APP = `def classify(n):
    if n > 0:
        return "positive"
    return "non-positive"


def unused(x):
    return x * 2


print(classify(1))
`;

const PY_MISSING = 'coverage.py is missing: install it with `apt-get install -y python3-coverage`';

/** `python3 -m coverage` as the brief has it; Debian's own interpreter or wrapper where python3 is another one (pyenv). */
async function coveragePy(cwd: string): Promise<[string, string[]]> {
  const candidates: [string, string[]][] = [
    ['python3', ['-m', 'coverage']],
    ['/usr/bin/python3', ['-m', 'coverage']],
    ['python3-coverage', []],
  ];
  for (const [file, pre] of candidates) {
    try {
      await run(file, [...pre, '--version'], { cwd });
      return [file, pre];
    } catch {
      // the next one
    }
  }
  throw new Error(PY_MISSING);
}

async function runCoveragePy(): Promise<CoveragePyRun> {
  const cwd = join(dir, 'py');
  await mkdir(cwd);
  await writeFile(join(cwd, 'app.py'), PY_APP);
  const [file, pre] = await coveragePy(cwd);
  const env = { ...process.env, PYTHONDONTWRITEBYTECODE: '1' };
  await run(file, [...pre, 'run', '--branch', 'app.py'], { cwd, env });
  await run(file, [...pre, 'json', '-o', 'coverage.json'], { cwd, env });
  const { stdout } = await run(file, [...pre, 'report', '--precision=2'], { cwd, env });
  // Name  Stmts  Miss  Branch  BrPart  Cover
  const row = /^TOTAL\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)%/m.exec(stdout) ?? /^app\.py\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)%/m.exec(stdout);
  if (!row) throw new Error(`no TOTAL row in coverage report:\n${stdout}`);
  const version = /(\d+)\.(\d+)/.exec((await run(file, [...pre, '--version'], { cwd, env })).stdout)!;
  return {
    jsonText: await readFile(join(cwd, 'coverage.json'), 'utf8'),
    total: { statements: Number(row[1]), missing: Number(row[2]), branches: Number(row[3]), percent: Number(row[5]) },
    writesRegions: Number(version[1]) > 7 || (Number(version[1]) === 7 && Number(version[2]) >= 5),
  };
}

interface GoRun {
  profile: string;
  /** `go tool cover -func`'s total, percent with one decimal. */
  funcTotal: number;
  /** `go test`'s "coverage: N% of statements". */
  testTotal: number;
}

const GO_SRC = `package cov

// Classify names the sign of n.
func Classify(n int) string {
	if n > 0 {
		return "positive"
	}
	if n < 0 {
		return "negative"
	}
	return "zero"
}

// Double is never called by the tests.
func Double(x int) int {
	return x * 2
}
`;

const GO_TEST = `package cov

import "testing"

func TestClassify(t *testing.T) {
	if got := Classify(1); got != "positive" {
		t.Fatalf("Classify(1) = %q", got)
	}
	if got := Classify(-1); got != "negative" {
		t.Fatalf("Classify(-1) = %q", got)
	}
}
`;

async function runGo(): Promise<GoRun> {
  const cwd = join(dir, 'go');
  await mkdir(cwd);
  await writeFile(join(cwd, 'go.mod'), 'module example.com/cov\n\ngo 1.19\n');
  await writeFile(join(cwd, 'cov.go'), GO_SRC);
  await writeFile(join(cwd, 'cov_test.go'), GO_TEST);
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: cwd,
    GOFLAGS: '-mod=mod',
    GOCACHE: join(dir, 'gocache'),
    GOPATH: join(dir, 'gopath'),
    GOTOOLCHAIN: 'local',
    GOPROXY: 'off',
    GOENV: 'off',
    CGO_ENABLED: '0', // no C compiler needed
  };
  const missing = 'Go is missing: install it with `apt-get install -y golang-go`';
  const test = await run('go', ['test', '-coverprofile=cover.out', './...'], { cwd, env, missing });
  const func = await run('go', ['tool', 'cover', '-func=cover.out'], { cwd, env, missing });
  const funcTotal = /^total:\s+\(statements\)\s+([\d.]+)%/m.exec(func.stdout);
  const testTotal = /coverage: ([\d.]+)% of statements/.exec(test.stdout);
  if (!funcTotal || !testTotal) throw new Error(`no totals in the go tool output:\n${test.stdout}\n${func.stdout}`);
  return { profile: await readFile(join(cwd, 'cover.out'), 'utf8'), funcTotal: Number(funcTotal[1]), testTotal: Number(testTotal[1]) };
}

let c8: Promise<C8Run>;
let py: Promise<CoveragePyRun>;
let go: Promise<GoRun>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xl-coverage-reports-'));
  // All three at once; each test waits for its own tool only.
  c8 = started(runC8());
  py = started(runCoveragePy());
  go = started(runGo());
});

afterAll(async () => {
  await Promise.allSettled([c8, py, go]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---- the parsers against the tools --------------------------------------------------------------

describe('c8 (Istanbul json-summary and lcov)', () => {
  it('json-summary: the figures c8 prints itself', async () => {
    const { summaryText, textSummary } = await c8;
    const cov = parseIstanbulSummary(summaryText);
    expect(parseCoverage('coverage/coverage-summary.json', summaryText)).toEqual(cov);
    expect(cov.format).toBe('istanbul-summary');
    expect(cov.files).toBe(1);
    for (const [ours, theirs] of [
      [cov.lines, textSummary.Lines],
      [cov.branches, textSummary.Branches],
      [cov.functions, textSummary.Functions],
    ] as const) {
      expect(theirs, 'c8 printed a text summary').toBeDefined();
      expect(ours).toEqual(expect.objectContaining({ covered: theirs.covered, total: theirs.total }));
    }
    // The sample has an uncovered function and a branch not taken.
    expect(cov.functions!.covered).toBeLessThan(cov.functions!.total);
    expect(cov.branches!.covered).toBeLessThan(cov.branches!.total);
    // Istanbul's own pct (truncated to 2 decimals) against ours (rounded).
    const raw = JSON.parse(summaryText).total;
    for (const key of ['lines', 'branches', 'functions'] as const) {
      expect(Math.abs(cov[key]!.pct - raw[key].pct)).toBeLessThan(0.011);
    }
  });

  it('lcov: the same totals as the json-summary of the same run', async () => {
    const { summaryText, lcovText } = await c8;
    const fromLcov = parseLcov(lcovText);
    const fromSummary = parseIstanbulSummary(summaryText);
    expect(parseCoverage('coverage/lcov.info', lcovText)).toEqual(fromLcov);
    expect({ ...fromLcov, format: 'istanbul-summary' }).toEqual(fromSummary);
  });

  it('lcov: the same totals counted from DA, BRDA and FNDA lines without the summary lines', async () => {
    const { lcovText } = await c8;
    const bare = lcovText
      .split('\n')
      .filter((l) => !/^(LF|LH|BRF|BRH|FNF|FNH):/.test(l))
      .join('\n');
    const { format: _a, ...counted } = parseLcov(bare);
    const { format: _b, ...summed } = parseLcov(lcovText);
    expect(counted).toEqual(summed);
  });
});

describe('coverage.py (JSON)', () => {
  it('lines and branches as `coverage report` has them, and its percent_covered', async () => {
    const { jsonText, total } = await py;
    const cov = parseCoveragePy(jsonText);
    expect(parseCoverage('coverage.json', jsonText)).toEqual(cov);
    expect(cov.format).toBe('coverage.py');
    expect(cov.files).toBe(1);
    expect(cov.lines.total).toBe(total.statements);
    expect(cov.lines.total - cov.lines.covered).toBe(total.missing);
    expect(cov.branches?.total).toBe(total.branches);
    expect(cov.branches!.covered).toBeLessThan(cov.branches!.total);
    // coverage.py's figure is (lines + branches covered) / (statements + branches).
    const combined = ((cov.lines.covered + cov.branches!.covered) / (cov.lines.total + cov.branches!.total)) * 100;
    expectPct(combined, JSON.parse(jsonText).totals.percent_covered, 9);
    expectPct(combined, total.percent, 2);
  });

  it('functions exactly when the report has function regions (coverage.py 7.5 and later)', async () => {
    const { jsonText } = await py;
    const report = JSON.parse(jsonText);
    const regions = report.files['app.py'].functions as Record<string, { summary: { covered_lines: number } }> | undefined;
    // Which half runs is the installed coverage.py's, not chance: 7.5 and later write regions.
    expect(regions !== undefined).toBe((await py).writesRegions);
    const cov = parseCoveragePy(jsonText);
    if (!regions) {
      expect(cov.functions).toBeUndefined();
      return;
    }
    const named = Object.entries(regions).filter(([name]) => name !== '');
    expect(cov.functions).toEqual({
      covered: named.filter(([, r]) => r.summary.covered_lines > 0).length,
      total: named.length,
      pct: expect.any(Number),
    });
    expect(cov.functions!.covered).toBeLessThan(cov.functions!.total); // `unused` never ran
  });
});

describe('go test -coverprofile', () => {
  it('statements as `go tool cover -func` and `go test` count them', async () => {
    const { profile, funcTotal, testTotal } = await go;
    const cov = parseGoProfile(profile);
    expect(parseCoverage('cover.out', profile)).toEqual(cov);
    expect(cov).toEqual({ format: 'go', lines: expect.any(Object), files: 1 });
    expect(cov.lines.covered).toBeGreaterThan(0);
    expect(cov.lines.covered).toBeLessThan(cov.lines.total);
    expectPct(pctOf(cov.lines), funcTotal, 1);
    expectPct(pctOf(cov.lines), testTotal, 1);
  });
});

// ---- through the agent worker -------------------------------------------------------------------

describe('a tester task through the agent worker', () => {
  let tester: TestWorker;

  beforeAll(async () => {
    tester = await startTestWorker({
      prefix: 'xlc-',
      agentType: 'tester',
      agentId: `tester-coverage-${randomUUID().slice(0, 6)}`,
      slots: 2,
      drivers: { command: new CommandDriver() },
      workspaceRoot: join(dir, 'workspaces'),
    });
  });

  afterAll(async () => {
    await tester?.close();
  });

  /** Runs a tester task (these fields over defaults) through the worker. */
  const runTask = (definition: Partial<Task>) =>
    tester.run({ id: 't0', agentType: 'tester', timeoutSeconds: 60, failureStrategy: 'stop', priority: 'normal', ...definition } as Task, 30_000);

  /** A tester's command: the JS sample under c8, in the task's own workspace. */
  const testerCommand = () =>
    `cp ${join(dir, 'js/app.mjs')} app.mjs && ${process.execPath} ${C8} --reporter=json-summary ${process.execPath} app.mjs >/dev/null && echo '{"tests":"passed"}'`;

  it('adds the workspace report to the output of a completed tester task', async () => {
    const { summaryText } = await c8; // the same program under c8 outside the worker
    const expected = parseIstanbulSummary(summaryText);
    const { task, callback } = await runTask({ command: testerCommand(), coverageTargets: { lines: 50 } });
    expect(callback.success).toEqual({ status: 'completed', attempts: 1 });
    expect(task.status).toBe('completed');
    const output = (task.output as { inline: Record<string, unknown> }).inline;
    const coverage = output.coverage as Coverage;
    expect(output.tests).toBe('passed');
    expect(coverage).toEqual({ ...expected, format: 'istanbul-summary' });
    expect(output.coverageCheck).toEqual({ passed: true, failures: [] });
  });

  it('fails a task that misses its coverage target as a validation error, not retried', async () => {
    const { summaryText } = await c8;
    const lines = parseIstanbulSummary(summaryText).lines.pct;
    const { task, callback } = await runTask({ command: testerCommand(), coverageTargets: { lines: 95 } });
    const message = `coverage below target: lines ${lines}% < 95% (coverage/coverage-summary.json)`;
    expect(callback).toEqual({ error: 'validation', cause: message });
    expect(task).toMatchObject({ status: 'failed', attempts: 1, error: { type: 'validation', message } });
  });

  it('fails a task with targets that wrote no report, naming where it looked', async () => {
    const { task, callback } = await runTask({ command: `echo '{"done":true}'`, coverageTargets: { branches: 10 } });
    expect(callback.error).toBe('validation');
    expect(task.error?.message).toMatch(/^coverage targets could not be checked: no coverage report in the workspace \(looked for coverage\/coverage-summary.json, /);
  });
});
