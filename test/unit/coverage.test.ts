// Coverage parsing and targets (core/engines/coverage.ts) on small inline reports, and the
// workspace step around them (agent/engines/coverage.ts) on temporary folders. The reports the
// tools themselves write are parsed in test/integration/coverage-reports.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeWorkspaceCoverage, applyCoverage } from '../../agent/engines/coverage.ts';
import type { DriverResult } from '../../agent/drivers/types.ts';
import {
  type Coverage,
  COVERAGE_REPORT_PATHS,
  CoverageReportError,
  checkCoverage,
  describeCoverageFailures,
  detectFormat,
  metric,
  parseCoverage,
  parseCoveragePy,
  parseGoProfile,
  parseIstanbulSummary,
  parseLcov,
} from '../../core/engines/coverage.ts';

const lcovLines = (...lines: string[]) => lines.join('\n') + '\n';
const errorOf = (fn: () => unknown): CoverageReportError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CoverageReportError);
    return err as CoverageReportError;
  }
  throw new Error('expected an error');
};

describe('metric', () => {
  it('rounds the percentage to 2 decimals, and is 100 for nothing to cover', () => {
    expect(metric(2, 3)).toEqual({ covered: 2, total: 3, pct: 66.67 });
    expect(metric(1, 3)).toEqual({ covered: 1, total: 3, pct: 33.33 });
    expect(metric(7, 11).pct).toBe(63.64);
    expect(metric(0, 0)).toEqual({ covered: 0, total: 0, pct: 100 });
    expect(metric(0, 5).pct).toBe(0);
  });
});

describe('parseLcov', () => {
  it('sums LH/LF, BRH/BRF and FNH/FNF over the records', () => {
    const text = lcovLines(
      'TN:',
      'SF:src/a.js',
      'FN:1,a',
      'FNDA:3,a',
      'FNF:1',
      'FNH:1',
      'DA:1,3',
      'DA:2,0',
      'LF:2',
      'LH:1',
      'BRDA:1,0,0,1',
      'BRDA:1,0,1,0',
      'BRF:2',
      'BRH:1',
      'end_of_record',
      'TN:',
      'SF:src/b.js',
      'FNF:3',
      'FNH:0',
      'LF:8',
      'LH:6',
      'BRF:0',
      'BRH:0',
      'end_of_record',
    );
    expect(parseLcov(text)).toEqual({
      format: 'lcov',
      lines: { covered: 7, total: 10, pct: 70 },
      branches: { covered: 1, total: 2, pct: 50 },
      functions: { covered: 1, total: 4, pct: 25 },
      files: 2,
    });
  });

  it('counts DA, BRDA and FNDA lines where a record has no summary lines', () => {
    const text = lcovLines(
      'SF:a.c',
      'FN:3,main',
      'FN:9,helper',
      'FNDA:1,main',
      'FNDA:0,helper',
      'DA:3,1',
      'DA:4,1',
      'DA:4,0', // the same line twice (merged runs): counted once, hit
      'DA:9,0',
      'BRDA:4,0,0,1',
      'BRDA:4,0,1,-', // "-": the block never ran
      'BRDA:5,1,0,0',
      'end_of_record',
    );
    expect(parseLcov(text)).toMatchObject({
      lines: { covered: 2, total: 3, pct: 66.67 },
      branches: { covered: 1, total: 3, pct: 33.33 },
      functions: { covered: 1, total: 2, pct: 50 },
      files: 1,
    });
  });

  it('reads lcov 2 records (VER, FN with an end line, FNL/FNA, expression branches)', () => {
    const text = lcovLines(
      'VER:2.0',
      'SF:x.py',
      'FN:1,4,f',
      'FNDA:2,f',
      'FNL:0,10,12',
      'FNA:0,0,g',
      'FNA:0,1,g_alias',
      'FNL:1,20',
      'FNA:1,0,h',
      'DA:1,1',
      'DA:2,0',
      'BRDA:2,0,(a > b) == True,1',
      'BRDA:2,0,(a > b) == False,0',
      'MCDC:2,2,t,1,0,a',
      'end_of_record',
    );
    expect(parseLcov(text)).toMatchObject({
      lines: { covered: 1, total: 2 },
      branches: { covered: 1, total: 2 },
      functions: { covered: 2, total: 3 }, // f hit, #0 hit through an alias, #1 not
    });
  });

  it('has no branches or functions when no record has any (lcov without --rc branch_coverage=1)', () => {
    const cov = parseLcov(lcovLines('SF:a.c', 'DA:1,1', 'DA:2,0', 'LF:2', 'LH:1', 'end_of_record'));
    expect(cov.lines).toEqual({ covered: 1, total: 2, pct: 50 });
    expect(cov.branches).toBeUndefined();
    expect(cov.functions).toBeUndefined();
  });

  it('takes CRLF line ends and counts one file once across records', () => {
    const text = 'SF:a.js\r\nLF:4\r\nLH:4\r\nend_of_record\r\nSF:a.js\r\nLF:2\r\nLH:0\r\nend_of_record\r\n';
    expect(parseLcov(text)).toMatchObject({ lines: { covered: 4, total: 6 }, files: 1 });
  });

  it.each([
    ['', undefined, /empty/],
    ['SF:a.js\nDA:1,1\nthis is not lcov\nend_of_record\n', 3, /not a KEY:value line/],
    ['SF:a.js\nDA:one,1\nend_of_record\n', 2, /DA must be DA:<line>,<count>/],
    ['SF:a.js\nDA:1\nend_of_record\n', 2, /DA must be/],
    ['SF:a.js\nLF:-3\nend_of_record\n', 2, /LF must be a non-negative integer/],
    ['SF:a.js\nBRDA:1,0,0,yes\nend_of_record\n', 2, /taken: a count or -/],
    ['DA:1,1\nend_of_record\n', 1, /DA: before any SF: record/],
    ['end_of_record\n', 1, /end_of_record without a record/],
    ['SF:a.js\nDA:1,1\nSF:b.js\nend_of_record\n', 3, /missing end_of_record/],
    ['SF:a.js\nDA:1,1\n', 3, /record that starts at line 1 has no end_of_record/],
    ['SF:a.js\nLF:2\nLH:3\nend_of_record\n', 4, /LH \(3\) is greater than LF \(2\)/],
    ['TN:\n\n', undefined, /no SF: records/],
  ])('rejects malformed input %j with a line number', (text, line, problem) => {
    const err = errorOf(() => parseLcov(text));
    expect(err.format).toBe('lcov');
    expect(err.line).toBe(line);
    expect(err.message).toMatch(/^lcov report: /);
    expect(err.message).toMatch(problem);
    if (line !== undefined) expect(err.message).toContain(`line ${line}: `);
  });

  it('never quotes the report in its errors', () => {
    const err = errorOf(() => parseLcov('root:x:0:0:root:/root:/bin/bash\nsecret-token-123\n'));
    expect(err.message).not.toContain('secret-token-123');
    expect(err.message).not.toContain('/bin/bash');
    expect(err.message).toBe('lcov report: line 1: a line before any SF: record');
  });
});

describe('parseIstanbulSummary', () => {
  const summary = {
    total: {
      lines: { total: 11, covered: 7, skipped: 0, pct: 63.63 },
      statements: { total: 12, covered: 7, skipped: 0, pct: 58.33 },
      functions: { total: 2, covered: 1, skipped: 0, pct: 50 },
      branches: { total: 3, covered: 2, skipped: 0, pct: 66.66 },
      branchesTrue: { total: 0, covered: 0, skipped: 0, pct: 'Unknown' },
    },
    '/w/app.mjs': { lines: { total: 11, covered: 7, skipped: 0, pct: 63.63 } },
    '/w/lib.mjs': { lines: { total: 0, covered: 0, skipped: 0, pct: 100 } },
  };

  it('reads total.lines, total.branches and total.functions (not Istanbul’s truncated pct)', () => {
    expect(parseIstanbulSummary(JSON.stringify(summary))).toEqual({
      format: 'istanbul-summary',
      lines: { covered: 7, total: 11, pct: 63.64 },
      branches: { covered: 2, total: 3, pct: 66.67 },
      functions: { covered: 1, total: 2, pct: 50 },
      files: 2,
    });
  });

  it('leaves out metrics the summary does not have', () => {
    const cov = parseIstanbulSummary(JSON.stringify({ total: { lines: { total: 4, covered: 4 } } }));
    expect(cov).toEqual({ format: 'istanbul-summary', lines: { covered: 4, total: 4, pct: 100 }, files: 0 });
  });

  it.each([
    ['', /empty/],
    ['{"total": {"lines": ', /not valid JSON/],
    ['[1, 2]', /not a JSON object/],
    ['{"app.js": {}}', /no "total" object/],
    ['{"total": {"statements": {"total": 1, "covered": 1}}}', /no "total.lines" entry/],
    ['{"total": {"lines": {"total": "11", "covered": 7}}}', /total.lines needs non-negative integer "total" and "covered"/],
    ['{"total": {"lines": {"total": 3, "covered": 4}}}', /total.lines.covered \(4\) is greater than its total \(3\)/],
    ['{"total": {"lines": {"total": 3, "covered": 1}, "branches": 5}}', /total.branches is not an object/],
  ])('rejects %j', (text, problem) => {
    const err = errorOf(() => parseIstanbulSummary(text));
    expect(err.format).toBe('istanbul-summary');
    expect(err.message).toMatch(/^Istanbul json-summary report: /);
    expect(err.message).toMatch(problem);
  });

  it('does not quote the text in a JSON syntax error', () => {
    const err = errorOf(() => parseIstanbulSummary('AKIA-secret-value and more'));
    expect(err.message).not.toContain('AKIA');
  });
});

describe('parseCoveragePy', () => {
  // coverage.py 6.5, `coverage run --branch`, as Debian 12 ships it: no function regions.
  const v6 = {
    meta: { version: '6.5.0', timestamp: '2026-01-01T00:00:00', branch_coverage: true, show_contexts: false },
    files: {
      'app.py': {
        executed_lines: [1, 2, 3, 7, 11],
        summary: { covered_lines: 5, num_statements: 7, percent_covered: 66.67, missing_lines: 2, excluded_lines: 0, num_branches: 2, num_partial_branches: 1, covered_branches: 1, missing_branches: 1 },
        missing_lines: [4, 8],
        excluded_lines: [],
      },
    },
    totals: { covered_lines: 5, num_statements: 7, percent_covered: 66.67, missing_lines: 2, excluded_lines: 0, num_branches: 2, num_partial_branches: 1, covered_branches: 1, missing_branches: 1 },
  };
  const region = (covered: number, statements: number) => ({ executed_lines: [], summary: { covered_lines: covered, num_statements: statements } });

  it('reads lines and branches from totals, and no functions from a report without regions', () => {
    expect(parseCoveragePy(JSON.stringify(v6))).toEqual({
      format: 'coverage.py',
      lines: { covered: 5, total: 7, pct: 71.43 },
      branches: { covered: 1, total: 2, pct: 50 },
      files: 1,
    });
  });

  it('has no branches without branch measurement', () => {
    const report = { meta: { branch_coverage: false }, files: { 'a.py': {} }, totals: { covered_lines: 3, num_statements: 4 } };
    expect(parseCoveragePy(JSON.stringify(report))).toEqual({ format: 'coverage.py', lines: { covered: 3, total: 4, pct: 75 }, files: 1 });
  });

  it('counts functions from the function regions of newer reports (the "" region is module code)', () => {
    const report = {
      meta: { format: 3, branch_coverage: false },
      files: {
        'b.py': {
          functions: { '': region(7, 7), c: region(0, 1), 'D.e': region(2, 3), 'D.f': region(0, 1), 'D.g': region(0, 0) },
        },
        'c.py': { functions: { '': region(1, 1), h: region(1, 1) } },
      },
      totals: { covered_lines: 11, num_statements: 14 },
    };
    expect(parseCoveragePy(JSON.stringify(report)).functions).toEqual({ covered: 2, total: 4, pct: 50 });
  });

  it.each([
    ['{}', /no "totals" object/],
    ['{"totals": {"covered_lines": 1}, "files": {}}', /"covered_lines" and "num_statements"/],
    ['{"totals": {"covered_lines": 5, "num_statements": 4}, "files": {}}', /covered_lines \(5\) is greater than num_statements \(4\)/],
    ['{"totals": {"covered_lines": 1, "num_statements": 4, "num_branches": 2}, "files": {}}', /"covered_branches" and "num_branches"/],
    ['{"totals": {"covered_lines": 1, "num_statements": 4}}', /no "files" object/],
    ['{"totals": {"covered_lines": 1, "num_statements": 4}, "files": {"a.py": {"functions": {"f": {}}}}}', /function "f" of files entry "a.py" has no summary counts/],
    ['not json', /not valid JSON/],
  ])('rejects %j', (text, problem) => {
    const err = errorOf(() => parseCoveragePy(text));
    expect(err.format).toBe('coverage.py');
    expect(err.message).toMatch(/^coverage.py JSON report: /);
    expect(err.message).toMatch(problem);
  });
});

describe('parseGoProfile', () => {
  it('counts statements of the blocks that ran, as lines', () => {
    const text = [
      'mode: set',
      'example.com/cov/cov.go:4.29,5.11 1 1',
      'example.com/cov/cov.go:8.2,8.11 1 0',
      'example.com/cov/cov.go:5.11,7.3 2 1',
      'example.com/cov/util.go:15.24,17.2 3 0',
      '',
    ].join('\n');
    expect(parseGoProfile(text)).toEqual({ format: 'go', lines: { covered: 3, total: 7, pct: 42.86 }, files: 2 });
  });

  it('counts a block repeated by concatenated profiles once, hit if any run hit it', () => {
    const text = ['mode: count', 'm/a.go:1.1,2.2 2 0', 'm/a.go:3.1,4.2 1 5', 'mode: count', 'm/a.go:1.1,2.2 2 3', 'm/a.go:3.1,4.2 1 0'].join('\n');
    expect(parseGoProfile(text).lines).toEqual({ covered: 3, total: 3, pct: 100 });
  });

  it('takes a profile of packages without statements', () => {
    expect(parseGoProfile('mode: atomic\n')).toEqual({ format: 'go', lines: { covered: 0, total: 0, pct: 100 }, files: 0 });
  });

  it.each([
    ['', undefined, /empty/],
    ['m/a.go:1.1,2.2 1 1\n', 1, /does not start with a "mode:" line/],
    ['mode: sometimes\n', 1, /mode must be set, count or atomic/],
    ['mode: set\nm/a.go:1.1,2.2 1 1\nm/a.go:1.1-2.2 1 1\n', 3, /not a block line/],
    ['mode: set\nm/a.go:1.1,2.2 1\n', 2, /not a block line/],
  ])('rejects %j with a line number', (text, line, problem) => {
    const err = errorOf(() => parseGoProfile(text));
    expect(err.format).toBe('go');
    expect(err.line).toBe(line);
    expect(err.message).toMatch(/^Go cover profile: /);
    expect(err.message).toMatch(problem);
  });
});

describe('detectFormat and parseCoverage', () => {
  it('tells the format from the content first', () => {
    expect(detectFormat('whatever.txt', 'mode: set\n')).toBe('go');
    expect(detectFormat('whatever.txt', 'TN:\nSF:a.js\n')).toBe('lcov');
    expect(detectFormat('whatever.txt', 'SF:a.js\n')).toBe('lcov');
    expect(detectFormat('coverage.json', '{"total": {"lines": {}}}')).toBe('istanbul-summary');
    expect(detectFormat('coverage-summary.json', '{"meta": {}, "files": {}, "totals": {}}')).toBe('coverage.py');
  });

  it('then from the name', () => {
    expect(detectFormat('coverage/lcov.info', 'garbage')).toBe('lcov');
    expect(detectFormat('coverage/coverage-summary.json', '{')).toBe('istanbul-summary');
    expect(detectFormat('coverage/coverage.json', '{"nothing": 1}')).toBe('coverage.py');
    expect(detectFormat('cover.out', '')).toBe('go');
    expect(detectFormat('coverage.out', 'junk')).toBe('go');
    expect(detectFormat('report.xml', '<coverage/>')).toBeUndefined();
  });

  it('every path looked for in a workspace has a format by its name alone', () => {
    for (const path of COVERAGE_REPORT_PATHS) expect(detectFormat(path, ''), path).toBeDefined();
  });

  it('parses by the detected format and reports what it cannot tell', () => {
    expect(parseCoverage('cover.out', 'mode: set\nm/a.go:1.1,2.2 1 1\n').format).toBe('go');
    expect(() => parseCoverage('coverage/lcov.info', 'garbage')).toThrow(/^lcov report: line 1: not a KEY:value line/);
    expect(() => parseCoverage('report.xml', '<coverage/>')).toThrow(/^coverage report: cannot tell the format of report.xml/);
    const final = JSON.stringify({ '/w/a.js': { path: '/w/a.js', statementMap: {}, s: {}, fnMap: {}, f: {}, branchMap: {}, b: {} } });
    expect(() => parseCoverage('coverage-final.json', final)).toThrow(/coverage-final.json is not supported: use the json-summary reporter/);
  });
});

describe('checkCoverage', () => {
  const cov: Coverage = {
    format: 'lcov',
    lines: metric(5, 8), // 62.5
    branches: metric(7, 10), // 70
    files: 3,
  };

  it('passes when every target is met; a target equal to the figure is met', () => {
    expect(checkCoverage(cov, { lines: 60, branches: 70 })).toEqual({ passed: true, failures: [] });
    expect(checkCoverage(cov, {})).toEqual({ passed: true, failures: [] });
    expect(checkCoverage(cov, { lines: 0 })).toEqual({ passed: true, failures: [] });
  });

  it('fails each metric below its target, with the figures', () => {
    const check = checkCoverage(cov, { lines: 80, branches: 70.5 });
    expect(check).toEqual({
      passed: false,
      failures: [
        { metric: 'lines', target: 80, actual: 62.5, message: 'lines 62.5% < 80%' },
        { metric: 'branches', target: 70.5, actual: 70, message: 'branches 70% < 70.5%' },
      ],
    });
    expect(describeCoverageFailures(check)).toBe('coverage below target: lines 62.5% < 80%, branches 70% < 70.5%');
  });

  it('fails a target for a metric the report does not have, with actual null', () => {
    const check = checkCoverage(cov, { functions: 50 });
    expect(check.passed).toBe(false);
    expect(check.failures).toEqual([
      { metric: 'functions', target: 50, actual: null, message: 'functions: the report has no function data (target 50%)' },
    ]);
    const go: Coverage = { format: 'go', lines: metric(1, 2), files: 1 };
    expect(checkCoverage(go, { lines: 50, branches: 0 }).failures).toEqual([
      { metric: 'branches', target: 0, actual: null, message: 'branches: the report has no branch data (target 0%)' },
    ]);
  });

  it('fails targets against a report that covers no files (its 100% of nothing proves nothing)', () => {
    const empty: Coverage = { format: 'go', lines: metric(0, 0), files: 0 };
    expect(checkCoverage(empty, { lines: 10 }).failures).toEqual([
      { metric: 'lines', target: 10, actual: null, message: 'lines: the report covers no files (target 10%)' },
    ]);
  });

  it('compares the rounded percentage', () => {
    const c: Coverage = { format: 'lcov', lines: metric(79999, 100000), files: 1 }; // 79.999 -> 80
    expect(checkCoverage(c, { lines: 80 }).passed).toBe(true);
    expect(checkCoverage({ ...c, lines: metric(7999, 10000) }, { lines: 80 }).passed).toBe(false); // 79.99
  });
});

// ---- the workspace step ---------------------------------------------------------------------------

describe('coverage in a workspace', () => {
  let root: string;
  let n = 0;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'xl-coverage-unit-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const LCOV = lcovLines('SF:a.js', 'FNF:2', 'FNH:1', 'LF:8', 'LH:5', 'BRF:4', 'BRH:3', 'end_of_record');
  const GO = 'mode: set\nm/a.go:1.1,2.2 3 1\nm/a.go:3.1,4.2 1 0\n';

  async function workspace(files: Record<string, string> = {}): Promise<string> {
    const dir = join(root, `ws-${n++}`);
    await mkdir(dir);
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    return dir;
  }
  const completed = (output: Record<string, unknown> = { ok: true }): DriverResult => ({ status: 'completed', output });

  it('finds nothing in an empty workspace', async () => {
    expect(await analyzeWorkspaceCoverage(await workspace(), { lines: 50 })).toBeUndefined();
  });

  it('takes the first report in COVERAGE_REPORT_PATHS order', async () => {
    const ws = await workspace({ 'cover.out': GO, 'lcov.info': LCOV, 'coverage/lcov.info': LCOV.replace('LH:5', 'LH:6') });
    const found = await analyzeWorkspaceCoverage(ws);
    expect(found).toEqual({ path: 'coverage/lcov.info', coverage: expect.objectContaining({ format: 'lcov', lines: metric(6, 8) }) });
    expect(found?.check).toBeUndefined();
    expect((await analyzeWorkspaceCoverage(ws, { lines: 80 }))?.check).toEqual({
      passed: false,
      failures: [{ metric: 'lines', target: 80, actual: 75, message: 'lines 75% < 80%' }],
    });
  });

  it('refuses a report that links out of the workspace, and a FIFO', async () => {
    const outside = await workspace({ 'lcov.info': LCOV });
    const ws = await workspace();
    await symlink(join(outside, 'lcov.info'), join(ws, 'lcov.info'));
    await expect(analyzeWorkspaceCoverage(ws)).rejects.toThrow('the coverage report lcov.info leads out of the workspace');
    const ws2 = await workspace();
    await symlink(outside, join(ws2, 'coverage'));
    await expect(analyzeWorkspaceCoverage(ws2)).rejects.toThrow('the coverage report coverage/lcov.info leads out of the workspace');
    const ws3 = await workspace();
    await symlink('../cover.out', join(ws3, 'coverage.out')); // dangling: ENOENT, not a report
    expect(await analyzeWorkspaceCoverage(ws3)).toBeUndefined();
    const ws4 = await workspace();
    execFileSync('mkfifo', [join(ws4, 'cover.out')]);
    await expect(analyzeWorkspaceCoverage(ws4)).rejects.toThrow('the coverage report cover.out is not a regular file');
  });

  it('follows a link that stays in the workspace', async () => {
    const ws = await workspace({ 'build/cover.out': GO });
    await symlink('build/cover.out', join(ws, 'cover.out'));
    expect((await analyzeWorkspaceCoverage(ws))?.coverage.lines).toEqual(metric(3, 4));
  });

  describe('applyCoverage', () => {
    const tester = { agentType: 'tester' as const };
    const coder = { agentType: 'coder' as const };

    it('adds coverage (and the check) to the output of a completed task', async () => {
      const ws = await workspace({ 'lcov.info': LCOV });
      expect(await applyCoverage(tester, ws, completed())).toEqual(
        completed({
          ok: true,
          coverage: { format: 'lcov', lines: metric(5, 8), branches: metric(3, 4), functions: metric(1, 2), files: 1 },
        }),
      );
      const withTargets = await applyCoverage({ ...coder, coverageTargets: { lines: 60, branches: 75 } }, ws, completed());
      expect(withTargets).toEqual(
        completed({
          ok: true,
          coverage: { format: 'lcov', lines: metric(5, 8), branches: metric(3, 4), functions: metric(1, 2), files: 1 },
          coverageCheck: { passed: true, failures: [] },
        }),
      );
    });

    it('fails a task that misses its targets as a validation error', async () => {
      const ws = await workspace({ 'cover.out': GO });
      const cost = { usd: 0.5, inputTokens: 1, outputTokens: 2, turns: 3 };
      expect(await applyCoverage({ ...tester, coverageTargets: { lines: 80, functions: 50 } }, ws, { ...completed(), cost })).toEqual({
        status: 'failed',
        error: {
          type: 'validation',
          message: 'coverage below target: lines 75% < 80%, functions: the report has no function data (target 50%) (cover.out)',
        },
        cost,
      });
    });

    it('fails a task with targets whose workspace has no report, naming the paths looked at', async () => {
      const result = await applyCoverage({ ...coder, coverageTargets: { lines: 1 } }, await workspace(), completed());
      expect(result.status).toBe('failed');
      if (result.status !== 'failed') return;
      expect(result.error.type).toBe('validation');
      expect(result.error.message).toBe(
        'coverage targets could not be checked: no coverage report in the workspace (looked for coverage/coverage-summary.json, coverage/lcov.info, lcov.info, coverage.json, coverage/coverage.json, cover.out, coverage.out)',
      );
    });

    it('fails a task with targets whose report is malformed; a tester without targets only notes it', async () => {
      const ws = await workspace({ 'coverage.json': '{"totals": {}}' });
      expect(await applyCoverage({ ...tester, coverageTargets: { lines: 1 } }, ws, completed())).toEqual({
        status: 'failed',
        error: {
          type: 'validation',
          message: 'coverage targets could not be checked: coverage.py JSON report: totals needs non-negative integer "covered_lines" and "num_statements"',
        },
      });
      expect(await applyCoverage(tester, ws, completed())).toEqual(
        completed({ ok: true, coverageError: 'coverage.py JSON report: totals needs non-negative integer "covered_lines" and "num_statements"' }),
      );
    });

    it('leaves alone a tester without a report, other agent types without targets, and failed runs', async () => {
      expect(await applyCoverage(tester, await workspace(), completed())).toEqual(completed());
      const ws = await workspace({ 'lcov.info': LCOV });
      expect(await applyCoverage(coder, ws, completed())).toEqual(completed());
      const failed: DriverResult = { status: 'failed', error: { type: 'permanent', message: 'tests failed' } };
      expect(await applyCoverage({ ...tester, coverageTargets: { lines: 100 } }, ws, failed)).toBe(failed);
    });
  });
});
