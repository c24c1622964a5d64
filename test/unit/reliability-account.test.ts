// The fault suite's counting (test/reliability): what counts as a lost task and as a task run twice.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { type Expectation, account, parseFinishes } from '../reliability/account.ts';
import { Ledger, type LedgerEntry, parseLedger } from '../reliability/ledger.ts';

const ledgerOf = (entries: Record<string, LedgerEntry>) => (id: string) => entries[id] ?? { starts: [], commits: [] };
const completed = (taskId: string, attempt: number, extra: object = {}) => ({ taskId, status: 'completed', attempts: attempt, output: { task: taskId, attempt }, ...extra });
const want = (taskId: string, extra: Partial<Expectation> = {}): Expectation => ({ taskId, status: 'completed', commits: 1, ...extra });

function tally(tasks: object[], entries: Record<string, LedgerEntry>, opts: { status?: string; finishes?: string; expectations?: Expectation[] } = {}) {
  return account({
    execution: { executionId: 'ex-1', status: opts.status ?? 'SUCCEEDED', tasks },
    expectedStatus: 'SUCCEEDED',
    expectations: opts.expectations ?? tasks.map((t: any) => want(t.taskId)),
    ledger: ledgerOf(entries),
    finishes: parseFinishes(opts.finishes ?? ''),
  });
}

describe('counting lost and doubled tasks', () => {
  it('counts a task started twice and committed once (its agent died) as neither lost nor doubled', () => {
    const t = tally([completed('a', 2)], { a: { starts: [{ attempt: 1, pid: 10 }, { attempt: 2, pid: 11 }], commits: [2] } });
    expect(t).toEqual({ tasks: 1, lost: 0, doubled: 0, failures: [] });
  });

  it('counts a side effect committed twice as doubled', () => {
    const t = tally([completed('a', 2)], { a: { starts: [{ attempt: 1, pid: 10 }, { attempt: 2, pid: 11 }], commits: [1, 2] } });
    expect(t).toMatchObject({ lost: 0, doubled: 1 });
    expect(t.failures[0]).toMatch(/committed 2 times/);
  });

  it('counts a completion recorded twice in the agents\' log as doubled, though the side effect happened once', () => {
    const line = (attempt: number) => JSON.stringify({ msg: 'task finished', executionId: 'ex-1', taskId: 'a', attempt, status: 'completed' });
    const t = tally([completed('a', 2)], { a: { starts: [{ attempt: 2, pid: 11 }], commits: [2] } }, { finishes: `${line(1)}\n${line(2)}\n` });
    expect(t).toMatchObject({ lost: 0, doubled: 1 });
    expect(t.failures[0]).toMatch(/completion recorded 2 times/);
  });

  it('counts a completed task whose output came from a run that committed nothing as lost', () => {
    const t = tally([completed('a', 1)], { a: { starts: [{ attempt: 1, pid: 10 }, { attempt: 2, pid: 11 }], commits: [2] } });
    expect(t).toMatchObject({ lost: 1, doubled: 0 });
    expect(t.failures[0]).toMatch(/output of attempt 1, which committed nothing/);
  });

  it('counts a task recorded completed without its side effect as lost', () => {
    const t = tally([completed('a', 1)], { a: { starts: [{ attempt: 1, pid: 10 }], commits: [] } });
    expect(t.lost).toBe(1);
  });

  it('counts the unfinished tasks of an execution that did not end in time as lost, and says so', () => {
    const t = tally([completed('a', 1), { taskId: 'b', status: 'running', attempts: 1 }], { a: { starts: [{ attempt: 1, pid: 10 }], commits: [1] } }, { status: 'RUNNING' });
    expect(t).toMatchObject({ tasks: 2, lost: 1, doubled: 0 });
    expect(t.failures).toContain('execution ex-1: RUNNING, expected SUCCEEDED');
  });

  it('fails a command that committed though it had to be killed first, and a wrong error type or attempt count', () => {
    const task = { taskId: 'a', status: 'failed', attempts: 1, error: { type: 'permanent', message: 'exit 1' } };
    const t = tally([task], { a: { starts: [{ attempt: 1, pid: 10 }], commits: [1] } }, { expectations: [want('a', { status: 'failed', errorType: 'timeout', attempts: 2, commits: 0 })] });
    expect(t).toMatchObject({ lost: 0, doubled: 0 });
    expect(t.failures).toHaveLength(3);
  });

  it('takes a task completed by its default output, with nothing committed, as neither lost nor doubled', () => {
    const task = { taskId: 'a', status: 'completed', attempts: 1, output: { lint: 'not run' } };
    const t = tally([task], { a: { starts: [{ attempt: 1, pid: 10 }], commits: [] } }, { expectations: [want('a', { commits: 0, defaultOutput: { lint: 'not run' } })] });
    expect(t).toEqual({ tasks: 1, lost: 0, doubled: 0, failures: [] });
  });

  it('counts a task whose output is not the expected default output as lost', () => {
    const task = { taskId: 'a', status: 'completed', attempts: 1, output: { lint: 'ran' } };
    const t = tally([task], { a: { starts: [{ attempt: 1, pid: 10 }], commits: [] } }, { expectations: [want('a', { commits: 0, defaultOutput: { lint: 'not run' } })] });
    expect(t).toMatchObject({ lost: 1, doubled: 0 });
    expect(t.failures[0]).toMatch(/expected the default output \{"lint":"not run"\}/);
  });

  it('runs a task\'s own checks and reports what they find', () => {
    const t = tally([completed('a', 1)], { a: { starts: [{ attempt: 1, pid: 10 }], commits: [1] } }, { expectations: [want('a', { checks: [() => 'no attemptLog'] })] });
    expect(t.failures).toEqual(['ex-1/a: no attemptLog']);
  });
});

describe('the ledger', () => {
  const ledger = new Ledger('xl-ledger-test-');
  afterAll(() => rmSync(ledger.dir, { recursive: true, force: true }));
  const run = (taskId: string, attempt: number, body?: string) => {
    try {
      return execFileSync('/bin/sh', ['-c', ledger.command(taskId, body)], { env: { PATH: process.env.PATH, XL_ATTEMPT: String(attempt) }, encoding: 'utf8' });
    } catch (err) {
      return `exit ${(err as { status: number }).status}`;
    }
  };

  it('records a command\'s start and commit, and its output names the task and the attempt', () => {
    expect(JSON.parse(run('ok', 3))).toEqual({ task: 'ok', attempt: 3 });
    expect(ledger.entry('ok')).toEqual({ starts: [{ attempt: 3, pid: expect.any(Number) }], commits: [3] });
  });

  it('records a start without a commit when the command exits early', () => {
    expect(run('early', 1, 'exit 75')).toBe('exit 75');
    expect(ledger.entry('early')).toMatchObject({ starts: [{ attempt: 1 }], commits: [] });
  });

  it('refuses lines it does not know and task ids that are not plan task ids', () => {
    expect(() => parseLedger('start 1 10\nfinish 1\n')).toThrow(/neither a start nor a commit: "finish 1"/);
    expect(() => ledger.entry('../etc')).toThrow(/must match/);
  });

  it('reads finished runs from the agents\' log, skipping lines cut by a worker\'s death', () => {
    const line = JSON.stringify({ level: 'info', msg: 'task finished', executionId: 'ex-1', taskId: 'a', attempt: 1, status: 'failed' });
    expect(parseFinishes(`${line}\n{"msg":"task fin`)).toEqual(new Map([['ex-1/a', [{ attempt: 1, status: 'failed' }]]]));
  });
});
