// The engines' pure parts: prompt templates per stack, the plan fields and their cross-checks
// (JSON Pointer paths), engine selection, and the review's gates.
import { describe, expect, it } from 'vitest';
import { ValidationError } from '#core/errors.ts';
import { FRAMEWORK_LANGUAGES, FRAMEWORKS, LANGUAGES, codegenPrompt } from '#core/engines/codegen.ts';
import { enginePrompt, enginesFor } from '#core/engines/index.ts';
import { DEFAULT_GATE, evaluateReview, parseReviewAnswer, reviewPrompt } from '#core/engines/review.ts';
import { TEST_FRAMEWORKS, TEST_LEVELS, testCommand, testgenPrompt } from '#core/engines/testgen.ts';
import { parsePlan } from '#core/plan.ts';

function problems(tasks: object[]): { path: string; message: string }[] {
  try {
    parsePlan({ pattern: 'sequential', tasks });
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).details ?? [];
  }
  throw new Error('plan was accepted');
}

const accepts = (tasks: object[]) => parsePlan({ pattern: 'sequential', tasks });

describe('code generation templates', () => {
  it.each(LANGUAGES)('the %s prompt names the language and how to verify it', (language) => {
    const prompt = codegenPrompt({ language });
    expect(prompt).toContain(`(${language})`);
    expect(prompt).toMatch(/Verify:/);
    expect(prompt).toContain('"summary"');
  });

  const pairs = FRAMEWORKS.flatMap((framework) => FRAMEWORK_LANGUAGES[framework].map((language) => [framework, language] as const));
  it.each(pairs)('the %s prompt in %s names the framework and its conventions', (framework, language) => {
    const prompt = codegenPrompt({ language, framework });
    expect(prompt).toContain(`(${framework}) conventions`);
    expect(prompt).toContain(`(${language})`);
  });

  it('names the verification tool of each language', () => {
    const tools = { javascript: 'node --check', typescript: 'tsc --noEmit', python: 'py_compile', go: 'go vet', rust: 'cargo check', java: 'mvn -q compile', csharp: 'dotnet build' };
    for (const [language, tool] of Object.entries(tools)) expect(codegenPrompt({ language: language as (typeof LANGUAGES)[number] })).toContain(tool);
  });
});

describe('test generation templates', () => {
  const combos = TEST_LEVELS.flatMap((level) => TEST_FRAMEWORKS.map((framework) => [level, framework] as const));
  it.each(combos)('the %s prompt with %s names both and how the layer runs the tests', (level, framework) => {
    const prompt = testgenPrompt({ level, framework });
    expect(prompt).toContain(`Write ${level} tests using ${framework}`);
    expect(prompt).toContain('the layer runs the tests itself');
  });

  it.each(TEST_FRAMEWORKS)('the %s command writes a machine-readable report into $XL_TEST_REPORT_DIR', (framework) => {
    const script = testCommand({ level: 'unit', framework });
    expect(script).toMatch(/^mkdir -p "\$XL_TEST_REPORT_DIR"/);
    expect(script).toMatch(/--json --outputFile|--reporter=json|--reporter junit|--junitxml|go test -json/);
  });

  it('asks for coverage where the framework has it', () => {
    expect(testCommand({ level: 'unit', framework: 'jest' })).toContain('--coverageReporters=json-summary');
    expect(testCommand({ level: 'unit', framework: 'testify' })).toContain('-coverprofile=coverage.out');
    expect(testCommand({ level: 'unit', framework: 'pytest' })).toContain('coverage json -q -o coverage.json');
  });

  it("runs the task's own tests.command after creating the report folder", () => {
    expect(testCommand({ level: 'unit', framework: 'jest', command: 'npm test -- --json --outputFile="$XL_TEST_REPORT"' })).toBe(
      'mkdir -p "$XL_TEST_REPORT_DIR" || exit 1\nnpm test -- --json --outputFile="$XL_TEST_REPORT"',
    );
  });
});

describe('engine plan fields', () => {
  const coder = { id: 'c', agentType: 'coder', instructions: 'build it' };
  const tester = { id: 't', agentType: 'tester', instructions: 'test it' };

  it('accepts codegen, tests and review fields and keeps them in the stored plan', () => {
    const plan = accepts([
      { ...coder, codegen: { language: 'typescript', framework: 'nextjs' }, tests: { level: 'unit', framework: 'jest' } },
      { ...tester, capability: 'integration-testing', tests: { framework: 'pytest', command: 'pytest --junitxml="$XL_TEST_REPORT"' } },
      { id: 'r', agentType: 'reviewer', instructions: 'review', review: { criteria: ['security'], qualityGates: [{ maxFindings: 0, severity: 'high', criterion: 'security' }, { metric: 'coverage.lines', min: 80 }, { sonar: 'A' }] } },
    ]);
    if (plan.pattern === 'pipeline') throw new Error('unreachable');
    expect(plan.tasks[0]).toMatchObject({ codegen: { language: 'typescript', framework: 'nextjs' }, tests: { level: 'unit', framework: 'jest' } });
  });

  it('refuses a framework of another language, at /tasks/0/codegen/framework', () => {
    expect(problems([{ ...coder, codegen: { language: 'javascript', framework: 'django' } }])).toEqual([
      { path: '/tasks/0/codegen/framework', message: 'django is a python framework, not javascript' },
    ]);
  });

  it('refuses spring with python and angular with javascript', () => {
    expect(problems([{ ...coder, codegen: { language: 'python', framework: 'spring' } }]).map((p) => p.path)).toEqual(['/tasks/0/codegen/framework']);
    expect(problems([{ ...coder, codegen: { language: 'javascript', framework: 'angular' } }]).map((p) => p.path)).toEqual(['/tasks/0/codegen/framework']);
  });

  it('refuses an unknown language, at /tasks/0/codegen/language', () => {
    expect(problems([{ ...coder, codegen: { language: 'cobol' } }]).map((p) => p.path)).toEqual(['/tasks/0/codegen/language']);
  });

  it('refuses codegen on a command task', () => {
    expect(problems([{ id: 'c', agentType: 'coder', command: 'make', codegen: { language: 'go' } }])).toEqual([
      { path: '/tasks/0/codegen', message: 'code generation is for language-model tasks: it needs instructions, not a command' },
    ]);
  });

  it('refuses codegen on a reviewer, which changes nothing', () => {
    expect(problems([{ id: 'r', agentType: 'reviewer', instructions: 'x', codegen: { language: 'go' } }]).map((p) => p.path)).toEqual(['/tasks/0/codegen']);
  });

  it('refuses testify for typescript code, at /tasks/0/tests/framework', () => {
    expect(problems([{ ...coder, codegen: { language: 'typescript' }, tests: { level: 'unit', framework: 'testify' } }])).toEqual([
      { path: '/tasks/0/tests/framework', message: 'testify tests go code, not typescript (codegen.language)' },
    ]);
  });

  it('refuses pytest for go code', () => {
    expect(problems([{ ...coder, codegen: { language: 'go' }, tests: { level: 'unit', framework: 'pytest' } }]).map((p) => p.path)).toEqual(['/tasks/0/tests/framework']);
  });

  it('needs tests.level unless the capability implies it', () => {
    expect(problems([{ ...tester, tests: { framework: 'jest' } }])).toEqual([
      { path: '/tasks/0/tests/level', message: 'required unless the capability is unit-testing or integration-testing' },
    ]);
  });

  it('takes the test level from a unit-testing or integration-testing capability', () => {
    const plan = accepts([{ ...tester, capability: 'integration-testing', tests: { framework: 'jest' } }]);
    if (plan.pattern === 'pipeline') throw new Error('unreachable');
    expect(enginesFor(plan.tasks[0]!).tests).toEqual({ level: 'integration', framework: 'jest' });
  });

  it('refuses an unknown test framework and level', () => {
    expect(problems([{ ...tester, tests: { level: 'smoke', framework: 'mocha' } }]).map((p) => p.path).sort()).toEqual(['/tasks/0/tests/framework', '/tasks/0/tests/level']);
  });

  it('refuses a malformed maxFindings gate with the path of the bad value', () => {
    const gates = [{ maxFindings: -1 }, { maxFindings: 1, severity: 'urgent' }, { maxFindings: 1, severty: 'high' }];
    const found = problems([{ id: 'r', agentType: 'reviewer', instructions: 'x', review: { qualityGates: gates } }]);
    expect(found.map((p) => p.path)).toEqual(['/tasks/0/review/qualityGates/0/maxFindings', '/tasks/0/review/qualityGates/1/severity', '/tasks/0/review/qualityGates/2']);
    expect(found[2]!.message).toContain('unknown key(s) severty');
  });

  it('refuses a metric gate without bounds and a gate of both kinds', () => {
    const found = problems([{ id: 'r', agentType: 'reviewer', instructions: 'x', review: { qualityGates: [{ metric: 'coverage.lines' }, { metric: 'x', maxFindings: 0 }] } }]);
    expect(found).toEqual([
      { path: '/tasks/0/review/qualityGates/0/min', message: 'a metric gate needs min or max' },
      { path: '/tasks/0/review/qualityGates/1', message: 'a gate is one kind: maxFindings or metric, not both' },
    ]);
  });

  it('refuses a gate for a criterion the review does not have', () => {
    expect(problems([{ id: 'r', agentType: 'reviewer', instructions: 'x', review: { criteria: ['style'], qualityGates: [{ maxFindings: 0, criterion: 'security' }] } }])).toEqual([
      { path: '/tasks/0/review/qualityGates/0/criterion', message: '"security" is not one of review.criteria (style)' },
    ]);
  });

  it('accepts gate objects of other tools as they are', () => {
    expect(() => accepts([{ id: 'r', agentType: 'reviewer', instructions: 'x', review: { qualityGates: [{ sonarQualityGate: 'OK' }, {}] } }])).not.toThrow();
  });
});

describe('engine selection and the system prompt', () => {
  it('adds nothing to a task without engine fields', () => {
    expect(enginePrompt({ agentType: 'coder', instructions: 'x' })).toBe('');
    expect(enginesFor({ agentType: 'reviewer', instructions: 'x' })).toEqual({});
  });

  it('runs the tests of a command task but gives it no prompt', () => {
    const task = { agentType: 'tester', command: 'npm ci', tests: { level: 'unit' as const, framework: 'jest' as const } };
    expect(enginesFor(task)).toEqual({ tests: { level: 'unit', framework: 'jest' } });
    expect(enginePrompt(task)).toBe('');
  });

  it('reviews only a reviewer task that has review', () => {
    expect(enginesFor({ agentType: 'coder', instructions: 'x', review: { criteria: ['a'] } })).toEqual({});
    expect(enginesFor({ agentType: 'reviewer', instructions: 'x', review: { criteria: ['a'] } })).toEqual({ review: { criteria: ['a'] } });
  });

  it("appends the coder's and tester's sections after a blank line", () => {
    const prompt = enginePrompt({ agentType: 'coder', instructions: 'x', codegen: { language: 'rust' }, tests: { level: 'unit', framework: 'jest' } });
    expect(prompt.startsWith('\n\n## Code generation: Rust')).toBe(true);
    expect(prompt).toContain('## Test generation: unit tests with jest');
  });

  it("lists the review's criteria and gates, and asks for the findings JSON", () => {
    const prompt = reviewPrompt({ criteria: ['security', 'naming'], qualityGates: [{ maxFindings: 0, severity: 'high' }, { metric: 'coverage.lines', min: 80 }, { other: 1 }] });
    expect(prompt).toContain('- security\n- naming');
    expect(prompt).toContain('- at most 0 finding(s) at high severity or worse');
    expect(prompt).toContain('- coverage.lines >= 80');
    expect(prompt).toContain('{"findings": [');
  });
});

describe('review verdicts', () => {
  const finding = (severity: 'critical' | 'high' | 'medium' | 'low' | 'info', criterion = 'security') => ({ criterion, severity, message: `${severity} thing` });

  it('passes when every gate passes, with per-criterion counts', () => {
    const r = evaluateReview({ findings: [finding('medium'), finding('low', 'naming')], summary: 'ok' }, { criteria: ['security', 'naming', 'tests'], qualityGates: [{ maxFindings: 1, severity: 'medium' }] });
    expect(r.verdict).toBe('pass');
    expect(r.criteria).toEqual([
      { criterion: 'security', findings: 1, passed: true },
      { criterion: 'naming', findings: 1, passed: true },
      { criterion: 'tests', findings: 0, passed: true },
    ]);
    expect(r.gates).toEqual([{ gate: { maxFindings: 1, severity: 'medium' }, status: 'passed', actual: 1, message: '1 finding at medium or worse <= 1' }]);
  });

  it('counts findings at the gate severity or worse only', () => {
    const r = evaluateReview({ findings: [finding('critical'), finding('high'), finding('medium')], summary: '' }, { qualityGates: [{ maxFindings: 1, severity: 'high' }] });
    expect(r.verdict).toBe('fail');
    expect(r.gates[0]).toMatchObject({ status: 'failed', actual: 2, message: '2 findings at high or worse > 1' });
  });

  it('restricts a gate to its criterion', () => {
    const r = evaluateReview({ findings: [finding('high', 'style')], summary: '' }, { criteria: ['style', 'security'], qualityGates: [{ maxFindings: 0, criterion: 'security' }] });
    expect(r.verdict).toBe('pass');
    expect(r.criteria.find((c) => c.criterion === 'style')!.passed).toBe(false);
  });

  it('checks a metric gate against the pipeline data, a coverage Metric counting as its pct', () => {
    const input = { coverage: { lines: { covered: 62, total: 100, pct: 62 } } };
    const r = evaluateReview({ findings: [], summary: '' }, { qualityGates: [{ metric: 'coverage.lines', min: 80 }] }, [{}, input]);
    expect(r.verdict).toBe('fail');
    expect(r.gates[0]).toMatchObject({ status: 'failed', actual: 62, message: 'coverage.lines 62 < 80' });
  });

  it('fails a metric gate the data cannot answer', () => {
    const r = evaluateReview({ findings: [], summary: '' }, { qualityGates: [{ metric: 'coverage.branches', min: 50 }] }, [{}, {}]);
    expect(r.gates[0]).toMatchObject({ status: 'failed', actual: null });
  });

  it('reports gates of other tools as unevaluated and then applies the default gate', () => {
    const r = evaluateReview({ findings: [finding('high')], summary: '' }, { qualityGates: [{ sonar: 'A' }] });
    expect(r.gates).toEqual([
      { gate: { sonar: 'A' }, status: 'unevaluated', message: 'not a gate kind the layer evaluates (maxFindings, metric)' },
      { gate: { ...DEFAULT_GATE }, status: 'failed', actual: 1, message: '1 finding at high or worse > 0', default: true },
    ]);
    expect(r.verdict).toBe('fail');
  });

  it('reads the findings from the output, or from a JSON block at the end of the text', () => {
    expect(parseReviewAnswer({ findings: [], summary: 'fine' })).toEqual({ answer: { findings: [], summary: 'fine' } });
    const text = 'Reviewed.\n```json\n{"findings": [{"criterion": "security", "severity": "low", "message": "m"}],\n "summary": "s"}\n```';
    expect(parseReviewAnswer({ result: text })).toEqual({ answer: { findings: [{ criterion: 'security', severity: 'low', message: 'm' }], summary: 's' } });
  });

  it('says what is wrong with an invalid or missing answer', () => {
    expect(parseReviewAnswer({ result: 'looks good to me' })).toEqual({ error: 'the review has no findings JSON (expected a final {"findings": [...], "summary": "..."} object)' });
    expect(parseReviewAnswer({ findings: [{ criterion: 'x', severity: 'severe', message: 'm' }], summary: '' })).toMatchObject({ error: expect.stringContaining('findings.0.severity') });
  });
});
