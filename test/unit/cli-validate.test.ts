import { describe, expect, it } from 'vitest';
import { progressBar, tableLines } from '../../cli/render.ts';
import { checkPlanFile, checkPlanText, SourceMap } from '../../cli/validate.ts';

describe('xl validate places each error in the plan file', () => {
  it('finds a JSON Pointer in YAML and in JSON alike', () => {
    const yaml = 'pattern: parallel\ntasks:\n  - id: a\n    agentType: coder\n    command: "true"\n';
    expect(new SourceMap(yaml).locate('/tasks/0/agentType')).toEqual({ line: 4, column: 16 });
    const json = '{\n  "pattern": "parallel",\n  "tasks": [\n    {"id": "a", "agentType": "coder"}\n  ]\n}';
    expect(new SourceMap(json).locate('/tasks/0/agentType')).toEqual({ line: 4, column: 30 });
  });

  it('points at the enclosing object when the member is missing, and unescapes ~1 and ~0', () => {
    const yaml = 'pattern: parallel\ntasks:\n  - id: a\n';
    expect(new SourceMap(yaml).locate('/tasks/0/command')).toEqual({ line: 3, column: 5 });
    expect(new SourceMap('a/b:\n  c~d: 1\n').locate('/a~1b/c~0d')).toEqual({ line: 2, column: 8 });
  });

  it('reports a JSON syntax error at its line and column instead of a character offset', () => {
    const check = checkPlanText('{\n  "pattern": "parallel"\n  "tasks": []\n}', 'plan.json');
    expect(check.valid).toBe(false);
    expect(check.problems[0]).toMatchObject({ line: 3, column: 3 });
    expect(check.problems[0]!.message).toMatch(/Expected ','/);
  });

  it('reports a YAML syntax error at its line without repeating the position in the message', () => {
    const check = checkPlanText('pattern: parallel\ntasks: [\n', 'plan.yaml');
    expect(check.valid).toBe(false);
    expect(check.problems[0]!.line).toBeGreaterThanOrEqual(2);
    expect(check.problems[0]!.message).not.toMatch(/at line/);
  });

  it('names a plan file it cannot read and why, instead of an error code', async () => {
    await expect(checkPlanFile('examples/missing.yaml')).rejects.toThrow(/^cannot read the plan file examples\/missing\.yaml: no such file$/);
    await expect(checkPlanFile('examples')).rejects.toThrow(/^cannot read the plan file examples: it is a directory$/);
  });

  it('reports every schema error of a plan, each with its pointer', () => {
    const check = checkPlanText('pattern: nonsense\ntasks: []\n', 'plan.yaml');
    expect(check.valid).toBe(false);
    expect(check.problems.map((p) => [p.pointer, p.line])).toContainEqual(['/pattern', 1]);
  });
});

describe('the live table', () => {
  it('fills the progress bar in proportion to the final tasks', () => {
    expect(progressBar(0, 4, 8)).toBe('[........] 0/4 tasks');
    expect(progressBar(1, 4, 8)).toBe('[##......] 1/4 tasks');
    expect(progressBar(4, 4, 8)).toBe('[########] 4/4 tasks');
  });

  it('shows a running task\'s duration so far, its agent, attempts and cost', () => {
    const now = Date.parse('2026-01-01T00:00:10Z');
    const lines = tableLines(
      {
        executionId: 'ex-1',
        pattern: 'parallel',
        status: 'RUNNING',
        tasks: [
          { taskId: 'a', status: 'completed', agentId: 'coder-1', attempts: 1, durationMs: 1500, cost: { usd: 0.0123, turns: 2, inputTokens: 10, outputTokens: 5 } },
          { taskId: 'b', status: 'running', agentId: 'coder-2', attempts: 2, startedAt: '2026-01-01T00:00:07Z' },
        ],
      },
      now,
      now - 10_000,
    );
    expect(lines[0]).toBe('ex-1  parallel  RUNNING  10.0s');
    expect(lines[1]).toMatch(/^\[#{12}\.{12}\] 1\/2 tasks$/);
    expect(lines[3]).toMatch(/^a\s+completed\s+coder-1\s+1\s+1\.5s\s+\$0\.0123$/);
    expect(lines[4]).toMatch(/^b\s+running\s+coder-2\s+2\s+3\.0s$/);
  });
});

describe('the live table on a short terminal', () => {
  it('keeps the running and failed tasks and counts the others on one line', () => {
    const tasks = Array.from({ length: 10 }, (_, i) => ({ taskId: `t${i}`, status: i < 6 ? 'completed' : i === 7 ? 'running' : i === 8 ? 'failed' : 'pending', attempts: 1 }));
    const lines = tableLines({ executionId: 'ex-1', pattern: 'parallel', status: 'RUNNING', tasks }, 0, 0, 4);
    expect(lines.slice(3)).toEqual([
      expect.stringMatching(/^t0\s+completed/),
      expect.stringMatching(/^t7\s+running/),
      expect.stringMatching(/^t8\s+failed/),
      '... 7 more: 5 completed, 2 pending',
    ]);
  });
});
