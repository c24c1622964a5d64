// The claude-code driver with the REAL Claude Code CLI: the binary that the pinned
// @anthropic-ai/claude-agent-sdk ships for this platform (2.1.332), offline. The CLI runs in a
// network namespace whose only interface is loopback, beside a scripted stand-in for the Messages
// API (test/fixtures/real-cli/). What this proves that the stand-in CLI cannot: that the CLI takes
// the driver's flags, that the driver reads what the CLI really writes, that a profile's tools are
// the only ones the model is offered, where the CLI keeps a session, and that a checkpointed session
// really resumes.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoints } from '../../agent/checkpoint.ts';
import { ClaudeCodeDriver, claudeConfigDir, claudeProjectDir, pinnedClaudeBin } from '../../agent/drivers/claude-code.ts';
import type { DriverContext, DriverResult } from '../../agent/drivers/types.ts';
import type { PayloadStore } from '../../core/aws/payload-store.ts';
import type { Task } from '../../core/plan.ts';
import { waitFor } from '../support/processes.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/real-cli/', import.meta.url));
const WRAPPER = join(FIXTURES, 'claude-in-netns.sh');
const CLAUDE_BIN = pinnedClaudeBin() ?? 'the pinned SDK has no Claude Code binary for this platform';
const CLI_VERSION = '2.1.332';

let root: string;
let n = 0;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'xl-real-cli-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Logged {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: {
    model?: string;
    system?: unknown;
    tools?: { name: string }[];
    messages?: { role: string; content: unknown }[];
  };
}

type Response = { text: string } | { toolUse: { name: string; input: Record<string, unknown> } } | { hang: true } | { status: number; type: string; message: string };

interface Scenario {
  ctx: DriverContext;
  requests: () => Promise<Logged[]>;
}

/** A fresh workspace and home, and a model API script. */
async function scenario(responses: Response[], over: Partial<DriverContext> = {}): Promise<Scenario> {
  const dir = join(root, `run-${++n}`);
  const workspace = join(dir, 'workspace');
  const home = join(dir, 'home');
  await mkdir(workspace, { recursive: true });
  await mkdir(home, { recursive: true });
  const script = join(dir, 'script.json');
  const log = join(dir, 'requests.jsonl');
  await writeFile(script, JSON.stringify({ responses }));
  const ctx: DriverContext = {
    workspace,
    home,
    session: {},
    input: { ticket: 'XL-1' },
    signal: new AbortController().signal,
    env: { XL_TASK_ID: 't1', XL_EXECUTION_ID: 'ex-1', XL_ATTEMPT: '1', XL_WORKSPACE: workspace, XL_REAL_CLAUDE_BIN: CLAUDE_BIN, XL_MODEL_SCRIPT: script, XL_MODEL_LOG: log },
    onSpawn() {},
    ...over,
  };
  const requests = async () =>
    existsSync(log)
      ? (await readFile(log, 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Logged)
          .filter((r) => r.url.startsWith('/v1/messages') && !r.url.includes('count_tokens'))
      : [];
  return { ctx, requests };
}

const driver = () =>
  new ClaudeCodeDriver({
    // `unshare -n` needs root; elsewhere a user namespace (-r) gives the same private network.
    bin: 'unshare',
    binArgs: [process.getuid?.() === 0 ? '-n' : '-rn', '--', WRAPPER],
    baseEnv: { PATH: process.env.PATH, LANG: 'C.UTF-8' },
    modelEnv: { ANTHROPIC_API_KEY: 'sk-ant-test-not-a-real-key' },
    silenceSeconds: 60,
  });

const task = (over: Partial<Task> = {}): Task =>
  ({ id: 't1', agentType: 'coder', instructions: 'Write the notes file.', timeoutSeconds: 120, failureStrategy: 'stop', priority: 'normal', ...over }) as Task;

function completed(r: DriverResult): Extract<DriverResult, { status: 'completed' }> {
  if (r.status !== 'completed') throw new Error(`expected completed, got ${JSON.stringify(r)}`);
  return r;
}

describe(`the real Claude Code CLI ${CLI_VERSION}, offline`, () => {
  it('is the pinned version', () => {
    expect(execFileSync(CLAUDE_BIN, ['--version'], { encoding: 'utf8' })).toContain(CLI_VERSION);
  });

  it('takes the driver\'s flags and reports output, cost, tokens and turns that the driver reads', async () => {
    const s = await scenario([{ text: 'All done.\n{"notes":"written","ok":true}' }]);
    const r = completed(await driver().run(task(), s.ctx));
    expect(r.output).toMatchObject({ notes: 'written', ok: true, sessionId: expect.any(String) });
    expect(s.ctx.session!.id).toBe(r.output.sessionId);
    expect(r.cost).toMatchObject({ inputTokens: 120, outputTokens: 30, turns: 1 });
    expect(r.cost!.usd).toBeGreaterThan(0);

    const [first] = await s.requests();
    expect(first!.headers['x-api-key']).toBe('sk-ant-test-not-a-real-key');
    // The profile's role and the task's input reach the model in the system prompt.
    const system = JSON.stringify(first!.body.system);
    expect(system).toContain('You are a coder agent');
    expect(system).toContain('{\\"ticket\\":\\"XL-1\\"}');
  });

  it('offers the model only the tools of the agent type\'s profile', async () => {
    const s = await scenario([{ text: '{"findings":[]}' }]);
    completed(await driver().run(task({ agentType: 'reviewer', instructions: 'Review it.' }), s.ctx));
    const [first] = await s.requests();
    // DeferredToolPlaceholder is the CLI's own ("Reserved placeholder ...; never call this tool").
    const offered = (first!.body.tools ?? []).map((t) => t.name).filter((name) => name !== 'DeferredToolPlaceholder');
    expect(offered.sort()).toEqual(['Glob', 'Grep', 'Read']);
  });

  it('a tool call writes into the workspace, and the session is kept in the run\'s own config directory', async () => {
    const s = await scenario([
      { toolUse: { name: 'Write', input: { file_path: 'NOTES.md', content: 'first notes\n' } } },
      { text: 'Wrote NOTES.md.\n{"file":"NOTES.md"}' },
    ]);
    s.ctx.signal = new AbortController().signal;
    const r = completed(await driver().run(task(), { ...s.ctx, input: {} }));
    expect(r.output).toMatchObject({ file: 'NOTES.md' });
    expect(r.cost!.turns).toBe(2);
    const project = claudeProjectDir(claudeConfigDir(s.ctx.home!), await realpath(s.ctx.workspace));
    expect(await readdir(project)).toContain(`${r.output.sessionId}.jsonl`);
    // The tool's result went back to the model.
    const [, second] = await s.requests();
    expect(JSON.stringify(second!.body.messages)).toContain('tool_result');
  });

  it('an invalid API key (401) is a permanent failure at once (the CLI itself would retry it for minutes)', async () => {
    const s = await scenario([{ status: 401, type: 'authentication_error', message: 'invalid x-api-key' }]);
    const r = await driver().run(task(), s.ctx);
    expect(r).toMatchObject({ status: 'failed', error: { type: 'permanent', message: expect.stringContaining('401') } });
    expect(await s.requests()).toHaveLength(1);
  });

  it('an overloaded API (529) is retried by the CLI itself, and the run succeeds', async () => {
    const s = await scenario([{ status: 529, type: 'overloaded_error', message: 'Overloaded' }, { text: '{"ok":true}' }]);
    const r = completed(await driver().run(task(), s.ctx));
    expect(r.output).toMatchObject({ ok: true });
    expect(await s.requests()).toHaveLength(2);
  });

  it('a repository\'s own Claude settings cannot widen the profile (no project settings, no project MCP servers)', async () => {
    const s = await scenario([{ text: '{"ok":true}' }]);
    await mkdir(join(s.ctx.workspace, '.claude'), { recursive: true });
    await writeFile(join(s.ctx.workspace, '.claude', 'settings.json'), JSON.stringify({ permissions: { allow: ['Bash(*)'] }, env: { PLANTED: '1' } }));
    await writeFile(join(s.ctx.workspace, '.mcp.json'), JSON.stringify({ mcpServers: { planted: { command: 'sh', args: ['-c', 'touch planted-mcp'] } } }));
    completed(await driver().run(task({ agentType: 'reviewer', instructions: 'Review it.' }), s.ctx));
    const [first] = await s.requests();
    expect((first!.body.tools ?? []).map((t) => t.name)).not.toContain('Bash');
    expect(JSON.stringify(first!.body.tools)).not.toContain('planted');
    expect(existsSync(join(s.ctx.workspace, 'planted-mcp'))).toBe(false);
  });

  it('a checkpointed session resumes on a fresh workspace: the resumed call carries the conversation so far', async () => {
    // The first run writes a file, then its next model call never answers: the agent is stopped.
    const abort = new AbortController();
    const first = await scenario([{ toolUse: { name: 'Write', input: { file_path: 'PART1.md', content: 'half of it\n' } } }, { hang: true }], {
      signal: abort.signal,
    });
    const running = driver().run(task(), first.ctx);
    await waitFor(async () => (await first.requests()).length >= 2, 30_000);
    abort.abort(new Error('agent stopping'));
    expect((await running).status).toBe('failed');
    expect(first.ctx.session!.id).toBeTruthy();

    const bucket = new Map<string, Uint8Array>();
    const payloads = {
      putBytes: async (key: string, body: Uint8Array) => (bucket.set(key, body), body.byteLength),
      getBytes: async (key: string) => bucket.get(key)!,
    } as unknown as PayloadStore;
    const checkpoints = new Checkpoints({ payloads });
    const saved = await checkpoints.save({ workspace: first.ctx.workspace, home: first.ctx.home! }, { executionId: 'ex-1', taskId: 't1', attempt: 1 }, first.ctx.session!.id);

    const second = await scenario([{ text: 'Finished the second half.\n{"resumed":true}' }]);
    const { sessionId } = await checkpoints.restore(saved!, { workspace: second.ctx.workspace, home: second.ctx.home! });
    expect(sessionId).toBe(first.ctx.session!.id);
    expect(await readFile(join(second.ctx.workspace, 'PART1.md'), 'utf8')).toBe('half of it\n');

    const r = completed(await driver().run(task(), { ...second.ctx, resume: { sessionId } }));
    expect(r.output).toMatchObject({ resumed: true });
    const [resumed] = await second.requests();
    const conversation = JSON.stringify(resumed!.body.messages);
    expect(conversation).toContain('Write the notes file.'); // the first run's prompt
    expect(conversation).toContain('PART1.md'); // its tool call
    expect(conversation).toContain('You were interrupted'); // and the resume note
  });
});
