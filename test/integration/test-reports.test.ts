// The test generation engine's parsers on real reports, written at test time by the tools
// themselves in a temporary folder: jest (--json), Playwright (--reporter=json, tests without a
// browser page), pytest (--junitxml) and go test -json with testify (Debian's package, GOPATH mode,
// offline). Each suite has known passing, failing and skipped tests; the counts are compared with
// the tool's own summary where it prints one. Cypress cannot run here (its binary downloads from
// outside npm): its JUnit shape is a labelled synthesized file.
//
// The tools are required, not optional: a missing one fails its test with what to install (CI:
// `apt-get install -y python3-pytest golang-go golang-github-stretchr-testify-dev`; jest and
// @playwright/test are devDependencies).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGoTestJson, parseJUnitReports, parseJestReport, parsePlaywrightReport, parseTestReport } from '../../core/engines/testgen.ts';
import { parseXml } from '../../core/engines/junit.ts';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'node_modules/.bin');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xl-test-reports-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs a tool; its exit code is returned (failing suites exit non-zero), a missing program rejects with `missing`. */
function run(file: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; missing: string }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new Error(opts.missing));
      if (err && typeof err.code !== 'number') return reject(err);
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
    });
  });
}

async function project(name: string, files: Record<string, string>): Promise<string> {
  const cwd = join(dir, name);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(cwd, path, '..'), { recursive: true });
    await writeFile(join(cwd, path), content);
  }
  return cwd;
}

/** The interpreter the CI machine has pytest for (Debian's python3-pytest), else python3 on PATH. */
async function pytestPython(cwd: string): Promise<string> {
  for (const py of ['/usr/bin/python3', 'python3']) {
    const r = await run(py, ['-c', 'import pytest'], { cwd, missing: 'none' }).catch(() => undefined);
    if (r?.code === 0) return py;
  }
  throw new Error('pytest is missing: install it with `apt-get install -y python3-pytest`');
}

describe('parsers on real reports', () => {
  it('reads jest --json: passed, failed, skipped, and a test file that cannot run', async () => {
    const cwd = await project('jest', {
      'sum.js': 'module.exports = (a, b) => a + b;\n',
      'sum.test.js': "const sum = require('./sum');\ntest('adds', () => expect(sum(1, 2)).toBe(3));\ntest('breaks', () => expect(sum(1, 2)).toBe(4));\ntest.skip('later', () => {});\n",
      'broken.test.js': "const x = ;\n",
    });
    const r = await run(join(BIN, 'jest'), ['--ci', '--config={}', '--json', '--outputFile=report.json'], { cwd, missing: 'jest is missing: npm ci (a devDependency)' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Tests:\s+1 failed, 1 skipped, 1 passed, 3 total/); // jest's own count, without the broken file
    const parsed = parseJestReport(await readFile(join(cwd, 'report.json'), 'utf8'));
    expect(parsed).toMatchObject({ total: 4, passed: 1, failed: 2, skipped: 1 });
    expect(parsed.durationMs).toBeGreaterThan(0);
    expect(new Set(parsed.failures.map((f) => f.name))).toEqual(new Set(['breaks', join(cwd, 'broken.test.js')]));
    expect(parsed.failures.find((f) => f.name === 'breaks')!.message).toMatch(/Expected: 4\s+Received: 3/);
  });

  it('reads playwright --reporter=json, with describe blocks and without terminal colours', async () => {
    const cwd = await project('playwright', {
      'math.spec.js':
        "const { test, expect } = require('@playwright/test');\n" +
        "test('adds', async () => { expect(1 + 2).toBe(3); });\n" +
        "test.describe('group', () => {\n  test('breaks', async () => { expect(1 + 2).toBe(4); });\n  test.skip('later', async () => {});\n});\n",
    });
    await symlink(join(ROOT, 'node_modules'), join(cwd, 'node_modules'));
    const env = { ...process.env, PLAYWRIGHT_JSON_OUTPUT_NAME: join(cwd, 'report.json') };
    const r = await run(join(BIN, 'playwright'), ['test', '--reporter=json', `--output=${join(cwd, 'results')}`], { cwd, env, missing: 'playwright is missing: npm ci (@playwright/test is a devDependency)' });
    expect(r.code).toBe(1);
    const text = await readFile(join(cwd, 'report.json'), 'utf8');
    const stats = JSON.parse(text).stats; // the tool's own count
    const parsed = parsePlaywrightReport(text);
    expect(parsed).toMatchObject({ total: 3, passed: stats.expected, failed: stats.unexpected, skipped: stats.skipped });
    expect(parsed).toMatchObject({ passed: 1, failed: 1, skipped: 1 });
    expect(parsed.failures).toHaveLength(1);
    expect(parsed.failures[0]!.name).toBe('math.spec.js › group › breaks');
    expect(parsed.failures[0]!.message).toContain('Expected: 4');
    expect(parsed.failures[0]!.message).not.toContain('\u001b[');
  });

  it('reads pytest --junitxml: parametrized cases, a failure and a skip', async () => {
    const cwd = await project('pytest', {
      'test_calc.py':
        'import pytest\n\n\n@pytest.mark.parametrize("a,b,s", [(1, 2, 3), (2, 2, 4)])\ndef test_add(a, b, s):\n    assert a + b == s\n\n\n' +
        'def test_sub():\n    assert 5 - 3 == 3, "five minus three"\n\n\n@pytest.mark.skip(reason="later")\ndef test_later():\n    pass\n',
    });
    const py = await pytestPython(cwd);
    const r = await run(py, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--junitxml=report.xml'], { cwd, missing: 'pytest is missing: install it with `apt-get install -y python3-pytest`' });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/1 failed, 2 passed, 1 skipped/); // pytest's own count
    const parsed = parseJUnitReports([await readFile(join(cwd, 'report.xml'), 'utf8')]);
    expect(parsed).toMatchObject({ total: 4, passed: 2, failed: 1, skipped: 1 });
    expect(parsed.durationMs).toBeGreaterThan(0);
    expect(parsed.failures).toHaveLength(1);
    expect(parsed.failures[0]!.name).toBe('test_calc.test_sub');
    expect(parsed.failures[0]!.message).toContain('five minus three');
  });

  it('counts a pytest module that cannot be collected as a failure', async () => {
    const cwd = await project('pytest-broken', { 'test_broken.py': 'import does_not_exist\n' });
    const py = await pytestPython(cwd);
    const r = await run(py, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '--junitxml=report.xml'], { cwd, missing: 'pytest is missing' });
    expect(r.stdout).toMatch(/1 error/);
    const parsed = parseJUnitReports([await readFile(join(cwd, 'report.xml'), 'utf8')]);
    expect(parsed).toMatchObject({ total: 1, passed: 0, failed: 1 });
    expect(parsed.failures[0]!.message).toContain("No module named 'does_not_exist'");
  });

  it('reads go test -json with testify: leaf subtests, a failure with its message, a skip', async () => {
    const cwd = await project('go/calc', {
      'calc.go': 'package calc\n\nfunc Add(a, b int) int { return a + b }\n',
      'calc_test.go':
        'package calc\n\nimport (\n\t"testing"\n\n\t"github.com/stretchr/testify/assert"\n)\n\n' +
        'func TestAdd(t *testing.T) {\n\tcases := []struct{ name string; a, b, want int }{{"small", 1, 2, 3}, {"wrong", 2, 2, 5}}\n' +
        '\tfor _, c := range cases {\n\t\tt.Run(c.name, func(t *testing.T) { assert.Equal(t, c.want, Add(c.a, c.b), "sum of %d and %d", c.a, c.b) })\n\t}\n}\n\n' +
        'func TestLater(t *testing.T) { t.Skip("later") }\n\nfunc TestZero(t *testing.T) { assert.Zero(t, Add(0, 0)) }\n',
    });
    if (!existsSync('/usr/share/gocode/src/github.com/stretchr/testify')) throw new Error('testify is missing: install it with `apt-get install -y golang-github-stretchr-testify-dev`');
    const env = { ...process.env, GO111MODULE: 'off', GOPATH: `${join(dir, 'gopath')}:/usr/share/gocode`, GOCACHE: join(dir, 'gocache'), GOPROXY: 'off' };
    const r = await run('go', ['test', '-json', '.'], { cwd, env, missing: 'go is missing: install it with `apt-get install -y golang-go`' });
    expect(r.code).toBe(1);
    const parsed = parseGoTestJson(r.stdout);
    expect(parsed).toMatchObject({ total: 4, passed: 2, failed: 1, skipped: 1 });
    expect(parsed.failures).toHaveLength(1);
    expect(parsed.failures[0]!.name).toBe('TestAdd/wrong');
    expect(parsed.failures[0]!.message).toMatch(/expected: 5\s+actual\s*: 4/);
    expect(parsed.failures[0]!.message).toContain('sum of 2 and 2');
  });

  it('counts a go package that does not build as one failure', async () => {
    const cwd = await project('go/broken', { 'x.go': 'package x\n\nfunc F() int { return "no" }\n', 'x_test.go': 'package x\n\nimport "testing"\n\nfunc TestF(t *testing.T) { F() }\n' });
    const env = { ...process.env, GO111MODULE: 'off', GOPATH: join(dir, 'gopath'), GOCACHE: join(dir, 'gocache'), GOPROXY: 'off' };
    const r = await run('go', ['test', '-json', '.'], { cwd, env, missing: 'go is missing: install it with `apt-get install -y golang-go`' });
    expect(r.code).not.toBe(0);
    const parsed = parseGoTestJson(r.stdout);
    expect(parsed).toMatchObject({ total: 1, passed: 0, failed: 1 });
    expect(parsed.failures[0]!.message).toMatch(/^build failed/);
  });

  it('reads the JUnit report of a Cypress run (synthesized file), naming tests by their full title', async () => {
    const text = await readFile(join(ROOT, 'test/fixtures/test-reports/cypress-junit.xml'), 'utf8');
    const parsed = parseTestReport('cypress', [text]);
    expect(parsed).toEqual({
      total: 3,
      passed: 1,
      failed: 1,
      skipped: 1,
      durationMs: 2345,
      failures: [
        {
          name: 'login shows an error for a wrong password',
          message: expect.stringMatching(/^Timed out retrying after 4000ms: Expected to find content: 'Wrong password' but never did\.\nAssertionError/),
        },
      ],
    });
  });

  it('adds up the JUnit files of several Cypress specs', async () => {
    const text = await readFile(join(ROOT, 'test/fixtures/test-reports/cypress-junit.xml'), 'utf8');
    expect(parseTestReport('cypress', [text, text])).toMatchObject({ total: 6, passed: 2, failed: 2, skipped: 2 });
  });
});

describe('report errors', () => {
  it('says which report is broken and how', () => {
    expect(() => parseJestReport('{"numTotalTests": 1}')).toThrow(/^jest JSON report: numPassedTests: /);
    expect(() => parsePlaywrightReport('not json')).toThrow('playwright JSON report: not valid JSON');
    expect(() => parseJUnitReports(['<testsuite><testcase name="a">'])).toThrow(/JUnit XML report: <testcase> is not closed \(truncated report\?\)/);
    expect(() => parseJUnitReports(['<html></html>'])).toThrow('JUnit XML report: the root element is <html>, not <testsuites> or <testsuite>');
    expect(() => parseGoTestJson('{"Action": 3}\n')).toThrow(/^go test -json report: line 1: not a test event/);
    expect(() => parseTestReport('jest', [])).toThrow('jest-json report: expected one report file, found 0');
  });

  it('refuses a DOCTYPE rather than expanding entities', () => {
    expect(() => parseXml('<!DOCTYPE x [<!ENTITY a "aaaa">]><testsuite/>')).toThrow(/DOCTYPE and other declarations are not supported/);
  });

  it('decodes entities and CDATA in JUnit messages', () => {
    const r = parseJUnitReports(['<testsuite><testcase classname="m" name="t"><failure message="a &lt; b &amp;&#x20;c"><![CDATA[<raw>]]></failure></testcase></testsuite>']);
    expect(r.failures).toEqual([{ name: 'm.t', message: 'a < b & c\n<raw>' }]);
  });
});
