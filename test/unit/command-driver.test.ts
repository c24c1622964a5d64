// The command driver as CONTRACT.md "Command tasks" specifies it, against real /bin/sh processes.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandDriver, commandOutput } from '../../agent/drivers/command.ts';
import type { DriverContext, DriverResult } from '../../agent/drivers/types.ts';
import type { Task } from '../../core/plan.ts';
import { driverContext } from '../support/drivers.ts';
import { alive, waitFor } from '../support/processes.ts';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'xl-command-test-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const task = (command: string, timeoutSeconds = 30): Task =>
  ({ id: 't1', agentType: 'tester', command, timeoutSeconds, failureStrategy: 'stop', priority: 'normal' }) as Task;

const context = (over: Partial<DriverContext> = {}) => driverContext(root, { hello: 'world' }, {}, over);

/** The output of a completed run (fails the test otherwise). */
function outputOf(r: DriverResult): Record<string, unknown> {
  if (r.status !== 'completed') throw new Error(`expected completed, got ${JSON.stringify(r)}`);
  return r.output;
}

const driver = new CommandDriver({
  baseEnv: {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_SESSION_TOKEN: 'session',
    XL_TASK_TOKEN: 'token-123',
    TASK_TOKEN: 'token-123',
  },
});

describe('command driver output', () => {
  it('takes the last non-empty stdout line when it is a JSON object', async () => {
    const r = await driver.run(task(`echo progress; echo '{"a":1,"b":[2]}'; echo; echo '  '`), await context());
    expect(r).toEqual({ status: 'completed', output: { a: 1, b: [2] } });
  });

  it('falls back to the tail of stdout when the last line is not a JSON object', async () => {
    expect(await driver.run(task(`echo '{"a":1}'; echo done`), await context())).toEqual({
      status: 'completed',
      output: { stdout: '{"a":1}\ndone\n' },
    });
    expect(await driver.run(task(`echo '[1,2]'`), await context())).toEqual({ status: 'completed', output: { stdout: '[1,2]\n' } });
    expect(await driver.run(task('true'), await context())).toEqual({ status: 'completed', output: { stdout: '' } });
  });

  it('keeps only the last 4 KiB of stdout in the fallback', async () => {
    const r = await driver.run(task(`head -c 10000 /dev/zero | tr '\\0' x; echo; echo tail-end`), await context());
    expect(r.status).toBe('completed');
    const out = outputOf(r).stdout as string;
    expect(out.length).toBe(4096);
    expect(out.endsWith('x\ntail-end\n')).toBe(true);
  });

  it('parses a 1 MiB JSON last line', async () => {
    const ws = await context();
    const big = 'y'.repeat(1024 * 1024);
    await writeFile(join(ws.workspace, 'big.json'), JSON.stringify({ big }) + '\n');
    const r = await driver.run(task(`echo noise; cat big.json`), ws);
    expect(r.status).toBe('completed');
    expect((outputOf(r).big as string).length).toBe(big.length);
  });

  it('commandOutput ignores surrounding whitespace and CRLF', () => {
    expect(commandOutput(Buffer.from('x\r\n  {"k":true}  \r\n\r\n'))).toEqual({ k: true });
    expect(commandOutput(Buffer.from('{"k":tru'))).toEqual({ stdout: '{"k":tru' });
  });
});

describe('command driver exit mapping', () => {
  it('exit 0 is completed', async () => {
    expect((await driver.run(task('exit 0'), await context())).status).toBe('completed');
  });

  it('exit 75 is a transient error', async () => {
    expect(await driver.run(task('echo try later >&2; exit 75'), await context())).toEqual({
      status: 'failed',
      error: { type: 'transient', source: 'command', message: 'try later' },
    });
  });

  it('another exit is permanent with the tail of stderr as the message', async () => {
    expect(await driver.run(task('echo first >&2; echo boom >&2; exit 3'), await context())).toEqual({
      status: 'failed',
      error: { type: 'permanent', source: 'command', message: 'first\nboom' },
    });
    const r = await driver.run(task(`head -c 10000 /dev/zero | tr '\\0' e >&2; echo END >&2; exit 1`), await context());
    expect(r.status).toBe('failed');
    const message = (r as { error: { message: string } }).error.message;
    expect(message.length).toBeLessThanOrEqual(4096);
    expect(message.endsWith('eeeEND')).toBe(true);
  });

  it('says "exit code N" when stderr is empty', async () => {
    expect(await driver.run(task('exit 4'), await context())).toEqual({
      status: 'failed',
      error: { type: 'permanent', source: 'command', message: 'exit code 4' },
    });
  });

  it('a command killed by a signal it did not get from us is transient', async () => {
    const r = await driver.run(task('kill -TERM $$'), await context());
    expect(r).toEqual({ status: 'failed', error: { type: 'transient', source: 'command', message: 'killed by signal SIGTERM' } });
  });

  it('a command past its timeout is killed and fails with timeout, and its grandchildren die too', async () => {
    const ctx = await context();
    const started = Date.now();
    const r = await driver.run(task(`sleep 30 & echo $! > pidfile; wait`, 1), ctx);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r).toEqual({ status: 'failed', error: { type: 'timeout', source: 'command', message: 'timed out after 1 s' } });
    const grandchild = Number((await readFile(join(ctx.workspace, 'pidfile'), 'utf8')).trim());
    expect(grandchild).toBeGreaterThan(1);
    await waitFor(() => !alive(grandchild), 3000);
    expect(ctx.spawned).toHaveLength(1);
  });

  it('an abort kills the whole process group at once', async () => {
    const abort = new AbortController();
    const ctx = await context({ signal: abort.signal });
    const running = driver.run(task(`sleep 30 & echo $! > pidfile; wait`), ctx);
    await waitFor(async () => (await readFile(join(ctx.workspace, 'pidfile'), 'utf8').catch(() => '')).trim() !== '', 3000);
    const grandchild = Number((await readFile(join(ctx.workspace, 'pidfile'), 'utf8')).trim());
    abort.abort(new Error('claim lost'));
    const r = await running;
    expect(r).toEqual({ status: 'failed', error: { type: 'transient', source: 'command', message: 'stopped: claim lost' } });
    await waitFor(() => !alive(grandchild), 3000);
  });

  it('what a command leaves running in the background does not outlive it', async () => {
    const ctx = await context();
    const r = await driver.run(task(`sleep 30 & echo $! > pidfile; echo '{"ok":true}'`), ctx);
    expect(r).toEqual({ status: 'completed', output: { ok: true } });
    const leftover = Number((await readFile(join(ctx.workspace, 'pidfile'), 'utf8')).trim());
    await waitFor(() => !alive(leftover), 3000);
  });
});

describe('command driver environment and input', () => {
  const envOf = async (ctx: DriverContext) => {
    const r = await driver.run(task('env'), ctx);
    return outputOf(r).stdout as string;
  };

  it('gives the command an allowlisted environment: no AWS credentials, no token', async () => {
    const ctx = await context({ input: {} });
    const r = await driver.run(task(`env | cut -d= -f1 | sort | tr '\\n' ' '`), ctx);
    const names = (outputOf(r).stdout as string).trim().split(' ');
    expect(names.filter((n) => n.startsWith('AWS_'))).toEqual([]);
    expect(names.filter((n) => /TOKEN/.test(n))).toEqual([]);
    const allowed = new Set(['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'USER', 'SHELL', 'TERM', 'PWD', 'SHLVL', '_', 'OLDPWD']);
    const unexpected = names.filter((n) => !allowed.has(n) && !n.startsWith('XL_'));
    expect(unexpected).toEqual([]);
    expect(names).toEqual(expect.arrayContaining(['XL_TASK_ID', 'XL_EXECUTION_ID', 'XL_ATTEMPT', 'XL_WORKSPACE', 'XL_INPUT']));
    const text = await envOf(ctx);
    expect(text).not.toMatch(/secret|AKIDEXAMPLE|token-123/);
  });

  it('runs in the workspace and passes the task variables', async () => {
    const ctx = await context();
    const r = await driver.run(task(`printf '{"pwd":"%s","id":"%s","attempt":"%s","ws":"%s"}\\n' "$(pwd)" "$XL_TASK_ID" "$XL_ATTEMPT" "$XL_WORKSPACE"`), ctx);
    expect(r).toEqual({ status: 'completed', output: { pwd: ctx.workspace, id: 't1', attempt: '1', ws: ctx.workspace } });
  });

  it('puts a small input in XL_INPUT and on stdin', async () => {
    const ctx = await context({ input: { n: 42, s: 'x' } });
    const r = await driver.run(task(`printf '%s' "$XL_INPUT" > env.json; cat > stdin.json; echo '{}'`), ctx);
    expect(r.status).toBe('completed');
    expect(JSON.parse(await readFile(join(ctx.workspace, 'env.json'), 'utf8'))).toEqual({ n: 42, s: 'x' });
    expect(JSON.parse(await readFile(join(ctx.workspace, 'stdin.json'), 'utf8'))).toEqual({ n: 42, s: 'x' });
  });

  it('leaves XL_INPUT out above 64 KiB while stdin still carries the input', async () => {
    const input = { big: 'z'.repeat(70 * 1024) };
    const ctx = await context({ input });
    const r = await driver.run(task(`printf '%s' "\${XL_INPUT-unset}" > env.txt; cat > stdin.json; echo '{}'`), ctx);
    expect(r.status).toBe('completed');
    expect(await readFile(join(ctx.workspace, 'env.txt'), 'utf8')).toBe('unset');
    expect(JSON.parse(await readFile(join(ctx.workspace, 'stdin.json'), 'utf8'))).toEqual(input);
  });

  it('a command that ignores a large stdin still completes', async () => {
    const ctx = await context({ input: { big: 'q'.repeat(2 * 1024 * 1024) } });
    expect(await driver.run(task(`echo '{"ignored":true}'`), ctx)).toEqual({ status: 'completed', output: { ignored: true } });
  });

  it('reports its process group before the command ends', async () => {
    const ctx = await context();
    const release = join(ctx.workspace, 'go');
    const running = driver.run(task(`while [ ! -e go ]; do sleep 0.05; done; echo "{\\"pgid\\":$(ps -o pgid= $$ | tr -d ' ')}"`), ctx);
    await waitFor(() => ctx.spawned.length === 1, 3000); // while the command still waits
    await writeFile(release, '');
    expect(await running).toEqual({ status: 'completed', output: { pgid: ctx.spawned[0] } });
  });
});
