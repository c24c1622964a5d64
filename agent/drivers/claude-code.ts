// The `claude-code` driver: a task with `instructions` runs as a headless Claude Code CLI
// (`claude -p ... --output-format stream-json --verbose`) in the task's workspace, with the same
// process handling as the command driver: a process group of its own (killed as one), an
// allowlisted environment, the optional switch to another user, a timeout and the abort signal.
//
// We do not trust the CLI to stop itself: we count the turns from the stream and kill the group at
// the task's limit, we stop a stream that goes silent, and we stop waiting shortly after the result
// (runs are known to hang after it).
import { chown, open, rm } from 'node:fs/promises';
import { constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { classifyModelApiStatus, classifyModelApiText } from '../../core/classify.ts';
import type { TaskError } from '../../core/errors.ts';
import { enginePrompt } from '../../core/engines/index.ts';
import type { Task } from '../../core/plan.ts';
import type { TaskCost } from '../../core/records.ts';
import type { AgentType } from '../../core/agent-types.ts';
import { allProfiles, effectiveLimits, type AgentLimits, type AgentProfile } from '../profiles.ts';
import type { ModelAccess, ModelSession } from '../model-proxy.ts';
import type { RunAs } from '../run-as.ts';
import { ENV_ALLOWLIST, TAIL_BYTES, TailBuffer, runProcessGroup, startFailureType, utf8Tail } from './process.ts';
import type { Driver, DriverContext, DriverResult } from './types.ts';

/**
 * The only model variables the CLI may be given, and only from the options (never taken from the
 * worker's environment). With `modelAccess` (agent/model-proxy.ts) they name the loopback proxy and
 * a per-run token, so no long-lived secret reaches the agent's process. Never AWS_* credentials
 * (AWS_REGION is none: the CLI picks Bedrock model ids by it), never a task token.
 */
export const MODEL_ENV_ALLOWLIST = [
  'ANTHROPIC_API_KEY',
  'ANTHROPIC_BASE_URL',
  'CLAUDE_CODE_USE_BEDROCK',
  'ANTHROPIC_BEDROCK_BASE_URL',
  'CLAUDE_CODE_SKIP_BEDROCK_AUTH',
  'ANTHROPIC_CUSTOM_HEADERS',
  'AWS_REGION',
] as const;
export type ModelEnvName = (typeof MODEL_ENV_ALLOWLIST)[number];

/** Set for every run: no auto-update, no telemetry or other non-essential traffic. */
const FIXED_ENV = { DISABLE_AUTOUPDATER: '1', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' } as const;

/** The Claude Code config directory of a run: in its private home, outside the workspace. */
export const claudeConfigDir = (home: string) => join(home, '.claude');

/**
 * Where Claude Code keeps the transcripts of sessions run in `cwd`: `<config>/projects/<cwd with
 * every character but ASCII letters and digits replaced by '-'>`. A resumed session runs in another
 * workspace, so its transcript is moved to the new directory's name before `--resume`.
 */
export const claudeProjectDir = (configDir: string, cwd: string) => join(configDir, 'projects', cwd.replace(/[^A-Za-z0-9]/g, '-'));

/** What a Claude Code session id looks like (a UUID). */
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The first words of a resumed session's prompt. */
export const RESUME_NOTE =
  'You were interrupted: the agent running this task was stopped. This session resumes on another agent, and the working directory holds your work so far. Continue the task where you left off.';

export const DEFAULT_SILENCE_SECONDS = 300;
/** On abort, how long the CLI has after SIGTERM before its group is killed. */
export const ABORT_GRACE_MS = 3000;
/** After the result message, how long the CLI gets to exit before its group is killed. */
export const DEFAULT_RESULT_GRACE_MS = 2000;
/** A stream-json line longer than this is skipped (tool results can be big; we need none of them). */
export const LINE_CAP_BYTES = 4 * 1024 * 1024;
/** One argv string may not exceed 128 KiB (MAX_ARG_STRLEN): past this, the prompt goes on stdin. */
export const PROMPT_ARG_MAX_BYTES = 96 * 1024;
/** The task input goes into the system prompt up to this size; past it, into a file in the workspace. */
export const INPUT_IN_PROMPT_MAX_BYTES = 64 * 1024;
export const INPUT_FILE = '.xl-input.json';

export interface ClaudeCodeDriverOptions {
  /** The CLI (default: env XL_CLAUDE_BIN, else the pinned SDK's binary, else `claude` on PATH). */
  bin?: string;
  /** Arguments before ours (a stand-in script for `node`, in tests). */
  binArgs?: string[];
  /** Where the allowlisted variables (and XL_CLAUDE_BIN, XL_CLAUDE_MODEL) come from (default: process.env). */
  baseEnv?: NodeJS.ProcessEnv;
  /** Model credentials, given explicitly; names outside MODEL_ENV_ALLOWLIST are refused. */
  modelEnv?: Partial<Record<ModelEnvName, string>>;
  /** Per-run model variables (the loopback proxy's URL and token), revoked when the run ends; over modelEnv. */
  modelAccess?: ModelAccess;
  /** Run the CLI as this user (agent/run-as.ts); the workspace is handed to it first. */
  runAs?: RunAs;
  /** After each run: kill what its user still runs (see ProcessGroupRun.reap). */
  reap?: () => Promise<void>;
  /** No stdout for this long ends the run as transient (default 300). */
  silenceSeconds?: number;
  resultGraceMs?: number;
  /** Per-type overrides of agent/profiles.ts. */
  profiles?: Partial<Record<AgentType, AgentProfile>>;
  /**
   * Prices to estimate the cost while the stream runs (the CLI reports its cost only in the
   * result). With them, maxBudgetUsd is enforced mid-run; without, only the result's cost counts.
   */
  pricing?: { inputUsdPerMTok: number; outputUsdPerMTok: number; cacheReadUsdPerMTok?: number };
  /** Also pass `--max-budget-usd` (CLI versions that know it; ours is enforced either way). */
  passBudgetFlag?: boolean;
}

/**
 * The Claude Code binary that the pinned @anthropic-ai/claude-agent-sdk installs for this platform
 * (an optional dependency per os and cpu): the one the tests run, locally and in the image.
 */
export function pinnedClaudeBin(): string | undefined {
  if (process.platform !== 'linux' && process.platform !== 'darwin') return undefined;
  const cpu = process.arch === 'arm64' ? 'arm64' : 'x64';
  for (const pkg of [`@anthropic-ai/claude-agent-sdk-${process.platform}-${cpu}`, `@anthropic-ai/claude-agent-sdk-${process.platform}-${cpu}-musl`]) {
    try {
      const bin = join(dirname(requireFrom(`${pkg}/package.json`)), 'claude');
      if (existsSync(bin)) return bin;
    } catch {
      // not installed for this platform
    }
  }
  return undefined;
}
const requireFrom = createRequire(import.meta.url).resolve;

/** The `result` message of the stream (the fields we read). */
export interface ResultMessage {
  type: 'result';
  subtype?: string;
  is_error?: boolean;
  result?: string;
  num_turns?: number;
  total_cost_usd?: number;
  usage?: Usage;
  session_id?: string;
  errors?: unknown[];
}
interface Usage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

type Failure = TaskError;

export class ClaudeCodeDriver implements Driver {
  readonly name = 'claude-code';
  private readonly baseEnv: Record<string, string> = {};
  private readonly modelEnv: Record<string, string>;
  private readonly modelAccess?: ModelAccess;
  /** The CLI it runs (for the agent's capability check). */
  readonly bin: string;
  private readonly binArgs: string[];
  private readonly runAs?: RunAs;
  private readonly reap?: () => Promise<void>;
  private readonly silenceMs: number;
  private readonly resultGraceMs: number;
  private readonly profiles: Record<AgentType, AgentProfile>;
  private readonly pricing?: ClaudeCodeDriverOptions['pricing'];
  private readonly passBudgetFlag: boolean;

  constructor(opts: ClaudeCodeDriverOptions = {}) {
    const source = opts.baseEnv ?? process.env;
    for (const name of ENV_ALLOWLIST) {
      const value = source[name];
      if (value !== undefined) this.baseEnv[name] = value;
    }
    this.modelEnv = modelVariables(opts.modelEnv ?? {});
    this.modelAccess = opts.modelAccess;
    this.bin = opts.bin ?? (source.XL_CLAUDE_BIN || pinnedClaudeBin() || 'claude');
    this.binArgs = opts.binArgs ?? [];
    this.runAs = opts.runAs;
    this.reap = opts.reap;
    this.silenceMs = (opts.silenceSeconds ?? DEFAULT_SILENCE_SECONDS) * 1000;
    this.resultGraceMs = opts.resultGraceMs ?? DEFAULT_RESULT_GRACE_MS;
    this.profiles = { ...allProfiles(source), ...opts.profiles } as Record<AgentType, AgentProfile>;
    this.pricing = opts.pricing;
    this.passBudgetFlag = opts.passBudgetFlag ?? false;
  }

  async run(task: Task, ctx: DriverContext): Promise<DriverResult> {
    if (!task.instructions) {
      return { status: 'failed', error: { type: 'validation', message: 'the task has no instructions' } };
    }
    if (ctx.signal.aborted) {
      return { status: 'failed', error: { type: 'transient', message: 'aborted before start' } };
    }
    const profile = this.profiles[task.agentType];
    const limits = effectiveLimits(profile, task);
    const home = ctx.home ?? ctx.workspace;
    if (this.runAs) {
      await chown(ctx.workspace, this.runAs.uid, this.runAs.gid);
      if (home !== ctx.workspace) await chown(home, this.runAs.uid, this.runAs.gid);
    }

    let systemPrompt = profile.systemPrompt + enginePrompt(task);
    const inputJson = JSON.stringify(ctx.input);
    if (Buffer.byteLength(inputJson) <= INPUT_IN_PROMPT_MAX_BYTES) {
      systemPrompt += `\n\nThe task's input (JSON):\n${inputJson}`;
    } else {
      // The workspace may hold anything by now (a clone, a restored checkpoint): never follow a
      // link planted at this name, as the worker is root.
      const file = join(ctx.workspace, INPUT_FILE);
      await rm(file, { force: true });
      const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        await handle.writeFile(inputJson);
        if (this.runAs) await handle.chown(this.runAs.uid, this.runAs.gid);
      } finally {
        await handle.close();
      }
      systemPrompt += `\n\nThe task's input (JSON) is in the file ${INPUT_FILE} of your working directory.`;
    }
    // A resumed session gets the instructions again, as its next message, with why it stopped.
    const resumeId = ctx.resume?.sessionId;
    const prompt = resumeId ? `${RESUME_NOTE}\n\n${task.instructions}` : task.instructions;
    const promptOnStdin = Buffer.byteLength(prompt) > PROMPT_ARG_MAX_BYTES;
    const args = [
      ...this.binArgs,
      '-p',
      ...(promptOnStdin ? [] : [prompt]),
      ...(resumeId ? ['--resume', resumeId] : []),
      '--output-format',
      'stream-json',
      '--verbose',
      '--max-turns',
      String(limits.maxTurns),
      // One comma-separated argument: the CLI's option is variadic and would swallow what follows.
      // --tools is what the model is offered; --allowedTools only spares it the (headless) prompt.
      // Without --tools the CLI offers every built-in tool (Bash and Write to a reviewer, too).
      '--tools',
      profile.allowedTools.join(','),
      '--allowedTools',
      profile.allowedTools.join(','),
      // The profile is the whole of what an agent may do: a cloned repository's .claude/settings.json
      // or .mcp.json must not add hooks, permissions or servers (user settings are the run's own,
      // in its private config directory).
      '--setting-sources',
      'user',
      '--strict-mcp-config',
      '--permission-mode',
      profile.permissionMode,
      '--model',
      profile.model,
      '--append-system-prompt',
      systemPrompt,
      ...(this.passBudgetFlag ? ['--max-budget-usd', String(limits.maxBudgetUsd)] : []),
    ];
    let model: ModelSession | undefined;
    try {
      model = await this.modelAccess?.open();
    } catch (err) {
      // The key's secret or the credentials could not be had: the breaker's business, not the task's.
      return { status: 'failed', error: { type: 'dependency', source: 'model-api', message: `no model access: ${(err as Error).message}` } };
    }
    try {
      const env: Record<string, string> = { ...this.baseEnv, ...ctx.env, ...this.modelEnv, ...modelVariables(model?.env ?? {}), ...FIXED_ENV };
      if (this.runAs) Object.assign(env, { HOME: home, USER: this.runAs.name }); // not the worker's
      // Sessions and settings in the run's own directory: never the worker's, never among the task's files.
      if (ctx.home) env.CLAUDE_CONFIG_DIR = claudeConfigDir(ctx.home);
      return modelApiFailure(await this.spawnCli(args, env, promptOnStdin ? prompt : '', limits, ctx), model?.lastStatus?.());
    } finally {
      model?.close(); // the token dies with the run, whatever the run left behind
    }
  }

  private spawnCli(args: string[], env: Record<string, string>, stdin: string, limits: AgentLimits, ctx: DriverContext): Promise<DriverResult> {
    const stream = new StreamState(limits, this.pricing);
    const stderr = new TailBuffer(TAIL_BYTES);
    let lines: LineSplitter | undefined; // once the CLI started
    let stopReason: Failure | undefined; // why we killed the group (first one wins)
    let silenceTimer: NodeJS.Timeout | undefined;
    let graceTimer: NodeJS.Timeout | undefined;

    return runProcessGroup<DriverResult>({
      ...(this.reap ? { reap: this.reap } : {}),
      file: this.bin,
      args,
      cwd: ctx.workspace,
      env,
      runAs: this.runAs,
      timeoutSeconds: limits.timeoutSeconds,
      signal: ctx.signal,
      // Stopped (its agent hands the task back): the CLI gets a moment to write its session out,
      // which the checkpoint then carries to the next attempt.
      abortGraceMs: ABORT_GRACE_MS,
      onSpawn: (pgid) => ctx.onSpawn(pgid),
      startFailed: (err) => ({
        status: 'failed',
        error: { type: startFailureType(err, true), message: `could not start ${this.bin}: ${err.message}` },
        cost: stream.cost(),
      }),
      started: (child, killGroup) => {
        const stop = (failure: Failure) => {
          if (stream.result || stopReason) return;
          stopReason = failure;
          killGroup();
        };
        const silence = setTimeout(() => stop({ type: 'transient', message: `no output for ${this.silenceMs / 1000} s` }), this.silenceMs);
        silenceTimer = silence;
        const stdout = new LineSplitter(LINE_CAP_BYTES, (line) => {
          const failure = stream.take(line);
          if (ctx.session) {
          if (stream.sessionId) ctx.session.id = stream.sessionId;
          ctx.session.cost = stream.cost();
        }
          if (failure) stop(failure);
          if (stream.result && graceTimer === undefined) {
            clearTimeout(silence);
            // The CLI is known to hang after its result: it gets a moment to exit on its own.
            graceTimer = setTimeout(killGroup, this.resultGraceMs);
          }
        });
        lines = stdout;
        child.stdout.on('data', (chunk: Buffer) => {
          if (!stream.result) silence.refresh();
          stdout.push(chunk);
        });
        child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        child.stdin.on('error', () => {}); // EPIPE when the CLI does not read its input
        child.stdin.end(stdin);
      },
      settled: () => {
        clearTimeout(silenceTimer);
        clearTimeout(graceTimer);
      },
      conclude: (code, signal, interrupted) => {
        lines?.end();
        const cost = stream.cost();
        const fail = (error: Failure): DriverResult => ({ status: 'failed', error: { source: 'claude-code', ...error }, cost });
        if (interrupted) return fail(interrupted);
        if (stopReason) return fail(stopReason);
        if (stream.result) {
          const mapped = mapResult(stream.result, stream.sessionId, stream.apiError);
          return mapped.status === 'completed' ? { ...mapped, cost } : fail(mapped.error);
        }
        const tail = stderr.text().trim();
        const text = [tail, stream.apiError].filter(Boolean).join('\n');
        const how = signal !== null ? `killed by signal ${signal}` : code === 0 ? 'ended without a result' : `exit code ${code}`;
        const message = tail ? `${how}: ${tail}` : stream.apiError ? `${how}: ${stream.apiError}` : how;
        const api = classifyModelApiText(text);
        return fail(api ? { ...api, message } : { type: 'transient', source: 'claude-code', message });
      },
    });
  }
}

/**
 * A run that failed on its own account (not a limit, not a timeout) while the model API's last
 * answer to it was an error: the proxy's status classifies it (core/classify.ts), more surely than
 * the CLI's text. A limit or a timeout stays what it is.
 */
export function modelApiFailure(result: DriverResult, lastStatus: number | undefined): DriverResult {
  if (result.status !== 'failed' || lastStatus === undefined || lastStatus < 400) return result;
  if (result.error.source !== 'claude-code' && result.error.source !== 'model-api') return result;
  if (result.error.type === 'resource' || result.error.type === 'timeout') return result;
  return { ...result, error: { ...classifyModelApiStatus(lastStatus), message: result.error.message } };
}

/** Model variables, refusing any name outside MODEL_ENV_ALLOWLIST. */
function modelVariables(vars: Partial<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(vars)) {
    if (!(MODEL_ENV_ALLOWLIST as readonly string[]).includes(name)) {
      throw new Error(`claude-code driver: ${name} is not a model credential variable (${MODEL_ENV_ALLOWLIST.join(', ')})`);
    }
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** What the stream has told us so far. */
class StreamState {
  sessionId?: string;
  result?: ResultMessage;
  /** The last API error the CLI reported in the stream (it retries some itself). */
  apiError?: string;
  private turns = 0;
  private readonly turnIds = new Set<string>();
  private readonly usage = new Map<string, Usage>();
  private anonymous = 0;

  constructor(
    private readonly limits: AgentLimits,
    private readonly pricing?: ClaudeCodeDriverOptions['pricing'],
  ) {}

  /** Takes one stdout line; returns a failure when a limit is crossed. */
  take(line: string): Failure | undefined {
    if (line.length < 2 || line[0] !== '{') return undefined;
    let msg: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(line);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
      msg = parsed as Record<string, unknown>;
    } catch {
      return undefined; // not JSON: ignored
    }
    // Only a UUID, and the first one: the id names files the worker reads and passes to --resume.
    if (typeof msg.session_id === 'string' && SESSION_ID.test(msg.session_id)) this.sessionId ??= msg.session_id;
    switch (msg.type) {
      case 'assistant':
        return this.assistant(msg);
      case 'result':
        if (!this.result) this.result = msg as unknown as ResultMessage;
        return undefined;
      case 'system':
        if (msg.subtype !== 'init' && msg.error !== undefined) this.apiError = errorText(msg.error);
        // The CLI retries a refused key ten times over minutes: a key that is refused stays refused.
        if (msg.subtype === 'api_retry' && (msg.error_status === 401 || msg.error_status === 403 || msg.error === 'authentication_failed')) {
          return { type: 'permanent', source: 'model-api', message: `the model API refused the credentials (${String(msg.error_status)} ${errorText(msg.error)})` };
        }
        return undefined;
      default:
        return undefined;
    }
  }

  private assistant(msg: Record<string, unknown>): Failure | undefined {
    const message = (msg.message ?? {}) as { id?: unknown; content?: unknown; usage?: Usage };
    // The CLI emits one assistant message per content block, all with the API message's id.
    const id = typeof message.id === 'string' ? message.id : `#${this.anonymous++}`;
    if (message.usage && typeof message.usage === 'object') this.usage.set(id, message.usage);
    if (msg.isApiErrorMessage === true || msg.error !== undefined) {
      this.apiError = [errorText(msg.error), contentText(message.content)].filter(Boolean).join(': ');
    } else {
      const text = contentText(message.content);
      if (/^API Error/i.test(text)) this.apiError = text;
    }
    const topLevel = msg.parent_tool_use_id === null || msg.parent_tool_use_id === undefined;
    if (topLevel && !this.turnIds.has(id)) {
      this.turnIds.add(id);
      this.turns++;
      if (this.turns > this.limits.maxTurns) return { type: 'resource', message: `max turns ${this.limits.maxTurns} reached` };
    }
    const usd = this.estimatedUsd();
    if (usd !== undefined && usd > this.limits.maxBudgetUsd) {
      return { type: 'resource', message: `budget of ${this.limits.maxBudgetUsd} USD reached (about ${usd.toFixed(4)} USD spent)` };
    }
    return undefined;
  }

  private streamTokens(): { input: number; cacheRead: number; output: number } {
    let input = 0;
    let cacheRead = 0;
    let output = 0;
    for (const u of this.usage.values()) {
      input += num(u.input_tokens) + num(u.cache_creation_input_tokens);
      cacheRead += num(u.cache_read_input_tokens);
      output += num(u.output_tokens);
    }
    return { input, cacheRead, output };
  }

  private estimatedUsd(): number | undefined {
    if (!this.pricing) return undefined;
    const t = this.streamTokens();
    const p = this.pricing;
    return (t.input * p.inputUsdPerMTok + t.cacheRead * (p.cacheReadUsdPerMTok ?? p.inputUsdPerMTok) + t.output * p.outputUsdPerMTok) / 1e6;
  }

  /**
   * The run's cost: the result's when there is one (the CLI's own accounting), else what the
   * stream showed. Input tokens include cache writes and reads; turns are the ones we counted.
   */
  cost(): TaskCost {
    const r = this.result;
    const t = this.streamTokens();
    let inputTokens = t.input + t.cacheRead;
    let outputTokens = t.output;
    if (r?.usage && typeof r.usage === 'object') {
      inputTokens = num(r.usage.input_tokens) + num(r.usage.cache_creation_input_tokens) + num(r.usage.cache_read_input_tokens);
      outputTokens = num(r.usage.output_tokens);
    }
    const usd = typeof r?.total_cost_usd === 'number' ? r.total_cost_usd : (this.estimatedUsd() ?? 0);
    return { usd, inputTokens, outputTokens, turns: this.turns };
  }
}

/** Maps the CLI's result message to a task result (without the cost). */
export function mapResult(
  r: ResultMessage,
  sessionId: string | undefined,
  apiError?: string,
): { status: 'completed'; output: Record<string, unknown> } | { status: 'failed'; error: Failure } {
  const sid = sessionId ?? (typeof r.session_id === 'string' && SESSION_ID.test(r.session_id) ? r.session_id : undefined);
  if (r.subtype === 'success' && r.is_error !== true) {
    return { status: 'completed', output: resultOutput(typeof r.result === 'string' ? r.result : '', sid) };
  }
  if (r.subtype === 'error_max_turns') {
    return { status: 'failed', error: { type: 'resource', message: `max turns reached (the CLI stopped after ${r.num_turns ?? '?'} turns)` } };
  }
  if (r.subtype === 'error_max_budget_usd') {
    return { status: 'failed', error: { type: 'resource', message: `budget reached (${r.total_cost_usd ?? '?'} USD)` } };
  }
  const text = [typeof r.result === 'string' ? r.result : '', ...(Array.isArray(r.errors) ? r.errors.map(errorText) : []), apiError ?? '']
    .filter(Boolean)
    .join('\n')
    .trim();
  const message = text ? utf8Tail(Buffer.from(text), TAIL_BYTES) : `claude ended with ${r.subtype ?? 'no subtype'}`;
  const api = classifyModelApiText(text);
  return { status: 'failed', error: api ? { ...api, message } : { type: 'transient', source: 'claude-code', message } };
}

/** `{ result, sessionId }`, or the result text's last non-empty line when it is a JSON object (with sessionId). */
export function resultOutput(text: string, sessionId: string | undefined): Record<string, unknown> {
  const sid = sessionId === undefined ? {} : { sessionId };
  const last = text.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
  if (last.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(last);
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) return { ...(parsed as Record<string, unknown>), ...sid };
    } catch {
      // not JSON: the text it is
    }
  }
  return { result: text, ...sid };
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((b: unknown) => (b && typeof b === 'object' && (b as { type?: unknown }).type === 'text' ? String((b as { text?: unknown }).text ?? '') : ''))
    .filter(Boolean)
    .join('\n');
}

function errorText(e: unknown): string {
  if (e === undefined || e === null) return '';
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

/** Splits a byte stream into lines; a line longer than the cap is dropped whole. */
class LineSplitter {
  private parts: Buffer[] = [];
  private bytes = 0;
  private dropping = false;
  constructor(
    private readonly cap: number,
    private readonly onLine: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    let from = 0;
    for (let nl = chunk.indexOf(0x0a, from); nl !== -1; nl = chunk.indexOf(0x0a, from)) {
      this.add(chunk.subarray(from, nl));
      if (!this.dropping) this.onLine(Buffer.concat(this.parts, this.bytes).toString('utf8').trim());
      this.parts = [];
      this.bytes = 0;
      this.dropping = false;
      from = nl + 1;
    }
    this.add(chunk.subarray(from));
  }

  end(): void {
    if (this.bytes > 0 && !this.dropping) this.onLine(Buffer.concat(this.parts, this.bytes).toString('utf8').trim());
    this.parts = [];
    this.bytes = 0;
  }

  private add(piece: Buffer): void {
    if (this.dropping || piece.length === 0) return;
    if (this.bytes + piece.length > this.cap) {
      this.dropping = true;
      this.parts = [];
      this.bytes = 0;
      return;
    }
    this.parts.push(Buffer.from(piece)); // a copy: the chunk's memory is not ours to keep
    this.bytes += piece.length;
  }
}
