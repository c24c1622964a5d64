// An execution's logs: the lines of both writers read as one shape, a task's lines found by its id
// or its index, the local log file paged and followed by byte offset, and CloudWatch's groups merged
// by time with a filter pattern on the execution (the FilterLogEvents call is a fake here).
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CloudWatchLogSource, type FilterLogEventsInput, type FilteredLogEvent, filterPattern } from '../../core/aws/cloudwatch-logs.ts';
import { ExecutionLogs, type LogSource, matchesQuery, toLogLine } from '../../core/logs.ts';
import { FileLogSource } from '../../local/logs.ts';

const powertools = (fields: Record<string, unknown>) => ({ level: 'INFO', message: 'layer event', timestamp: '2026-12-06T10:00:00.000Z', service: 'xl-steps', sampling_rate: 0, ...fields });
const worker = (fields: Record<string, unknown>) => ({ time: '2026-12-06T10:00:01.000Z', level: 'info', msg: 'task finished', agentId: 'coder-1', ...fields });

describe('a log line', () => {
  it("reads a function's Powertools line and an agent's own line as one shape", () => {
    expect(toLogLine(powertools({ executionId: 'ex-1', taskId: 'build', event: 'task.escalated' }))).toEqual({
      time: '2026-12-06T10:00:00.000Z',
      level: 'INFO',
      message: 'layer event',
      source: 'xl-steps',
      executionId: 'ex-1',
      taskId: 'build',
      fields: { sampling_rate: 0, event: 'task.escalated' },
    });
    expect(toLogLine(worker({ executionId: 'ex-1', index: 2, taskId: 'check', attempt: 1 }))).toEqual({
      time: '2026-12-06T10:00:01.000Z',
      level: 'INFO',
      message: 'task finished',
      source: 'agent',
      executionId: 'ex-1',
      taskId: 'check',
      taskIndex: 2,
      agentId: 'coder-1',
      fields: { attempt: 1 },
    });
  });

  it('is none of the layer’s when it has no message or time', () => {
    expect(toLogLine({ hello: 'world' })).toBeUndefined();
    expect(toLogLine([1, 2])).toBeUndefined();
    expect(toLogLine('text')).toBeUndefined();
  });

  it("belongs to a task by the task's id, or by its index when it names no task id", () => {
    const task = { taskId: 'build', taskIndex: 1 };
    const line = (f: Record<string, unknown>) => toLogLine(worker({ executionId: 'ex-1', ...f }))!;
    expect(matchesQuery(line({ taskId: 'build', index: 1 }), { executionId: 'ex-1', task })).toBe(true);
    expect(matchesQuery(line({ index: 1 }), { executionId: 'ex-1', task })).toBe(true);
    expect(matchesQuery(line({ taskId: 'design', index: 0 }), { executionId: 'ex-1', task })).toBe(false);
    expect(matchesQuery(line({ taskId: 'build' }), { executionId: 'ex-2', task })).toBe(false);
    expect(matchesQuery(line({}), { executionId: 'ex-1' })).toBe(true);
  });
});

describe('ExecutionLogs', () => {
  const source: LogSource = { read: async (q) => ({ items: [], followToken: JSON.stringify(q) }) };
  const logs = new ExecutionLogs({
    executions: {
      getExecution: async (id) => (id === 'ex-1' ? { startedAt: '2026-12-06T09:59:00.000Z' } : undefined),
      listTasks: async () => [{ taskId: 'design', index: 0 }, { taskId: 'build', index: 1 }],
    },
    source,
  });

  it("asks the source for the execution's lines since it started, and a task's by its id and index", async () => {
    const page = await logs.read('ex-1', { taskId: 'build', limit: 5 });
    expect(JSON.parse(page.followToken)).toEqual({ executionId: 'ex-1', task: { taskId: 'build', taskIndex: 1 }, limit: 5, since: '2026-12-06T09:59:00.000Z' });
  });

  it('refuses an unknown execution or task with a 404 naming it, and a limit out of range with a 400', async () => {
    await expect(logs.read('ex-9')).rejects.toMatchObject({ status: 404, message: 'no execution ex-9' });
    await expect(logs.read('ex-1', { taskId: 'deploy' })).rejects.toMatchObject({ status: 404, message: 'execution ex-1 has no task deploy (it has: design, build)' });
    await expect(logs.read('ex-1', { limit: 0 })).rejects.toMatchObject({ status: 400 });
    // As the query string gives it: named as written, not as NaN.
    await expect(logs.read('ex-1', { limit: 'ten' })).rejects.toMatchObject({ status: 400, message: 'limit must be an integer from 1 to 1000, got "ten"' });
    await expect(logs.read('ex-1', { limit: '2.5' })).rejects.toMatchObject({ status: 400, message: 'limit must be an integer from 1 to 1000, got "2.5"' });
    expect(JSON.parse((await logs.read('ex-1', { limit: '5' })).followToken)).toMatchObject({ limit: 5 });
    await expect(logs.read('ex-1', { limit: Number.NaN })).rejects.toMatchObject({ status: 400 });
  });
});

describe('the local log file', () => {
  const file = () => join(mkdtempSync(join(tmpdir(), 'xl-logfile-')), 'layer.jsonl');
  const write = (path: string, ...records: unknown[]) => appendFileSync(path, records.map((r) => (typeof r === 'string' ? r : JSON.stringify(r)) + '\n').join(''));

  it('gives an execution its lines a page at a time, skipping other executions and lines that are not JSON', async () => {
    const path = file();
    write(path, worker({ executionId: 'ex-1', taskId: 'a', msg: 'one' }), 'TypeError: a stack trace', worker({ executionId: 'ex-2', msg: 'other' }), worker({ executionId: 'ex-1', msg: 'two' }), powertools({ executionId: 'ex-1', message: 'three' }));
    const logs = new FileLogSource(path);
    const first = await logs.read({ executionId: 'ex-1', limit: 2 });
    expect(first.items.map((l) => l.message)).toEqual(['one', 'two']);
    expect(first.nextToken).toBeDefined();
    const second = await logs.read({ executionId: 'ex-1', limit: 2, nextToken: first.nextToken });
    expect(second.items.map((l) => l.message)).toEqual(['three']);
    expect(second.nextToken).toBeUndefined();
  });

  it('follows: a follow token gives only the lines written after it, and a line still being written waits', async () => {
    const path = file();
    const logs = new FileLogSource(path);
    const empty = await logs.read({ executionId: 'ex-1', limit: 10 }); // nothing written yet
    expect(empty.items).toEqual([]);
    write(path, worker({ executionId: 'ex-1', msg: 'one' }));
    appendFileSync(path, JSON.stringify(worker({ executionId: 'ex-1', msg: 'two' })).slice(0, 20));
    const page = await logs.read({ executionId: 'ex-1', limit: 10, nextToken: empty.followToken });
    expect(page.items.map((l) => l.message)).toEqual(['one']);
    appendFileSync(path, JSON.stringify(worker({ executionId: 'ex-1', msg: 'two' })).slice(20) + '\n');
    const later = await logs.read({ executionId: 'ex-1', limit: 10, nextToken: page.followToken });
    expect(later.items.map((l) => l.message)).toEqual(['two']);
  });

  it('refuses a token it did not give', async () => {
    await expect(new FileLogSource(file()).read({ executionId: 'ex-1', limit: 1, nextToken: 'not-a-token' })).rejects.toMatchObject({ status: 400 });
  });
});

describe('CloudWatch Logs', () => {
  it('filters on the execution, and on a task by its id or its index (the worker writes `index`)', () => {
    expect(filterPattern({ executionId: 'ex-1' })).toBe('{ $.executionId = "ex-1" }');
    expect(filterPattern({ executionId: 'ex-1', task: { taskId: 'build', taskIndex: 1 } })).toBe(
      '{ ($.executionId = "ex-1") && (($.taskId = "build") || ($.taskIndex = 1) || ($.index = 1)) }',
    );
  });

  /** FilterLogEvents over fixed groups: events at or after startTime, `limit` per page. */
  function fakeLogs(groups: Record<string, FilteredLogEvent[]>) {
    const calls: FilterLogEventsInput[] = [];
    const filterLogEvents = async (input: FilterLogEventsInput) => {
      calls.push(input);
      const all = groups[input.logGroupName]!.filter((e) => e.timestamp! >= (input.startTime ?? 0));
      const from = Number(input.nextToken ?? 0);
      const events = all.slice(from, from + (input.limit ?? 10_000));
      return { events, ...(from + events.length < all.length ? { nextToken: String(from + events.length) } : {}) };
    };
    return { filterLogEvents, calls };
  }
  const event = (id: string, t: number, message: string) => ({ eventId: id, timestamp: t, message: JSON.stringify(powertools({ executionId: 'ex-1', message, timestamp: new Date(t).toISOString() })) });

  it("merges the groups' lines by time, pages without repeating a line, and starts at the execution's start", async () => {
    const { filterLogEvents, calls } = fakeLogs({
      '/aws/lambda/steps': [event('s1', 1000, 'prepare'), event('s2', 3000, 'finalize')],
      '/ecs/agents': [event('a1', 2000, 'claimed'), event('a2', 2000, 'finished'), event('a3', 4000, 'late')],
    });
    const source = new CloudWatchLogSource({ logGroups: ['/aws/lambda/steps', '/ecs/agents'], filterLogEvents });
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await source.read({ executionId: 'ex-1', limit: 2, since: new Date(500).toISOString(), ...(token ? { nextToken: token } : {}) });
      seen.push(...page.items.map((l) => l.message));
      token = page.nextToken;
    } while (token);
    expect(seen).toEqual(['prepare', 'claimed', 'finished', 'finalize', 'late']);
    expect(calls[0]).toMatchObject({ filterPattern: '{ $.executionId = "ex-1" }', startTime: 500 });
  });

  it('needs the log groups named in XL_LOG_GROUPS', () => {
    expect(() => CloudWatchLogSource.fromEnv(async () => ({}), {})).toThrow(/XL_LOG_GROUPS/);
  });
});
