// Coverage analysis (issue #3, "Engines"): reads the coverage reports that test tools write (lcov,
// Istanbul json-summary, coverage.py JSON, Go cover profiles) into line, branch and function
// coverage, and checks them against a task's `coverageTargets` (CONTRACT.md). Pure functions: the
// agent finds the report in a task's workspace (agent/engines/coverage.ts) and hands its text here.
//
// Error messages name the format and what is wrong, and never quote the report's content: a report
// path in a workspace may be a link to a file the task's command could not read itself.

export type CoverageFormat = 'lcov' | 'istanbul-summary' | 'coverage.py' | 'go';

export const COVERAGE_FORMATS: readonly CoverageFormat[] = ['lcov', 'istanbul-summary', 'coverage.py', 'go'];

export interface Metric {
  covered: number;
  total: number;
  /** covered / total in percent, rounded to 2 decimals; 100 when total is 0. */
  pct: number;
}

export interface Coverage {
  format: CoverageFormat;
  /** Lines; for Go profiles, statements (the only measure they have). */
  lines: Metric;
  /** Absent when the report has no branch data. */
  branches?: Metric;
  /** Absent when the report has no function data. */
  functions?: Metric;
  /** Source files the report covers. */
  files: number;
}

export type CoverageMetricName = 'lines' | 'branches' | 'functions';
export const COVERAGE_METRICS: readonly CoverageMetricName[] = ['lines', 'branches', 'functions'];

/** Percent per metric, as in a task's `coverageTargets`. */
export type CoverageTargets = Partial<Record<CoverageMetricName, number>>;

export interface CoverageFailure {
  metric: CoverageMetricName;
  target: number;
  /** The report's percentage, or null when the report has no data for the metric. */
  actual: number | null;
  /** e.g. "lines 62.5% < 80%", "branches: the report has no branch data (target 70%)". */
  message: string;
}

export interface CoverageCheck {
  passed: boolean;
  failures: CoverageFailure[];
}

/**
 * Where reports are looked for in a workspace, in order: Istanbul/c8/jest/vitest json-summary,
 * lcov (JS tools' directory, then the root), coverage.py's default JSON, then Go profiles.
 */
export const COVERAGE_REPORT_PATHS: readonly string[] = [
  'coverage/coverage-summary.json',
  'coverage/lcov.info',
  'lcov.info',
  'coverage.json',
  'coverage/coverage.json',
  'cover.out',
  'coverage.out',
];

const FORMAT_NAMES: Record<CoverageFormat, string> = {
  lcov: 'lcov report',
  'istanbul-summary': 'Istanbul json-summary report',
  'coverage.py': 'coverage.py JSON report',
  go: 'Go cover profile',
};

/** A report that cannot be read; `line` (1-based) for the text formats. */
export class CoverageReportError extends Error {
  override readonly name = 'CoverageReportError';
  constructor(
    readonly format: CoverageFormat | undefined,
    readonly problem: string,
    readonly line?: number,
  ) {
    super(`${format ? FORMAT_NAMES[format] : 'coverage report'}: ${line !== undefined ? `line ${line}: ` : ''}${problem}`);
  }
}

export function metric(covered: number, total: number): Metric {
  return { covered, total, pct: total === 0 ? 100 : Math.round((covered / total) * 10000) / 100 };
}

// ---- lcov ---------------------------------------------------------------------------------------

const LCOV_KEYS = new Set(['TN', 'VER', 'SF', 'DA', 'LF', 'LH', 'BRDA', 'BRF', 'BRH', 'FN', 'FNDA', 'FNL', 'FNA', 'FNF', 'FNH', 'MCDC']);

interface LcovRecord {
  startLine: number;
  file: string;
  lf?: number;
  lh?: number;
  brf?: number;
  brh?: number;
  fnf?: number;
  fnh?: number;
  da: Map<number, boolean>;
  brda: Map<string, boolean>;
  /** Function name (FN/FNDA) or `#<index>` (FNL/FNA) -> hit. */
  fns: Map<string, boolean>;
}

/**
 * lcov tracefile (geninfo(1) format, as lcov, c8/Istanbul, coverage.py, grcov... write it): LH/LF,
 * BRH/BRF and FNH/FNF summed over the records; a record without a summary line is counted from its
 * DA, BRDA and FN/FNDA (or FNL/FNA) lines. Branches and functions are absent when no record has any.
 */
export function parseLcov(text: string): Coverage {
  const fail = (problem: string, line?: number): never => {
    throw new CoverageReportError('lcov', problem, line);
  };
  if (text.trim() === '') fail('the report is empty');
  const records: LcovRecord[] = [];
  let current: LcovRecord | undefined;
  let sawBranches = false;
  let sawFunctions = false;
  const lines = text.split('\n');

  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (line === 'end_of_record') {
      if (!current) fail('end_of_record without a record (no SF: before it)', n);
      closeLcovRecord(current!, n, fail);
      records.push(current!);
      current = undefined;
      continue;
    }
    const m = /^([A-Za-z_]+):(.*)$/.exec(line);
    if (!m) fail('not a KEY:value line', n);
    const key = m![1]!;
    const value = m![2]!;
    const count = (what: string): number => {
      if (!/^\d+$/.test(value)) fail(`${key} must be a non-negative integer (${what})`, n);
      return Number(value);
    };
    const fields = (min: number, shape: string): string[] => {
      const f = value.split(',');
      if (f.length < min || f.some((x, j) => j < min - 1 && x === '')) fail(`${key} must be ${shape}`, n);
      return f;
    };
    const int = (s: string | undefined, shape: string): number => {
      if (s === undefined || !/^\d+$/.test(s)) fail(`${key} must be ${shape}`, n);
      return Number(s);
    };

    if (key === 'TN' || key === 'VER') continue;
    if (key === 'SF') {
      if (current) fail(`SF: inside the record that starts at line ${current.startLine} (missing end_of_record)`, n);
      if (value === '') fail('SF: names no file', n);
      current = { startLine: n, file: value, da: new Map(), brda: new Map(), fns: new Map() };
      continue;
    }
    // Only known keys are named: an unknown one is text of whatever file this is.
    if (!current) fail(`${LCOV_KEYS.has(key) ? `${key}:` : 'a line'} before any SF: record`, n);
    const r = current!;
    switch (key) {
      case 'DA': {
        const shape = 'DA:<line>,<count>';
        const f = fields(2, shape);
        const at = int(f[0], shape);
        const hits = int(f[1], shape);
        r.da.set(at, (r.da.get(at) ?? false) || hits > 0);
        break;
      }
      case 'LF':
        r.lf = count('lines found');
        break;
      case 'LH':
        r.lh = count('lines hit');
        break;
      case 'BRDA': {
        const shape = 'BRDA:<line>,<block>,<branch>,<taken>';
        const f = fields(4, shape);
        int(f[0], shape);
        const taken = f[f.length - 1]!;
        if (taken !== '-' && !/^\d+$/.test(taken)) fail(`${key} must be ${shape} (taken: a count or -)`, n);
        const id = f.slice(0, -1).join(',');
        sawBranches = true;
        r.brda.set(id, (r.brda.get(id) ?? false) || (taken !== '-' && Number(taken) > 0));
        break;
      }
      case 'BRF':
        sawBranches = true;
        r.brf = count('branches found');
        break;
      case 'BRH':
        sawBranches = true;
        r.brh = count('branches hit');
        break;
      case 'FN': {
        // FN:<start>,<name> or (lcov 2) FN:<start>,<end>,<name>; names may hold commas.
        const shape = 'FN:<line>,<name>';
        const f = fields(2, shape);
        int(f[0], shape);
        const rest = f.slice(1);
        const name = (rest.length > 1 && /^\d+$/.test(rest[0]!) ? rest.slice(1) : rest).join(',');
        sawFunctions = true;
        if (!r.fns.has(name)) r.fns.set(name, false);
        break;
      }
      case 'FNDA': {
        const shape = 'FNDA:<count>,<name>';
        const f = fields(2, shape);
        const hits = int(f[0], shape);
        const name = f.slice(1).join(',');
        sawFunctions = true;
        r.fns.set(name, (r.fns.get(name) ?? false) || hits > 0);
        break;
      }
      case 'FNL': {
        const shape = 'FNL:<index>,<line>[,<end line>]';
        const f = fields(2, shape);
        const index = int(f[0], shape);
        int(f[1], shape);
        sawFunctions = true;
        if (!r.fns.has(`#${index}`)) r.fns.set(`#${index}`, false);
        break;
      }
      case 'FNA': {
        const shape = 'FNA:<index>,<count>,<name>';
        const f = fields(3, shape);
        const index = int(f[0], shape);
        const hits = int(f[1], shape);
        sawFunctions = true;
        r.fns.set(`#${index}`, (r.fns.get(`#${index}`) ?? false) || hits > 0);
        break;
      }
      case 'FNF':
        sawFunctions = true;
        r.fnf = count('functions found');
        break;
      case 'FNH':
        sawFunctions = true;
        r.fnh = count('functions hit');
        break;
      default:
        // Other records (MCDC, checksums, extensions) do not change line, branch or function figures.
        break;
    }
  }
  if (current) fail(`the record that starts at line ${current.startLine} has no end_of_record (truncated report?)`, lines.length);
  if (records.length === 0) fail('no SF: records');

  const sum = (pick: (r: LcovRecord) => [number, number]): Metric => {
    let covered = 0;
    let total = 0;
    for (const r of records) {
      const [c, t] = pick(r);
      covered += c;
      total += t;
    }
    return metric(covered, total);
  };
  const hitsOf = (m: Map<unknown, boolean>): [number, number] => [[...m.values()].filter(Boolean).length, m.size];
  return {
    format: 'lcov',
    lines: sum((r) => (r.lf !== undefined && r.lh !== undefined ? [r.lh, r.lf] : hitsOf(r.da))),
    ...(sawBranches ? { branches: sum((r) => (r.brf !== undefined && r.brh !== undefined ? [r.brh, r.brf] : hitsOf(r.brda))) } : {}),
    ...(sawFunctions ? { functions: sum((r) => (r.fnf !== undefined && r.fnh !== undefined ? [r.fnh, r.fnf] : hitsOf(r.fns))) } : {}),
    files: new Set(records.map((r) => r.file)).size,
  };
}

function closeLcovRecord(r: LcovRecord, n: number, fail: (problem: string, line?: number) => never): void {
  const pairs: [string, number | undefined, string, number | undefined][] = [
    ['LH', r.lh, 'LF', r.lf],
    ['BRH', r.brh, 'BRF', r.brf],
    ['FNH', r.fnh, 'FNF', r.fnf],
  ];
  for (const [hitKey, hit, foundKey, found] of pairs) {
    if (hit !== undefined && found !== undefined && hit > found) {
      fail(`${hitKey} (${hit}) is greater than ${foundKey} (${found}) in the record that starts at line ${r.startLine}`, n);
    }
  }
}

// ---- JSON reports -------------------------------------------------------------------------------

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function parseJson(format: CoverageFormat, text: string): Json {
  if (text.trim() === '') throw new CoverageReportError(format, 'the report is empty');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // The engine's message quotes the text; keep only where it broke.
    const where = /position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error).message)?.[0];
    throw new CoverageReportError(format, `not valid JSON${where ? ` (at ${where})` : ''}`);
  }
  if (!isObject(value)) throw new CoverageReportError(format, 'the report is not a JSON object');
  return value;
}

/** `{ total, covered }` counts at `path` in an Istanbul summary; undefined when absent. */
function istanbulMetric(total: Json, key: string): Metric | undefined {
  const m = total[key];
  if (m === undefined) return undefined;
  const where = `total.${key}`;
  if (!isObject(m)) throw new CoverageReportError('istanbul-summary', `${where} is not an object`);
  if (!isCount(m.total) || !isCount(m.covered)) {
    throw new CoverageReportError('istanbul-summary', `${where} needs non-negative integer "total" and "covered"`);
  }
  if (m.covered > m.total) throw new CoverageReportError('istanbul-summary', `${where}.covered (${m.covered}) is greater than its total (${m.total})`);
  return metric(m.covered, m.total);
}

/** Istanbul's json-summary reporter (c8, nyc, jest, vitest): `total.lines`, `.branches`, `.functions`. */
export function parseIstanbulSummary(text: string): Coverage {
  const report = parseJson('istanbul-summary', text);
  const total = report.total;
  if (!isObject(total)) throw new CoverageReportError('istanbul-summary', 'no "total" object');
  const lines = istanbulMetric(total, 'lines');
  if (!lines) throw new CoverageReportError('istanbul-summary', 'no "total.lines" entry');
  const branches = istanbulMetric(total, 'branches');
  const functions = istanbulMetric(total, 'functions');
  return {
    format: 'istanbul-summary',
    lines,
    ...(branches ? { branches } : {}),
    ...(functions ? { functions } : {}),
    files: Object.keys(report).filter((k) => k !== 'total').length,
  };
}

/**
 * coverage.py's `coverage json`: lines from totals.covered_lines / num_statements, branches from
 * covered_branches / num_branches (branch measurement only). Functions come from the per-file
 * "functions" regions of coverage.py 7.5 and later (a function with a line run counts as covered;
 * the "" region is module-level code, not a function); older reports have none.
 */
export function parseCoveragePy(text: string): Coverage {
  const fail = (problem: string): never => {
    throw new CoverageReportError('coverage.py', problem);
  };
  const report = parseJson('coverage.py', text);
  const totals = report.totals;
  if (!isObject(totals)) fail('no "totals" object');
  const t = totals as Json;
  if (!isCount(t.covered_lines) || !isCount(t.num_statements)) fail('totals needs non-negative integer "covered_lines" and "num_statements"');
  const coveredLines = t.covered_lines as number;
  const statements = t.num_statements as number;
  if (coveredLines > statements) fail(`totals.covered_lines (${coveredLines}) is greater than num_statements (${statements})`);

  let branches: Metric | undefined;
  if (t.num_branches !== undefined || t.covered_branches !== undefined) {
    if (!isCount(t.num_branches) || !isCount(t.covered_branches)) fail('totals needs non-negative integer "covered_branches" and "num_branches"');
    const covered = t.covered_branches as number;
    const total = t.num_branches as number;
    if (covered > total) fail(`totals.covered_branches (${covered}) is greater than num_branches (${total})`);
    branches = metric(covered, total);
  }

  if (!isObject(report.files)) fail('no "files" object');
  const files = report.files as Json;
  let functions: Metric | undefined;
  let fnCovered = 0;
  let fnTotal = 0;
  let hasFunctions = false;
  for (const [name, file] of Object.entries(files)) {
    if (!isObject(file)) fail(`files entry ${JSON.stringify(name)} is not an object`);
    const regions = (file as Json).functions;
    if (regions === undefined) continue;
    if (!isObject(regions)) fail(`the "functions" of files entry ${JSON.stringify(name)} is not an object`);
    hasFunctions = true;
    for (const [fn, region] of Object.entries(regions as Json)) {
      if (fn === '') continue;
      const summary = isObject(region) ? region.summary : undefined;
      if (!isObject(summary) || !isCount(summary.num_statements) || !isCount(summary.covered_lines)) {
        fail(`function ${JSON.stringify(fn)} of files entry ${JSON.stringify(name)} has no summary counts`);
      }
      const s = summary as { num_statements: number; covered_lines: number };
      if (s.num_statements === 0) continue; // nothing to run (all excluded)
      fnTotal++;
      if (s.covered_lines > 0) fnCovered++;
    }
  }
  if (hasFunctions) functions = metric(fnCovered, fnTotal);

  return {
    format: 'coverage.py',
    lines: metric(coveredLines, statements),
    ...(branches ? { branches } : {}),
    ...(functions ? { functions } : {}),
    files: Object.keys(files).length,
  };
}

// ---- Go -----------------------------------------------------------------------------------------

const GO_BLOCK = /^(.+):(\d+)\.(\d+),(\d+)\.(\d+) (\d+) (\d+)$/;

/**
 * `go test -coverprofile`: `mode: set|count|atomic`, then `file:l.c,l.c statements count` per
 * block. Statement coverage, reported as `lines` (Go profiles have nothing else). A block that
 * appears more than once (profiles of several test binaries, concatenated) counts once, as
 * `go tool cover` merges them.
 */
export function parseGoProfile(text: string): Coverage {
  const fail = (problem: string, line?: number): never => {
    throw new CoverageReportError('go', problem, line);
  };
  if (text.trim() === '') fail('the report is empty');
  const lines = text.split('\n');
  const blocks = new Map<string, { statements: number; hit: boolean }>();
  const files = new Set<string>();
  let sawMode = false;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (line.startsWith('mode:')) {
      const mode = line.slice(5).trim();
      if (mode !== 'set' && mode !== 'count' && mode !== 'atomic') fail('mode must be set, count or atomic', n);
      sawMode = true;
      continue;
    }
    if (!sawMode) fail('the profile does not start with a "mode:" line', n);
    const m = GO_BLOCK.exec(line);
    if (!m) fail('not a block line (file:line.col,line.col statements count)', n);
    const [, file, l1, c1, l2, c2, statements, count] = m!;
    const key = `${file}:${l1}.${c1},${l2}.${c2}`;
    const prev = blocks.get(key);
    const hit = Number(count) > 0;
    if (prev) prev.hit ||= hit;
    else blocks.set(key, { statements: Number(statements), hit });
    files.add(file!);
  }
  let covered = 0;
  let total = 0;
  for (const b of blocks.values()) {
    total += b.statements;
    if (b.hit) covered += b.statements;
  }
  return { format: 'go', lines: metric(covered, total), files: files.size };
}

// ---- any report ---------------------------------------------------------------------------------

const baseName = (fileName: string) => fileName.split(/[\\/]/).pop() ?? fileName;

/**
 * The format of a report, from its content first (a Go profile's `mode:` line, lcov's records, the
 * JSON reports' top-level keys), then from its name. Undefined when neither tells.
 */
export function detectFormat(fileName: string, text: string): CoverageFormat | undefined {
  const head = text.trimStart();
  if (/^mode:/.test(head)) return 'go';
  if (/^(TN|SF|VER):/.test(head)) return 'lcov';
  if (head.startsWith('{')) {
    try {
      const json: unknown = JSON.parse(text);
      if (isObject(json)) {
        if (isObject(json.totals)) return 'coverage.py';
        if (isObject(json.total)) return 'istanbul-summary';
      }
    } catch {
      // not JSON after all: the name decides
    }
  }
  const name = baseName(fileName).toLowerCase();
  if (name.endsWith('.info') || name.includes('lcov')) return 'lcov';
  if (name.endsWith('coverage-summary.json')) return 'istanbul-summary';
  if (name === 'coverage.json') return 'coverage.py';
  if (/\.(out|cov|coverprofile)$/.test(name)) return 'go';
  return undefined;
}

const PARSERS: Record<CoverageFormat, (text: string) => Coverage> = {
  lcov: parseLcov,
  'istanbul-summary': parseIstanbulSummary,
  'coverage.py': parseCoveragePy,
  go: parseGoProfile,
};

/** Parses a report of any supported format (detectFormat). Throws CoverageReportError. */
export function parseCoverage(fileName: string, text: string): Coverage {
  const format = detectFormat(fileName, text);
  if (!format) {
    let hint = '';
    try {
      const json: unknown = JSON.parse(text);
      const first = isObject(json) ? Object.values(json)[0] : undefined;
      if (isObject(first) && 'statementMap' in first) hint = '; an Istanbul coverage-final.json is not supported: use the json-summary reporter';
    } catch {
      // not JSON
    }
    throw new CoverageReportError(
      undefined,
      `cannot tell the format of ${baseName(fileName)} (lcov, Istanbul json-summary, coverage.py JSON or a Go cover profile)${hint}`,
    );
  }
  return PARSERS[format](text);
}

// ---- targets ------------------------------------------------------------------------------------

const NO_DATA: Record<CoverageMetricName, string> = { lines: 'line', branches: 'branch', functions: 'function' };

/**
 * Checks each target given (percent) against the report. A target the report cannot answer (no
 * data for that metric, or a report that covers no files) is a failure with actual null, never a
 * pass. A metric meets its target when its rounded percentage is at least the target.
 */
export function checkCoverage(coverage: Coverage, targets: CoverageTargets): CoverageCheck {
  const failures: CoverageFailure[] = [];
  for (const name of COVERAGE_METRICS) {
    const target = targets[name];
    if (target === undefined) continue;
    const m = coverage[name];
    if (coverage.files === 0) {
      failures.push({ metric: name, target, actual: null, message: `${name}: the report covers no files (target ${target}%)` });
    } else if (!m) {
      failures.push({ metric: name, target, actual: null, message: `${name}: the report has no ${NO_DATA[name]} data (target ${target}%)` });
    } else if (m.pct < target) {
      failures.push({ metric: name, target, actual: m.pct, message: `${name} ${m.pct}% < ${target}%` });
    }
  }
  return { passed: failures.length === 0, failures };
}

/** "coverage below target: lines 62.5% < 80%, branches: the report has no branch data (target 70%)". */
export function describeCoverageFailures(check: CoverageCheck): string {
  return `coverage below target: ${check.failures.map((f) => f.message).join(', ')}`;
}
