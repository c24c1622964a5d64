// The claude-code driver against a stand-in for the `claude` CLI (test/fixtures/claude-standin.mjs)
// that plays synthesized stream-json transcripts (test/fixtures/claude-transcripts/).
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClaudeCodeDriver, RESUME_NOTE, claudeProjectDir, mapResult, resultOutput } from '../../agent/drivers/claude-code.ts';
import { classifyModelApiText } from '../../core/classify.ts';
import type { DriverContext, DriverResult } from '../../agent/drivers/types.ts';
import { effectiveLimits, profileFor } from '../../agent/profiles.ts';
import type { Task } from '../../core/plan.ts';
import { driverContext } from '../support/drivers.ts';
import { alive } from '../support/processes.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const STANDIN = join(FIXTURES, 'claude-standin.mjs');
const transcript = (name: string) => join(FIXTURES, 'claude-transcripts', `${name}.jsonl`);
const SESSION = '5f1c2a3e-0000-4000-8000-000000000001';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'xl-claude-test-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const task = (over: Partial<Task> = {}): Task =>
  ({
    id: 't1',
    agentType: 'coder',
    instructions: 'Change a to 2 in a.ts',
    timeoutSeconds: 30,
    failureStrategy: 'stop',
    priority: 'normal',
    ...over,
  }) as Task;

const context = (standin: Record<string, string>, over: Partial<DriverContext> = {}) => driverContext(root, { repo: 'example', n: 1 }, standin, over);

const driver = (over: ConstructorParameters<typeof ClaudeCodeDriver>[0] = {}) =>
  new ClaudeCodeDriver({
    bin: process.execPath,
    binArgs: [STANDIN],
    baseEnv: {
      ...process.env,
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_SESSION_TOKEN: 'session',
      XL_TASK_TOKEN: 'token-123',
      GITHUB_TOKEN: 'ghp_x',
      ANTHROPIC_API_KEY: 'from-the-worker-env',
    },
    modelEnv: { ANTHROPIC_API_KEY: 'sk-test-explicit' },
    ...over,
  });

function failure(r: DriverResult): { type: string; message: string } {
  if (r.status !== 'failed') throw new Error(`expected failed, got ${JSON.stringify(r)}`);
  return r.error;
}

describe('claude-code driver against the stand-in', () => {
  it('maps a success to its output, with cost, tokens and the turns it counted', async () => {
    const envOut = join(root, 'env-success.json');
    const ctx = await context({ XL_STANDIN_TRANSCRIPT: transcript('success'), XL_STANDIN_ENV_OUT: envOut });
    const r = await driver().run(task(), ctx);
    expect(r).toEqual({
      status: 'completed',
      output: { changed: ['a.ts'], ok: true, sessionId: SESSION },
      cost: { usd: 0.0123, inputTokens: 3120, outputTokens: 95, turns: 3 },
    });
    expect(ctx.spawned).toHaveLength(1);

    const seen = JSON.parse(await readFile(envOut, 'utf8')) as { argv: string[]; env: Record<string, string> };
    const argv = seen.argv;
    expect(argv.slice(0, 2)).toEqual(['-p', 'Change a to 2 in a.ts']);
    const flag = (name: string) => {
      const at = argv.indexOf(name);
      if (at < 0) throw new Error(`${name} was not passed`);
      return argv[at + 1];
    };
    expect(flag('--output-format')).toBe('stream-json');
    expect(argv).toContain('--verbose');
    expect(flag('--max-turns')).toBe('80');
    expect(flag('--allowedTools')).toBe('Read,Edit,Write,Glob,Grep,Bash');
    expect(flag('--permission-mode')).toBe('acceptEdits');
    expect(flag('--model')).toBe(profileFor('coder', {}).model);
    expect(flag('--tools')).toBe('Read,Edit,Write,Glob,Grep,Bash');
    expect(flag('--append-system-prompt')).toContain('coder agent');
    expect(flag('--append-system-prompt')).toContain('{"repo":"example","n":1}');
  });

  it('passes no AWS credentials and no token; the API key only as given explicitly', async () => {
    const envOut = join(root, 'env-scrub.json');
    await driver().run(task(), await context({ XL_STANDIN_TRANSCRIPT: transcript('success'), XL_STANDIN_ENV_OUT: envOut }));
    const { env } = JSON.parse(await readFile(envOut, 'utf8')) as { env: Record<string, string> };
    expect(Object.keys(env).filter((k) => k.startsWith('AWS_'))).toEqual([]);
    expect(Object.keys(env).filter((k) => /TOKEN/i.test(k))).toEqual([]);
    expect(env.ANTHROPIC_API_KEY).toBe('sk-test-explicit');
    expect(env.XL_TASK_ID).toBe('t1');
    expect(() => new ClaudeCodeDriver({ modelEnv: { AWS_SECRET_ACCESS_KEY: 'x' } as never })).toThrow(/not a model credential/);
  });

  it('keeps the session in the run\'s own config directory and reports its id as soon as it starts', async () => {
    const envOut = join(root, 'env-home.json');
    const home = await mkdtemp(join(root, 'home-'));
    const session: { id?: string } = {};
    const r = await driver().run(task(), await context({ XL_STANDIN_TRANSCRIPT: transcript('success'), XL_STANDIN_ENV_OUT: envOut }, { home, session }));
    expect(r.status).toBe('completed');
    expect(session.id).toBe(SESSION);
    const { env } = JSON.parse(await readFile(envOut, 'utf8')) as { env: Record<string, string> };
    expect(env.CLAUDE_CONFIG_DIR).toBe(join(home, '.claude'));
  });

  it('resumes a checkpointed session: --resume with its id, and the instructions after a note on why', async () => {
    const envOut = join(root, 'env-resume.json');
    const home = await mkdtemp(join(root, 'home-'));
    const ctx = await context({ XL_STANDIN_ENV_OUT: envOut }, { home, resume: { sessionId: 'sess-7' } });
    // The stand-in, like the CLI, needs the session's transcript where the CLI keeps it.
    const project = claudeProjectDir(join(home, '.claude'), await realpath(ctx.workspace));
    await mkdir(project, { recursive: true });
    await writeFile(join(project, 'sess-7.jsonl'), '{}\n');
    const r = await driver().run(task(), ctx);
    expect(r).toMatchObject({ status: 'completed', output: { resumed: true } });
    const { argv } = JSON.parse(await readFile(envOut, 'utf8')) as { argv: string[] };
    expect(argv[argv.indexOf('--resume') + 1]).toBe('sess-7');
    expect(argv[argv.indexOf('-p') + 1]).toBe(`${RESUME_NOTE}\n\nChange a to 2 in a.ts`);
  });

  it('fails a resume whose transcript is missing as the CLI does (a transient failure: the retry starts afresh)', async () => {
    const home = await mkdtemp(join(root, 'home-'));
    const r = await driver().run(task(), await context({}, { home, resume: { sessionId: 'gone' } }));
    expect(failure(r)).toMatchObject({ type: 'transient', message: expect.stringContaining('No conversation found with session ID: gone') });
  });

  it('kills the CLI at the task\'s max turns (resource), whatever the CLI does', async () => {
    const started = Date.now();
    const ctx = await context({ XL_STANDIN_TRANSCRIPT: transcript('max-turns') });
    const r = await driver().run(task({ limits: { maxTurns: 3 } }), ctx);
    expect(failure(r)).toEqual({ type: 'resource', source: 'claude-code', message: 'max turns 3 reached' });
    expect(r.cost).toEqual({ usd: 0, inputTokens: 400, outputTokens: 40, turns: 4 });
    expect(Date.now() - started).toBeLessThan(20_000); // generous: a loaded machine must not fail this
    expect(alive(ctx.spawned[0]!)).toBe(false);
  });

  it('the CLI\'s own error_max_turns is resource too', async () => {
    const r = await driver().run(task(), await context({ XL_STANDIN_TRANSCRIPT: transcript('error-max-turns') }));
    expect(failure(r).type).toBe('resource');
    expect(r.cost).toEqual({ usd: 0.002, inputTokens: 100, outputTokens: 10, turns: 1 });
  });

  it('overloaded (529) is a failure of the model API, a dependency; the next run succeeds', async () => {
    const standin = {
      XL_STANDIN_TRANSCRIPT: transcript('overloaded'),
      XL_STANDIN_TRANSCRIPT_2: transcript('success'),
      XL_STANDIN_COUNTER: join(root, 'counter'),
    };
    const first = await driver().run(task(), await context(standin));
    expect(failure(first)).toMatchObject({ type: 'dependency', source: 'model-api' });
    expect(failure(first).message).toMatch(/529.*overloaded/i);
    const second = await driver().run(task(), await context(standin));
    expect(second.status).toBe('completed');
  });

  it('an invalid API key is permanent, at the CLI\'s first retry of it', async () => {
    const r = await driver().run(task(), await context({ XL_STANDIN_TRANSCRIPT: transcript('auth-error') }));
    expect(failure(r)).toEqual({ type: 'permanent', source: 'model-api', message: 'the model API refused the credentials (401 authentication_failed)' });
  });

  it('a silent stream is ended by the watchdog (transient), with everything in its group', async () => {
    const pidOut = join(root, 'hang-pid');
    const started = Date.now();
    const ctx = await context({ XL_STANDIN_TRANSCRIPT: transcript('hang'), XL_STANDIN_MODE: 'hang', XL_STANDIN_PID_OUT: pidOut });
    const r = await driver({ silenceSeconds: 1 }).run(task(), ctx);
    expect(failure(r)).toEqual({ type: 'transient', source: 'claude-code', message: 'no output for 1 s' });
    expect(r.cost?.turns).toBe(1);
    expect(Date.now() - started).toBeLessThan(20_000); // the stand-in hangs for 1000 s
    expect(alive(Number(await readFile(pidOut, 'utf8')))).toBe(false);
  });

  it('a CLI that hangs after its result is killed after a short grace; the result stands', async () => {
    const started = Date.now();
    const ctx = await context({ XL_STANDIN_TRANSCRIPT: transcript('success'), XL_STANDIN_MODE: 'hang' });
    const r = await driver({ resultGraceMs: 200 }).run(task(), ctx);
    expect(r.status).toBe('completed');
    expect(Date.now() - started).toBeLessThan(20_000); // the stand-in hangs for 1000 s after its result
    expect(alive(ctx.spawned[0]!)).toBe(false);
  });

  it('a crash without a result is transient with the tail of stderr', async () => {
    const r = await driver().run(task(), await context({ XL_STANDIN_TRANSCRIPT: transcript('crash'), XL_STANDIN_MODE: 'crash' }));
    const error = failure(r);
    expect(error.type).toBe('transient');
    expect(error.message).toMatch(/^exit code 1: Error: something inside the CLI broke/);
    expect(error.message).toMatch(/fatal: cannot continue$/);
    expect(r.cost).toEqual({ usd: 0, inputTokens: 0, outputTokens: 0, turns: 0 });
  });

  it('times out (timeout) and stops on abort (transient)', async () => {
    const hang = { XL_STANDIN_TRANSCRIPT: transcript('hang'), XL_STANDIN_MODE: 'hang' };
    expect(failure(await driver().run(task({ timeoutSeconds: 1 }), await context(hang))).type).toBe('timeout');
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('claim lost')), 300);
    expect(failure(await driver().run(task(), await context(hang, { signal: ac.signal })))).toEqual({
      type: 'transient',
      source: 'claude-code',
      message: 'stopped: claim lost',
    });
  });

  it('a missing CLI is permanent; a task without instructions is a validation error', async () => {
    const r = await new ClaudeCodeDriver({ bin: join(root, 'no-such-claude') }).run(task(), await context({}));
    expect(failure(r).type).toBe('permanent');
    expect(failure(await driver().run(task({ instructions: undefined }), await context({}))).type).toBe('validation');
  });
});

describe('claude-code driver mapping', () => {
  it('maps result subtypes and error texts', () => {
    expect(mapResult({ type: 'result', subtype: 'success', is_error: false, result: 'all done' }, 's1')).toEqual({
      status: 'completed',
      output: { result: 'all done', sessionId: 's1' },
    });
    expect(mapResult({ type: 'result', subtype: 'error_max_budget_usd', is_error: true }, 's1')).toMatchObject({ error: { type: 'resource' } });
    expect(mapResult({ type: 'result', subtype: 'error_during_execution', is_error: true, errors: ['boom'] }, 's1')).toEqual({
      status: 'failed',
      error: { type: 'transient', source: 'claude-code', message: 'boom' },
    });
    expect(mapResult({ type: 'result', subtype: 'error_during_execution', is_error: true }, 's1', 'API Error: 401 authentication_error')).toMatchObject({
      error: { type: 'permanent', source: 'model-api' },
    });
    expect(classifyModelApiText('API Error: 429 rate_limit_error')?.type).toBe('transient');
    expect(classifyModelApiText('something else')).toBeUndefined();
    expect(resultOutput('text\n{"a":1}\n', 's')).toEqual({ a: 1, sessionId: 's' });
    expect(resultOutput('text\n[1]', undefined)).toEqual({ result: 'text\n[1]' });
  });

  it('a task\'s limits only narrow the profile\'s', () => {
    const p = profileFor('reviewer', {});
    expect(p.allowedTools).toEqual(['Read', 'Glob', 'Grep']);
    expect(p.permissionMode).toBe('default');
    expect(profileFor('coder', { XL_CLAUDE_MODEL: 'opus' }).model).toBe('opus');
    expect(effectiveLimits(p, { timeoutSeconds: 1800, limits: { maxTurns: 5, maxBudgetUsd: 99 } })).toEqual({
      maxTurns: 5,
      maxBudgetUsd: p.limits.maxBudgetUsd,
      timeoutSeconds: Math.min(p.limits.timeoutSeconds, 1800),
    });
    expect(effectiveLimits(p, { timeoutSeconds: 60 })).toEqual({ ...p.limits, timeoutSeconds: 60 });
  });
});
