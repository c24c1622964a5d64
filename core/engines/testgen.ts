// The test generation engine (design document, "Specialized Engines"): per-level and per-framework
// guidance for a tester's prompt, the command that runs a framework with a machine-readable
// reporter (and coverage where the framework has it, for core/engines/coverage.ts), and parsers of
// those reports into one shape. Pure: the agent runs the command (agent/engines/testgen.ts).
import * as z from 'zod';
import { type Language } from './codegen.ts';
import { type XmlElement, parseXml } from './junit.ts';

export const TEST_LEVELS = ['unit', 'integration', 'e2e'] as const;
export type TestLevel = (typeof TEST_LEVELS)[number];

export const TEST_FRAMEWORKS = ['jest', 'cypress', 'playwright', 'pytest', 'testify'] as const;
export type TestFramework = (typeof TEST_FRAMEWORKS)[number];

export const TEST_FRAMEWORK_LANGUAGES: Record<TestFramework, readonly Language[]> = {
  jest: ['javascript', 'typescript'],
  cypress: ['javascript', 'typescript'],
  playwright: ['javascript', 'typescript'],
  pytest: ['python'],
  testify: ['go'],
};

/** The level a tester's capability implies when `tests.level` is not given. */
export const CAPABILITY_LEVELS: Partial<Record<string, TestLevel>> = {
  'unit-testing': 'unit',
  'integration-testing': 'integration',
};

export interface TestsField {
  level?: TestLevel;
  framework: TestFramework;
  command?: string;
}

export interface TestSpec {
  level: TestLevel;
  framework: TestFramework;
  /** The task's own command, replacing the default one. */
  command?: string;
}

/** A task's tests with the level resolved; undefined when it has none. */
export function testSpec(task: { tests?: TestsField; capability?: string }): TestSpec | undefined {
  if (!task.tests) return undefined;
  const level = task.tests.level ?? (task.capability ? CAPABILITY_LEVELS[task.capability] : undefined);
  if (!level) return undefined; // refused at submission (testsIssues)
  return { level, framework: task.tests.framework, ...(task.tests.command ? { command: task.tests.command } : {}) };
}

/** Plan problems of a task's `tests` (paths relative to the task). */
export function testsIssues(task: { tests?: TestsField; capability?: string; codegen?: { language: Language } }): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  const tests = task.tests;
  if (!tests) return issues;
  if (!tests.level && !(task.capability && CAPABILITY_LEVELS[task.capability])) {
    issues.push({ path: ['tests', 'level'], message: 'required unless the capability is unit-testing or integration-testing' });
  }
  const languages = TEST_FRAMEWORK_LANGUAGES[tests.framework];
  if (task.codegen && !languages.includes(task.codegen.language)) {
    issues.push({ path: ['tests', 'framework'], message: `${tests.framework} tests ${languages.join(' or ')} code, not ${task.codegen.language} (codegen.language)` });
  }
  return issues;
}

// ---- prompts ------------------------------------------------------------------------------------

export const LEVEL_GUIDANCE: Record<TestLevel, string> = {
  unit: [
    '- Test one function, class or component at a time, in isolation: no network, no real services, files only in temporary folders.',
    '- Replace only true boundaries (clock, network, randomness) with fakes; never mock the unit under test.',
    '- One behaviour per test, named as a sentence; cover edge cases (empty, boundary values, invalid input, errors thrown).',
  ].join('\n'),
  integration: [
    '- Test several real parts together through their public interfaces: modules with their real collaborators, an HTTP API through a server started by the test, a database or emulator running locally.',
    '- Each test sets up and tears down its own data so tests can run in any order; no dependence on external services that are not started by the tests.',
    '- Assert observable outcomes (responses, stored records, emitted events), not internal calls.',
  ].join('\n'),
  e2e: [
    '- Drive the application as a user does: through its UI or its public API, from start to finish of a user journey.',
    '- Stable selectors (roles, labels, data-testid), never CSS paths that change with styling; wait for conditions, never fixed sleeps.',
    '- Keep journeys independent (fresh state per test) and few: the critical paths, each asserting what the user sees.',
  ].join('\n'),
};

export const FRAMEWORK_TEST_GUIDANCE: Record<TestFramework, string> = {
  jest: [
    '- Test files `*.test.js`/`*.test.ts` beside the code or under `__tests__/`; `describe`/`it`/`expect` globals.',
    '- CommonJS `require` unless the project already runs Jest with ESM or a transform (babel-jest, ts-jest): Jest does not transform TypeScript or ESM by itself.',
    '- `jest.fn()`/`jest.spyOn` only at boundaries, restored after each test; fake timers for time; `await expect(p).rejects` for promises.',
  ].join('\n'),
  cypress: [
    '- Specs in `cypress/e2e/*.cy.js` (or .cy.ts) with a `cypress.config.js` at the root naming the baseUrl.',
    '- `cy.get("[data-testid=...]")`/`cy.contains`, `cy.intercept` for network stubs; never `cy.wait(<ms>)`; each spec starts from `cy.visit`.',
  ].join('\n'),
  playwright: [
    '- Specs `*.spec.ts`/`*.spec.js` under `tests/` (with a `playwright.config.ts` when the app needs a baseURL or webServer), importing `test` and `expect` from `@playwright/test`.',
    '- Locators by role, label or test id (`page.getByRole`), web-first assertions (`await expect(locator).toBeVisible()`); the `request` fixture for API tests.',
  ].join('\n'),
  pytest: [
    '- Files `tests/test_*.py` (or `test_*.py` beside the code), functions `test_*` with plain `assert`; fixtures in `conftest.py`.',
    '- `@pytest.mark.parametrize` for cases, `tmp_path` and `monkeypatch` fixtures instead of hand-made temp files or patching, `pytest.raises` for errors.',
  ].join('\n'),
  testify: [
    '- `*_test.go` files in the package under test, `func TestXxx(t *testing.T)`, table-driven with `t.Run` subtests.',
    '- `github.com/stretchr/testify/assert` for checks and `require` when the test cannot go on; `suite` for shared setup in integration tests.',
  ].join('\n'),
};

const LEVEL_NAMES: Record<TestLevel, string> = { unit: 'unit', integration: 'integration', e2e: 'end-to-end (e2e)' };

export const TESTGEN_ANSWER = '{"summary": "<what you tested and how>", "files": ["<test files you wrote>"]}';

export function testgenPrompt(spec: TestSpec): string {
  return [
    `## Test generation: ${LEVEL_NAMES[spec.level]} tests with ${spec.framework}`,
    `Write ${spec.level} tests using ${spec.framework} in the working directory for what the task names.`,
    `### ${spec.level} tests\n${LEVEL_GUIDANCE[spec.level]}`,
    `### ${spec.framework}\n${FRAMEWORK_TEST_GUIDANCE[spec.framework]}`,
    [
      '### When you are done',
      `After you finish, the layer runs the tests itself with: ${spec.command ?? DEFAULT_TEST_COMMAND_SUMMARY[spec.framework]}`,
      'The task fails when any test fails or when no test runs, so run them yourself first when you can and make them pass (fix the tests, or report a real defect in your summary).',
      `End your answer with one line that is only this JSON object: ${TESTGEN_ANSWER}`,
    ].join('\n'),
  ].join('\n\n');
}

// ---- commands -----------------------------------------------------------------------------------

/** What the prompt tells the model about the run (the full script is below). */
const DEFAULT_TEST_COMMAND_SUMMARY: Record<TestFramework, string> = {
  jest: '`jest --ci --json --coverage` (node_modules/.bin/jest, else jest on PATH)',
  cypress: '`cypress run --reporter junit` (node_modules/.bin/cypress, else cypress on PATH)',
  playwright: '`playwright test --reporter=json` (node_modules/.bin/playwright, else playwright on PATH)',
  pytest: '`python3 -m pytest --junitxml` (under coverage.py when it is installed)',
  testify: '`go test -json -coverprofile=coverage.out ./...` (GOPATH mode, with /usr/share/gocode, when there is no go.mod)',
};

/** The report the engine reads: JSON (jest, playwright), JUnit XML (pytest, cypress), a JSON event stream (go). */
export const REPORT_FORMATS: Record<TestFramework, 'jest-json' | 'playwright-json' | 'junit-xml' | 'go-test-json'> = {
  jest: 'jest-json',
  playwright: 'playwright-json',
  pytest: 'junit-xml',
  cypress: 'junit-xml',
  testify: 'go-test-json',
};

export const REPORT_FILE: Record<TestFramework, string> = {
  jest: 'report.json',
  playwright: 'report.json',
  pytest: 'report.xml',
  cypress: 'report.xml',
  testify: 'report.jsonl',
};

/** A node tool from the workspace's node_modules/.bin, else PATH; exit 127 when neither has it. */
const nodeTool = (name: string) =>
  `if [ -x node_modules/.bin/${name} ]; then T=node_modules/.bin/${name}; elif command -v ${name} >/dev/null 2>&1; then T=${name}; ` +
  `else echo "${name} is not installed (neither node_modules/.bin/${name} nor ${name} on PATH)" >&2; exit 127; fi`;

/**
 * The shell script that runs a framework in the workspace (as the task's user). It writes the
 * report into $XL_TEST_REPORT_DIR (the file $XL_TEST_REPORT, or one file per spec for Cypress) and
 * coverage where the framework has it: jest json-summary and lcov under coverage/, coverage.py's
 * coverage.json, go's coverage.out (COVERAGE_REPORT_PATHS). A task's own `tests.command` replaces
 * the part after the `mkdir` and must write the same report.
 */
export function testCommand(spec: TestSpec): string {
  const prelude = 'mkdir -p "$XL_TEST_REPORT_DIR" || exit 1';
  if (spec.command) return `${prelude}\n${spec.command}`;
  switch (spec.framework) {
    case 'jest':
      // Jest refuses to run without a configuration: an empty one when the project has none.
      return [
        prelude,
        nodeTool('jest'),
        'set -- ; if [ ! -f package.json ] && ! ls jest.config.* >/dev/null 2>&1; then set -- --config={}; fi',
        // --passWithNoTests: an empty run still writes its report, and the engine says "no test ran".
        '"$T" "$@" --ci --passWithNoTests --json --outputFile="$XL_TEST_REPORT" --coverage --coverageReporters=json-summary --coverageReporters=lcovonly',
      ].join('\n');
    case 'playwright':
      return `${prelude}\n${nodeTool('playwright')}\nPLAYWRIGHT_JSON_OUTPUT_NAME="$XL_TEST_REPORT" "$T" test --reporter=json --output="$XL_TEST_REPORT_DIR/test-results"`;
    case 'cypress':
      return `${prelude}\n${nodeTool('cypress')}\n"$T" run --reporter junit --reporter-options "mochaFile=$XL_TEST_REPORT_DIR/cypress-[hash].xml"`;
    case 'pytest':
      // Debian's interpreter first (python3-pytest), then whatever python3 is on PATH.
      return [
        prelude,
        'P=; for c in /usr/bin/python3 python3; do if "$c" -c "import pytest" >/dev/null 2>&1; then P=$c; break; fi; done',
        '[ -n "$P" ] || { echo "pytest is not installed (no python3 that can import pytest)" >&2; exit 127; }',
        // Caches and coverage data stay out of the workspace's files; coverage.json is for the coverage engine.
        'export COVERAGE_FILE="$XL_TEST_REPORT_DIR/coverage.data" PYTHONDONTWRITEBYTECODE=1',
        'if "$P" -c "import coverage" >/dev/null 2>&1; then',
        '  "$P" -m coverage run -m pytest -q -p no:cacheprovider --junitxml="$XL_TEST_REPORT"; rc=$?',
        '  "$P" -m coverage json -q -o coverage.json >&2',
        '  exit $rc',
        'fi',
        'exec "$P" -m pytest -q -p no:cacheprovider --junitxml="$XL_TEST_REPORT"',
      ].join('\n');
    case 'testify':
      return [
        prelude,
        'command -v go >/dev/null 2>&1 || { echo "go is not installed (no go on PATH)" >&2; exit 127; }',
        // The build cache stays out of the workspace's files (the engine removes its report folder).
        'export GOCACHE="$XL_TEST_REPORT_DIR/go-build"',
        'if [ -f go.mod ]; then exec go test -json -coverprofile=coverage.out ./... > "$XL_TEST_REPORT"; fi',
        // No module: GOPATH mode, with Debian's packaged libraries (golang-github-stretchr-testify-dev).
        'GO111MODULE=off GOPATH="$XL_TEST_REPORT_DIR/gopath:/usr/share/gocode" exec go test -json -coverprofile=coverage.out . > "$XL_TEST_REPORT"',
      ].join('\n');
  }
}

// ---- results ------------------------------------------------------------------------------------

export interface TestFailure {
  name: string;
  message: string;
}

export interface TestResults {
  framework: TestFramework;
  level: TestLevel;
  total: number;
  passed: number;
  failed: number;
  skipped: number;
  durationMs?: number;
  /** The first MAX_FAILURES failures, each message cut to MESSAGE_MAX characters. */
  failures: TestFailure[];
}

/** What a parser reads from a report (the engine adds framework and level). */
export type ReportCounts = Omit<TestResults, 'framework' | 'level'>;

export const MAX_FAILURES = 50;
export const MESSAGE_MAX = 2000;

export class TestReportError extends Error {
  override readonly name = 'TestReportError';
  constructor(
    readonly format: string,
    readonly problem: string,
  ) {
    super(`${format} report: ${problem}`);
  }
}

// Terminal colours in messages (jest, playwright) mean nothing in a task result.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;
const clean = (s: string) => {
  const t = s.replace(ANSI, '').trim();
  return t.length > MESSAGE_MAX ? t.slice(0, MESSAGE_MAX - 1) + '…' : t;
};

function counts(failures: TestFailure[], c: { total: number; passed: number; failed: number; skipped: number; durationMs?: number }): ReportCounts {
  return {
    total: c.total,
    passed: c.passed,
    failed: c.failed,
    skipped: c.skipped,
    ...(c.durationMs !== undefined && Number.isFinite(c.durationMs) ? { durationMs: Math.max(0, Math.round(c.durationMs)) } : {}),
    failures: failures.slice(0, MAX_FAILURES).map((f) => ({ name: f.name, message: clean(f.message) || '(no message)' })),
  };
}

function parseJsonReport<T>(format: string, text: string, schema: z.ZodType<T>): T {
  if (text.trim() === '') throw new TestReportError(format, 'the report is empty');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TestReportError(format, 'not valid JSON');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new TestReportError(format, `${issue.path.length ? issue.path.join('.') : 'the report'}: ${issue.message}`);
  }
  return parsed.data;
}

const count = z.number().int().min(0);

const JestReportSchema = z.object({
  numTotalTests: count,
  numPassedTests: count,
  numFailedTests: count,
  numPendingTests: count,
  numTodoTests: count.optional(),
  numRuntimeErrorTestSuites: count.optional(),
  startTime: z.number().optional(),
  testResults: z.array(
    z.object({
      name: z.string(),
      status: z.string(),
      message: z.string().optional(),
      endTime: z.number().optional(),
      testExecError: z.unknown().optional(),
      assertionResults: z.array(
        z.object({
          fullName: z.string().optional(),
          title: z.string(),
          status: z.string(),
          failureMessages: z.array(z.string()).nullish(),
        }),
      ),
    }),
  ),
});

/**
 * Jest's `--json` report. A test file that could not run (a syntax error, a failing import) has no
 * assertion results: it counts as one failed test named after the file.
 */
export function parseJestReport(text: string): ReportCounts {
  const r = parseJsonReport('jest JSON', text, JestReportSchema);
  const failures: TestFailure[] = [];
  let suiteErrors = 0;
  let endTime: number | undefined;
  for (const suite of r.testResults) {
    if (suite.endTime !== undefined) endTime = Math.max(endTime ?? 0, suite.endTime);
    for (const a of suite.assertionResults) {
      if (a.status === 'failed') failures.push({ name: a.fullName || a.title, message: (a.failureMessages ?? []).join('\n') });
    }
    if (suite.status === 'failed' && suite.assertionResults.length === 0) {
      suiteErrors++;
      failures.push({ name: suite.name, message: suite.message ?? 'the test file could not run' });
    }
  }
  return counts(failures, {
    total: r.numTotalTests + suiteErrors,
    passed: r.numPassedTests,
    failed: r.numFailedTests + suiteErrors,
    skipped: r.numPendingTests + (r.numTodoTests ?? 0),
    ...(r.startTime !== undefined && endTime !== undefined ? { durationMs: endTime - r.startTime } : {}),
  });
}

interface PwSuite {
  title: string;
  specs?: { title: string; tests: { projectName?: string; status: string; results: { error?: { message?: string }; errors?: { message?: string }[] }[] }[] }[];
  suites?: PwSuite[];
}

const PwErrorSchema = z.object({ message: z.string().optional() });
const PwSuiteSchema: z.ZodType<PwSuite> = z.lazy(() =>
  z.object({
    title: z.string(),
    specs: z
      .array(
        z.object({
          title: z.string(),
          tests: z.array(
            z.object({
              projectName: z.string().optional(),
              status: z.string(),
              results: z.array(z.object({ error: PwErrorSchema.optional(), errors: z.array(PwErrorSchema).optional() })),
            }),
          ),
        }),
      )
      .optional(),
    suites: z.array(PwSuiteSchema).optional(),
  }),
);
const PlaywrightReportSchema = z.object({
  suites: z.array(PwSuiteSchema),
  errors: z.array(PwErrorSchema).optional(),
  stats: z.object({ duration: z.number().optional() }).optional(),
});

/**
 * Playwright's JSON reporter: one test per spec and project. Expected and flaky (passed on retry)
 * tests pass, unexpected ones fail, skipped ones are skipped. Errors outside tests (a spec file
 * that does not load) are failures too.
 */
export function parsePlaywrightReport(text: string): ReportCounts {
  const r = parseJsonReport('playwright JSON', text, PlaywrightReportSchema);
  const failures: TestFailure[] = [];
  let total = 0;
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const walk = (suite: PwSuite, titles: string[]) => {
    const path = suite.title ? [...titles, suite.title] : titles;
    for (const spec of suite.specs ?? []) {
      for (const t of spec.tests) {
        total++;
        if (t.status === 'expected' || t.status === 'flaky') passed++;
        else if (t.status === 'skipped') skipped++;
        else {
          failed++;
          const last = t.results[t.results.length - 1];
          const message = last?.error?.message ?? (last?.errors ?? []).map((e) => e.message ?? '').join('\n');
          failures.push({ name: [...path, spec.title].join(' › ') + (t.projectName ? ` [${t.projectName}]` : ''), message });
        }
      }
    }
    for (const child of suite.suites ?? []) walk(child, path);
  };
  for (const s of r.suites) walk(s, []);
  for (const e of r.errors ?? []) {
    total++;
    failed++;
    failures.push({ name: 'playwright', message: e.message ?? 'an error outside any test' });
  }
  return counts(failures, { total, passed, failed, skipped, ...(r.stats?.duration !== undefined ? { durationMs: r.stats.duration } : {}) });
}

/**
 * JUnit XML (pytest --junitxml, mocha's junit reporter under Cypress): every <testcase>, wherever
 * it is nested; one with <failure> or <error> fails, one with <skipped> is skipped. Several
 * documents (Cypress writes one per spec) add up. Duration: the sum of the top-level suites' time.
 */
export function parseJUnitReports(texts: readonly string[]): ReportCounts {
  if (texts.length === 0) throw new TestReportError('JUnit XML', 'no report file');
  const failures: TestFailure[] = [];
  let total = 0;
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let seconds = 0;
  let timed = false;
  for (const text of texts) {
    if (text.trim() === '') throw new TestReportError('JUnit XML', 'the report is empty');
    let root: XmlElement;
    try {
      root = parseXml(text);
    } catch (err) {
      throw new TestReportError('JUnit XML', (err as Error).message);
    }
    if (root.name !== 'testsuites' && root.name !== 'testsuite') throw new TestReportError('JUnit XML', `the root element is <${root.name}>, not <testsuites> or <testsuite>`);
    const suites = root.name === 'testsuite' ? [root] : root.children.filter((c) => c.name === 'testsuite');
    const time = Number(root.attrs.time ?? NaN);
    if (Number.isFinite(time)) {
      seconds += time;
      timed = true;
    } else {
      for (const s of suites) {
        const t = Number(s.attrs.time ?? NaN);
        if (Number.isFinite(t)) {
          seconds += t;
          timed = true;
        }
      }
    }
    const visit = (el: XmlElement) => {
      if (el.name === 'testcase') {
        total++;
        const bad = el.children.find((c) => c.name === 'failure' || c.name === 'error');
        if (bad) {
          failed++;
          // pytest: classname "tests.test_calc", name "test_sub"; mocha: name is the full title already.
          const { classname, name: title } = el.attrs;
          const name = (classname && title?.includes(classname) ? title : [classname, title].filter(Boolean).join('.')) || '(unnamed test)';
          failures.push({ name, message: [bad.attrs.message, bad.text.trim()].filter(Boolean).join('\n') });
        } else if (el.children.some((c) => c.name === 'skipped')) skipped++;
        else passed++;
        return;
      }
      el.children.forEach(visit);
    };
    visit(root);
  }
  return counts(failures, { total, passed, failed, skipped, ...(timed ? { durationMs: seconds * 1000 } : {}) });
}

const GoEventSchema = z.object({
  Action: z.string(),
  Package: z.string().optional(),
  Test: z.string().optional(),
  Output: z.string().optional(),
  Elapsed: z.number().optional(),
});

/**
 * `go test -json` (test2json events, one per line). Leaf tests count (a parent whose subtests ran
 * is their sum, not one more); a package that failed without a failing test (a build error) is one
 * failure named after the package. Lines that are not JSON (toolchain text) are skipped.
 */
export function parseGoTestJson(text: string): ReportCounts {
  if (text.trim() === '') throw new TestReportError('go test -json', 'the report is empty');
  const outcome = new Map<string, string>(); // "pkg\ttest" -> pass|fail|skip
  const output = new Map<string, string[]>();
  const failedPackages = new Map<string, string[]>();
  const packageOutput = new Map<string, string[]>();
  let seconds = 0;
  let events = 0;
  text.split('\n').forEach((line, i) => {
    const l = line.trim();
    // go 1.19 and older print a package that does not build as text: "FAIL\t<pkg> [build failed]".
    const broken = /^FAIL\s+(\S+)\s+\[(build failed|setup failed)\]/.exec(l);
    if (broken) {
      events++;
      failedPackages.set(broken[1]!, [`${broken[2]} (the compiler's output is on the run's stderr)`]);
      return;
    }
    if (!l.startsWith('{')) return;
    let value: unknown;
    try {
      value = JSON.parse(l);
    } catch {
      throw new TestReportError('go test -json', `line ${i + 1}: not valid JSON`);
    }
    const parsed = GoEventSchema.safeParse(value);
    if (!parsed.success) throw new TestReportError('go test -json', `line ${i + 1}: not a test event (${parsed.error.issues[0]!.message})`);
    const e = parsed.data;
    events++;
    const pkg = e.Package ?? '';
    if (e.Test) {
      const key = `${pkg}\t${e.Test}`;
      if (e.Action === 'output' && e.Output) output.set(key, [...(output.get(key) ?? []), e.Output]);
      if (e.Action === 'pass' || e.Action === 'fail' || e.Action === 'skip') outcome.set(key, e.Action);
    } else {
      if (e.Action === 'output' && e.Output) packageOutput.set(pkg, [...(packageOutput.get(pkg) ?? []), e.Output]);
      if ((e.Action === 'pass' || e.Action === 'fail') && e.Elapsed !== undefined) seconds += e.Elapsed;
      if (e.Action === 'fail') failedPackages.set(pkg, packageOutput.get(pkg) ?? []);
    }
  });
  if (events === 0) throw new TestReportError('go test -json', 'no test events');
  const keys = [...outcome.keys()];
  const leaves = keys.filter((k) => !keys.some((o) => o.startsWith(k + '/')));
  const failures: TestFailure[] = [];
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const k of leaves) {
    const a = outcome.get(k);
    if (a === 'pass') passed++;
    else if (a === 'skip') skipped++;
    else {
      failed++;
      const lines = (output.get(k) ?? []).filter((o) => !/^(=== (RUN|PAUSE|CONT)|--- FAIL)/.test(o.trim()));
      failures.push({ name: k.split('\t')[1]!, message: lines.join('') });
    }
  }
  let total = leaves.length;
  for (const [pkg, lines] of failedPackages) {
    if (keys.some((k) => k.startsWith(pkg + '\t') && outcome.get(k) === 'fail')) continue;
    total++;
    failed++;
    failures.push({ name: pkg || '(package)', message: lines.filter((o) => !/^(FAIL|ok)\s/.test(o)).join('') || 'the package failed without a failing test (build error?)' });
  }
  return counts(failures, { total, passed, failed, skipped, durationMs: seconds * 1000 });
}

/** Parses the report files of a framework's run (their texts, in name order). */
export function parseTestReport(framework: TestFramework, texts: readonly string[]): ReportCounts {
  const format = REPORT_FORMATS[framework];
  if (format === 'junit-xml') return parseJUnitReports(texts);
  if (texts.length !== 1) throw new TestReportError(format, `expected one report file, found ${texts.length}`);
  const text = texts[0]!;
  if (format === 'jest-json') return parseJestReport(text);
  if (format === 'playwright-json') return parsePlaywrightReport(text);
  return parseGoTestJson(text);
}

/** "tests failed (jest, unit): 1 of 3 failed: adds › sums: expected 3 …". */
export function describeTestFailures(r: TestResults): string {
  const head = `tests failed (${r.framework}, ${r.level}): ${r.failed} of ${r.total} failed`;
  const shown = r.failures.slice(0, 5).map((f) => `${f.name}: ${f.message.split('\n').find((l) => l.trim()) ?? ''}`.slice(0, 300));
  return shown.length ? `${head}: ${shown.join('; ')}` : head;
}
