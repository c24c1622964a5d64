import { describe, expect, it } from 'vitest';
import { ValidationError } from '#core/errors.ts';
import { parsePlan, planHash, planTasks } from '#core/plan.ts';

const task = (id: string, extra: object = {}) => ({ id, agentType: 'coder', command: 'true', ...extra });

function problems(body: unknown): { path: string; message: string }[] {
  try {
    parsePlan(body);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return (err as ValidationError).details ?? [];
  }
  throw new Error('plan was accepted');
}

describe('plan schema', () => {
  it('applies the contract defaults to tasks and plans', () => {
    const plan = parsePlan({ pattern: 'parallel', tasks: [task('a')] });
    expect(plan).toMatchObject({ pattern: 'parallel', maxConcurrency: 10, input: {} });
    if (plan.pattern === 'pipeline') throw new Error('unreachable');
    expect(plan.tasks[0]).toMatchObject({ timeoutSeconds: 1800, failureStrategy: 'stop', priority: 'normal' });
  });

  it('accepts every optional task field of the contract', () => {
    const plan = parsePlan({
      name: 'full_plan-1',
      pattern: 'sequential',
      input: { repo: 'x' },
      tasks: [
        task('t1', {
          agentType: 'tester',
          capability: 'unit-testing',
          command: undefined,
          instructions: 'write tests',
          timeoutSeconds: 60,
          failureStrategy: 'continue',
          priority: 'high',
          recovery: { transient: { maxRetries: 5 } },
          workspace: { repository: 'https://example.com/r.git', ref: 'main', pushBranch: 'xl/t1', credentialsSecret: 'git' },
          limits: { maxTurns: 10, maxBudgetUsd: 1.5 },
          coverageTargets: { lines: 80, branches: 70, functions: 75 },
          review: { criteria: ['readability'], qualityGates: [{ metric: 'coverage', min: 80 }] },
        }),
      ],
    });
    expect(plan.name).toBe('full_plan-1');
  });

  it('names the JSON path of each problem', () => {
    const details = problems({ pattern: 'parallel', maxConcurrency: 0, tasks: [task('a'), task('b', { agentType: 'wizard' })] });
    expect(details.map((d) => d.path)).toEqual(expect.arrayContaining(['/maxConcurrency', '/tasks/1/agentType']));
  });

  it('takes a budget for the whole plan, positive, under limits', () => {
    expect(parsePlan({ pattern: 'sequential', limits: { maxBudgetUsd: 5 }, tasks: [task('a')] }).limits).toEqual({ maxBudgetUsd: 5 });
    expect(problems({ pattern: 'pipeline', limits: { maxBudgetUsd: 0 }, stages: [{ name: 's', tasks: [task('a')] }] }).map((d) => d.path)).toEqual(['/limits/maxBudgetUsd']);
    expect(problems({ pattern: 'parallel', limits: { maxTurns: 3 }, tasks: [task('a')] }).map((d) => d.path)).toEqual(['/limits']);
  });

  it('requires exactly one of instructions and command', () => {
    expect(problems({ pattern: 'sequential', tasks: [{ id: 'a', agentType: 'coder' }] })[0]!.path).toBe('/tasks/0');
    expect(problems({ pattern: 'sequential', tasks: [task('a', { instructions: 'x' })] })[0]!.path).toBe('/tasks/0');
  });

  it('rejects duplicate task ids, across pipeline stages too', () => {
    const details = problems({
      pattern: 'pipeline',
      stages: [
        { name: 's1', tasks: [task('a')] },
        { name: 's2', tasks: [task('a')] },
      ],
    });
    expect(details[0]).toMatchObject({ path: '/stages/1/tasks/0/id' });
  });

  it('rejects a capability the agent type does not have', () => {
    expect(problems({ pattern: 'sequential', tasks: [task('a', { capability: 'unit-testing' })] })[0]!.path).toBe('/tasks/0/capability');
  });

  it('rejects unknown fields, bad names and out-of-range timeouts', () => {
    const details = problems({ name: 'bad name!', pattern: 'sequential', extra: 1, tasks: [task('a', { timeoutSeconds: 90000 })] });
    expect(details.map((d) => d.path)).toEqual(expect.arrayContaining(['/name', '/tasks/0/timeoutSeconds', '']));
  });

  it('rejects pattern-specific fields on the wrong pattern', () => {
    expect(problems({ pattern: 'sequential', maxConcurrency: 2, tasks: [task('a')] }).length).toBeGreaterThan(0);
    expect(problems({ pattern: 'pipeline', tasks: [task('a')] }).length).toBeGreaterThan(0);
  });

  it('hashes plans equal once defaults are applied alike', () => {
    const a = parsePlan({ pattern: 'parallel', tasks: [task('a')] });
    const b = parsePlan({ tasks: [task('a', { priority: 'normal' })], maxConcurrency: 10, pattern: 'parallel' });
    const c = parsePlan({ pattern: 'parallel', tasks: [task('a', { priority: 'high' })] });
    expect(planHash(a)).toBe(planHash(b));
    expect(planHash(a)).not.toBe(planHash(c));
  });

  it('lists pipeline tasks in stage order with their stage index', () => {
    const plan = parsePlan({ pattern: 'pipeline', stages: [{ name: 'a', tasks: [task('x'), task('y')] }, { name: 'b', tasks: [task('z')] }] });
    expect(planTasks(plan).map((t) => [t.task.id, t.stage])).toEqual([['x', 0], ['y', 0], ['z', 1]]);
  });
});
