// Each engine from a plan task to its parsed result: the claude-code driver runs the claude
// stand-in (test/fixtures/claude-standin.mjs) on a synthesized transcript that writes files as
// Claude Code's Write tool would, then applyEngines runs the real checks and test frameworks in the
// workspace through the command driver. The tester's suite also goes through the agent worker
// (dynalite, fauxqs), as a user's plan would.
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClaudeCodeDriver } from '../../agent/drivers/claude-code.ts';
import { CommandDriver } from '../../agent/drivers/command.ts';
import type { DriverResult } from '../../agent/drivers/types.ts';
import { applyEngines } from '../../agent/engines/index.ts';
import { parsePlan, type Task } from '../../core/plan.ts';
import { startTestWorker, type TestWorker } from '../support/worker.ts';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'node_modules/.bin');
const STANDIN = join(ROOT, 'test/fixtures/claude-standin.mjs');
const PATH = `${BIN}:${process.env.PATH}`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xl-engines-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A task as parsePlan stores it (defaults applied, cross-checks passed). */
function planned(task: object): Task {
  const plan = parsePlan({ pattern: 'sequential', tasks: [{ id: 't1', timeoutSeconds: 120, ...task }] });
  if (plan.pattern === 'pipeline') throw new Error('unreachable');
  return plan.tasks[0]!;
}

const claude = new ClaudeCodeDriver({ bin: process.execPath, binArgs: [STANDIN], baseEnv: { ...process.env, PATH } });
const commands = new CommandDriver({ baseEnv: { ...process.env, PATH } });

interface Ran {
  result: DriverResult;
  workspace: string;
  /** The `--append-system-prompt` the CLI got. */
  systemPrompt: string;
}

/** The driver, then the engines, as the worker runs them, in a fresh workspace. */
async function runTask(task: Task, opts: { input?: Record<string, unknown>; path?: string } = {}): Promise<Ran> {
  const workspace = await mkdtemp(join(dir, 'ws-'));
  const envOut = join(dir, `argv-${randomUUID()}.json`);
  const signal = new AbortController().signal;
  const input = opts.input ?? {};
  const startedAt = Date.now();
  const driver = task.command !== undefined ? commands : claude;
  const result = await driver.run(task, { workspace, input, signal, env: { XL_WORKSPACE: workspace, XL_STANDIN_ENV_OUT: envOut, XL_STANDIN_DELAY_MS: '1' }, onSpawn: () => {} });
  const engined = await applyEngines(task, workspace, result, { commands, signal, input, startedAt, onSpawn: () => {}, path: opts.path ?? PATH });
  const argv: string[] = existsSync(envOut) ? JSON.parse(await readFile(envOut, 'utf8')).argv : [];
  return { result: engined, workspace, systemPrompt: argv[argv.indexOf('--append-system-prompt') + 1] ?? '' };
}

const outputOf = (r: DriverResult) => {
  if (r.status !== 'completed') throw new Error(`the task failed: ${r.error.type}: ${r.error.message}`);
  return r.output;
};

describe('code generation', () => {
  const coder = (transcript: string, codegen: object = { language: 'typescript' }) =>
    planned({ agentType: 'coder', capability: 'code-generation', instructions: `Write slugify [standin:${transcript}]`, codegen });

  it("reports the files a coder wrote, its summary and the passing tsc check", async () => {
    const { result, systemPrompt } = await runTask(coder('coder-typescript'));
    expect(systemPrompt).toContain('## Code generation: TypeScript');
    expect(outputOf(result).codegen).toEqual({
      language: 'typescript',
      files: ['src/slug.ts'],
      summary: 'Added slugify(title) in src/slug.ts',
      checks: [{ tool: 'tsc --noEmit --strict (no tsconfig.json)', passed: true }],
    });
  });

  it('fails the task as validation when the code does not type-check, with the compiler error', async () => {
    const { result } = await runTask(coder('coder-typescript-broken'));
    expect(result.status).toBe('failed');
    if (result.status !== 'failed') return;
    expect(result.error.type).toBe('validation');
    expect(result.error.message).toMatch(/^code generation checks failed: tsc --noEmit --strict \(no tsconfig.json\): .*src\/slug\.ts.*TS2322/);
    expect(result.cost?.turns).toBe(2);
  });

  it('says a check was skipped when this agent has no such tool, and completes', async () => {
    const { result } = await runTask(coder('coder-typescript'), { path: '/nonexistent' });
    expect(outputOf(result).codegen).toMatchObject({ checks: [{ tool: 'tsc --noEmit --strict (no tsconfig.json)', skipped: 'tool not installed' }] });
  });

  it('says why a check does not apply (a Rust task without Cargo.toml)', async () => {
    const { result, systemPrompt } = await runTask(coder('coder-typescript', { language: 'rust' }));
    expect(systemPrompt).toContain('cargo check');
    expect(outputOf(result).codegen).toMatchObject({ language: 'rust', checks: [{ tool: 'cargo check --offline', skipped: 'no Cargo.toml in the workspace' }] });
  });

  it('fails a coder that wrote nothing', async () => {
    const { result } = await runTask(planned({ agentType: 'coder', instructions: '[standin:success]', codegen: { language: 'go' } }));
    expect(result).toMatchObject({ status: 'failed', error: { type: 'validation', message: 'code generation wrote no files in the workspace (go)' } });
  });
});

describe('test generation', () => {
  it("runs the tester's jest suite and reports its tests and coverage", async () => {
    const task = planned({ agentType: 'tester', capability: 'unit-testing', instructions: 'Test sum [standin:tester-jest]', tests: { framework: 'jest' } });
    const { result, systemPrompt, workspace } = await runTask(task);
    expect(systemPrompt).toContain('## Test generation: unit tests with jest');
    const output = outputOf(result);
    expect(output.tests).toEqual({ framework: 'jest', level: 'unit', total: 2, passed: 2, failed: 0, skipped: 0, durationMs: expect.any(Number), failures: [] });
    expect(output.coverage).toMatchObject({ format: 'istanbul-summary', files: 1, lines: { pct: 100 } });
    expect(existsSync(join(workspace, '.xl-tests'))).toBe(false);
  });

  it('fails the task as validation when a generated pytest test fails, naming it', async () => {
    const task = planned({ agentType: 'tester', instructions: 'Test calc [standin:tester-pytest-failing]', tests: { level: 'unit', framework: 'pytest' } });
    const { result } = await runTask(task);
    expect(result.status).toBe('failed');
    if (result.status !== 'failed') return;
    expect(result.error.type).toBe('validation');
    expect(result.error.message).toBe('tests failed (pytest, unit): 1 of 2 failed: tests.test_calc.test_sub: assert 8 == 2');
  });

  it("leaves pytest's caches and coverage data out of the workspace, and coverage.json in it", async () => {
    const task = planned({ agentType: 'tester', instructions: 'Test calc [standin:tester-pytest-failing]', tests: { level: 'unit', framework: 'pytest' } });
    const { workspace } = await runTask(task);
    expect((await readdir(workspace)).sort()).toEqual(['calc.py', 'coverage.json', 'tests']);
    expect((await readdir(join(workspace, 'tests'))).sort()).toEqual(['conftest.py', 'test_calc.py']);
  });

  it("runs a command task's testify tests after its command (GOPATH mode, offline)", async () => {
    const write = (file: string, text: string) => `printf '%s' '${text}' > ${file}`;
    const command = [
      write('calc.go', 'package calc\n\nfunc Add(a, b int) int { return a + b }\n'),
      write('calc_test.go', 'package calc\n\nimport (\n\t"testing"\n\n\t"github.com/stretchr/testify/assert"\n)\n\nfunc TestAdd(t *testing.T) { assert.Equal(t, 3, Add(1, 2)) }\n'),
    ].join(' && ');
    const { result } = await runTask(planned({ agentType: 'tester', command, tests: { level: 'unit', framework: 'testify' } }));
    const output = outputOf(result);
    expect(output.tests).toMatchObject({ framework: 'testify', level: 'unit', total: 1, passed: 1, failed: 0 });
    expect(output.coverage).toMatchObject({ format: 'go', lines: { pct: 100 } });
  });

  it('fails a run that has no test at all', async () => {
    const { result } = await runTask(planned({ agentType: 'tester', command: 'true', tests: { level: 'unit', framework: 'jest' } }));
    expect(result).toMatchObject({ status: 'failed', error: { type: 'validation', message: 'no test ran (jest, unit): 0 found, 0 skipped' } });
  });

  it("fails as permanent when the framework is not installed, with the run's message", async () => {
    const { result } = await runTask(planned({ agentType: 'tester', command: 'true', tests: { level: 'e2e', framework: 'cypress' } }));
    expect(result).toMatchObject({ status: 'failed', error: { type: 'permanent', message: 'the test run (cypress) failed without a report: cypress is not installed (neither node_modules/.bin/cypress nor cypress on PATH)' } });
  });
});

describe('review', () => {
  const reviewer = (transcript: string, review: object) => planned({ agentType: 'reviewer', capability: 'code-review', instructions: `Review the login [standin:${transcript}]`, review });

  it('fails the task when a finding breaks a gate, naming the gate and the finding', async () => {
    const { result, systemPrompt } = await runTask(reviewer('reviewer-findings', { criteria: ['security', 'maintainability'], qualityGates: [{ maxFindings: 0, severity: 'high' }] }));
    expect(systemPrompt).toContain('- at most 0 finding(s) at high severity or worse');
    expect(result).toMatchObject({
      status: 'failed',
      error: { type: 'validation', message: 'review failed: 1 finding at high or worse > 0 (src/login.ts:12 high security: The password is compared with ===: use a constant-time comparison; src/login.ts:3 low maintainability: Magic number 3 for the retry limit: name it)' },
    });
  });

  it('passes with the findings, per-criterion results and gates on the output', async () => {
    const input = { coverage: { lines: { covered: 90, total: 100, pct: 90 } } };
    const { result } = await runTask(reviewer('reviewer-findings', { criteria: ['security', 'maintainability'], qualityGates: [{ maxFindings: 0, severity: 'critical' }, { metric: 'coverage.lines', min: 80 }, { sonar: 'A' }] }), { input });
    const review = outputOf(result).review as Record<string, unknown>;
    expect(review).toMatchObject({
      verdict: 'pass',
      summary: 'One security weakness in the login check; otherwise clean.',
      criteria: [
        { criterion: 'security', findings: 1, passed: false },
        { criterion: 'maintainability', findings: 1, passed: true },
      ],
      gates: [
        { status: 'passed', actual: 0 },
        { status: 'passed', actual: 90 },
        { gate: { sonar: 'A' }, status: 'unevaluated' },
      ],
    });
    expect(review.findings).toHaveLength(2);
    expect(outputOf(result).findings).toBeUndefined();
  });

  it('fails a review whose answer has no findings JSON', async () => {
    const { result } = await runTask(reviewer('reviewer-prose', { criteria: ['security'] }));
    expect(result).toMatchObject({ status: 'failed', error: { type: 'validation', message: expect.stringContaining('the review has no findings JSON') } });
  });
});

describe('a tester task through the agent worker', () => {
  let tester: TestWorker;

  beforeAll(async () => {
    tester = await startTestWorker({
      prefix: 'xle-',
      agentType: 'tester',
      agentId: `tester-engines-${randomUUID().slice(0, 6)}`,
      slots: 1,
      drivers: { command: commands, 'claude-code': claude },
      workspaceRoot: join(dir, 'workspaces'),
    });
  });

  afterAll(async () => {
    await tester?.close();
  });

  const runThroughWorker = (task: Task) => tester.run(task, 60_000);

  it('completes with the parsed jest results and coverage on the task result', async () => {
    const { task } = await runThroughWorker(planned({ agentType: 'tester', capability: 'unit-testing', instructions: 'Test sum [standin:tester-jest]', tests: { framework: 'jest' } }));
    expect(task.status).toBe('completed');
    const output = (task.output as { inline: Record<string, unknown> }).inline;
    expect(output.tests).toMatchObject({ framework: 'jest', level: 'unit', total: 2, passed: 2, failed: 0 });
    expect(output.coverage).toMatchObject({ format: 'istanbul-summary' });
    expect(output.summary).toBe('Unit tests for sum: addition and type errors');
  });

  it('fails with the failing pytest test in the error', async () => {
    const { task, callback } = await runThroughWorker(planned({ agentType: 'tester', instructions: 'Test calc [standin:tester-pytest-failing]', tests: { level: 'unit', framework: 'pytest' } }));
    expect(task.status).toBe('failed');
    expect(task.error).toMatchObject({ type: 'validation', message: 'tests failed (pytest, unit): 1 of 2 failed: tests.test_calc.test_sub: assert 8 == 2' });
    expect(callback).toMatchObject({ error: 'validation', cause: expect.stringContaining('tests failed (pytest, unit): 1 of 2 failed') });
  });
});
