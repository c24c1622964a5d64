// The xl command (CONTRACT.md, "Command-line tool"): a thin client of the HTTP API.
// client.ts talks to the API and explains its refusals, render.ts draws executions, validate.ts
// checks plan files offline, completion.ts writes shell completion.
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { CliError, client, resolveEndpoint, type Client } from './client.ts';
import { completionScript } from './completion.ts';
import { showLogs } from './logs.ts';
import { eventLine, followEvents, listEvents } from './events.ts';
import { executionLines, poolReportLines, watchExecution, type WatchMode } from './render.ts';
import { checkPlanFile, checkPlanText, formatProblem, locateDetails, readPlanFile } from './validate.ts';
import type { PoolReport } from '../core/pool-report.ts';

const USAGE = `usage: xl <command> [options]
  up                               start the embedded local layer (same as npm start)
  run <plan.json|plan.yaml> [--watch]   submit a plan and wait; --watch shows live per-task progress
                                   (a table redrawn in place on a terminal, a line per change otherwise)
  validate <plan.json|plan.yaml>   check a plan offline; errors name the file's line and column
  status <executionId>             show an execution and its tasks
  logs <executionId> [taskId] [--follow]
                                   its structured log lines (one task's with a task id); --follow
                                   prints new lines as they come until the execution ends
  cancel <executionId>             abort an execution
  redrive <executionId> [--watch]  run a FAILED, TIMED_OUT or ABORTED execution again: only its failed and skipped tasks
  artifact <executionId> <taskId> [name] [--out file]
                                   list a task's artifacts, or write one to stdout (or --out)
  dead-letters [--redrive] [--queue <type>-<priority>]
                                   list the dispatches in the dead-letter queues, or move them back
  events [--follow] [--kind <kind,...>]
                                   the layer's recent events; --follow prints new ones as they happen
                                   (kinds or families: execution, task.failed, breaker.opened, ...)
  pool --report [--target <minutes>]
                                   per agent type: queue wait p50/p95 over the last hour, saturation, idle
                                   agent-minutes, agents needed to drain the backlog within the target
                                   (default 10 min); and the bottleneck in one sentence
  agents | pool | health | breakers
  console                          the web console on 127.0.0.1 (XL_CONSOLE_PORT, default 7780) for the
                                   layer xl finds; to a deployed stack its calls are signed with SigV4
  completion bash|zsh              a completion script: source <(xl completion bash)
options: --json   one JSON document on stdout (errors too: {"error": ...}), for scripts
         --endpoint URL (or XL_ENDPOINT); default: the local layer's endpoint.json, else the deployed stack
exit: 0 when the command did what it says (run/redrive --watch: the execution SUCCEEDED; validate: the plan is valid), 1 otherwise, 2 for bad usage`;

class UsageError extends Error {}

interface Options {
  json: boolean;
  watch: boolean;
  follow: boolean;
  out?: string;
  redrive: boolean;
  queue?: string;
  kind?: string;
  report: boolean;
  target?: string;
}

const print = (line: string) => process.stdout.write(line + '\n');

/** `xl console`: serves the console and forwards its calls until a signal. */
async function openConsole(endpoint: Awaited<ReturnType<typeof resolveEndpoint>>): Promise<number> {
  const port = Number(process.env.XL_CONSOLE_PORT ?? 7780);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`XL_CONSOLE_PORT must be a port number, got "${process.env.XL_CONSOLE_PORT}"`);
  const { startConsoleServer, isApiGateway } = await import('./console.ts');
  const server = await startConsoleServer({ endpoint, port });
  print(`xl: console at ${server.url}/console for ${endpoint.url} (from ${endpoint.source}${isApiGateway(endpoint.url) ? ', signed with your AWS credentials' : ''})`);
  return new Promise<number>((ok) => {
    const stop = () => void server.close().then(() => ok(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
const emitJson = (doc: unknown) => process.stdout.write(JSON.stringify(doc, null, 2) + '\n');

/** How --watch shows progress: a live table on a terminal, plain lines otherwise (stderr under --json). */
function watchMode(opts: Options): { mode: WatchMode; out: NodeJS.WriteStream } {
  if (!opts.watch) return { mode: 'quiet', out: process.stdout };
  if (opts.json) return { mode: 'lines', out: process.stderr };
  return { mode: process.stdout.isTTY && process.env.TERM !== 'dumb' ? 'table' : 'lines', out: process.stdout };
}

async function runPlan(api: Client, file: string, opts: Options): Promise<number> {
  const text = await readPlanFile(file);
  const check = checkPlanText(text, file);
  if (check.value === undefined) return reportProblems(file, check.problems, opts);
  let res: { executionId: string; status: string };
  try {
    res = await api.call('POST', '/executions', check.value);
  } catch (err) {
    // The API's validation details are JSON Pointers: place them in the file the user wrote.
    if (err instanceof CliError && err.info.status === 400 && err.info.details?.length) return reportProblems(file, locateDetails(text, err.info.details), opts);
    throw err;
  }
  return follow(api, res.executionId, opts, `${res.executionId}  ${res.status}`);
}

/** Waits for the end of an execution (showing it as --watch says) and reports it. */
async function follow(api: Client, executionId: string, opts: Options, started: string): Promise<number> {
  const { mode, out } = watchMode(opts);
  if (!opts.json) print(started);
  const ex = await watchExecution(api, executionId, mode, out);
  if (opts.json) emitJson(ex);
  else for (const line of executionLines(ex, { tasks: mode !== 'table' })) print(line);
  return ex.status === 'SUCCEEDED' ? 0 : 1;
}

function reportProblems(file: string, problems: { pointer?: string; line: number; column: number; message: string }[], opts: Options): number {
  if (opts.json) emitJson({ file, valid: false, errors: problems });
  else for (const p of problems) console.error(formatProblem(file, p));
  return 1;
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        endpoint: { type: 'string' },
        watch: { type: 'boolean', default: false },
        follow: { type: 'boolean', short: 'f', default: false },
        json: { type: 'boolean', default: false },
        out: { type: 'string' },
        redrive: { type: 'boolean', default: false },
        queue: { type: 'string' },
        kind: { type: 'string' },
        report: { type: 'boolean', default: false },
        target: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const opts: Options = values;
  const [command, arg] = positionals;
  if (!command || values.help) {
    print(USAGE);
    return command ? 0 : 2;
  }
  // Commands that need no layer.
  switch (command) {
    case 'up':
      await import('../local/main.ts');
      return new Promise<number>(() => undefined); // runs until a signal
    case 'completion':
      if (arg !== 'bash' && arg !== 'zsh') throw new UsageError(`xl completion takes a shell: bash or zsh${arg ? `, not "${arg}"` : ''}`);
      process.stdout.write(completionScript(arg));
      return 0;
    case 'validate': {
      if (!arg) throw new UsageError('xl validate needs a plan file');
      const check = await checkPlanFile(arg);
      if (!check.valid) return reportProblems(arg, check.problems, opts);
      if (opts.json) emitJson({ file: arg, valid: true, errors: [], plan: check.plan });
      else print(`${arg}: valid`);
      return 0;
    }
  }
  const needs = (what: string) => {
    if (!arg) throw new UsageError(`xl ${command} needs ${what}`);
    return arg;
  };
  if (command === 'console') return openConsole(await resolveEndpoint(values.endpoint));
  const known = ['run', 'status', 'logs', 'cancel', 'redrive', 'artifact', 'dead-letters', 'events', 'agents', 'pool', 'health', 'breakers'];
  if (!known.includes(command)) throw new UsageError(`unknown command "${command}"`);
  const api = client(await resolveEndpoint(values.endpoint));
  switch (command) {
    case 'run':
      return runPlan(api, needs('a plan file'), opts);
    case 'status': {
      const ex = await api.call('GET', `/executions/${encodeURIComponent(needs('an execution id'))}`);
      if (opts.json) emitJson(ex);
      else for (const line of executionLines(ex)) print(line);
      return 0;
    }
    case 'logs':
      return showLogs(api, needs('an execution id'), positionals[2], { follow: opts.follow, json: opts.json, out: process.stdout });
    case 'cancel': {
      const id = needs('an execution id');
      await api.call('DELETE', `/executions/${encodeURIComponent(id)}`);
      if (opts.json) emitJson({ executionId: id, status: 'ABORTED' });
      else print(`${id}  ABORTED`);
      return 0;
    }
    case 'redrive': {
      const res = await api.call('POST', `/executions/${encodeURIComponent(needs('an execution id'))}/redrive`);
      const started = `${res.executionId}  ${res.status}  (run ${res.workflowRun}, ${res.tasks} task${res.tasks === 1 ? '' : 's'} to run again)`;
      if (!opts.watch) {
        if (opts.json) emitJson(res);
        else print(started);
        return 0;
      }
      return follow(api, res.executionId, opts, started);
    }
    case 'artifact': {
      const [, , taskId, name] = positionals;
      if (!arg || !taskId) throw new UsageError('xl artifact needs an execution id and a task id');
      const ex = await api.call('GET', `/executions/${encodeURIComponent(arg)}`);
      const task = (ex.tasks as { taskId: string; artifacts?: { name: string; uri: string; bytes: number }[] }[]).find((t) => t.taskId === taskId);
      if (!task) throw new CliError(`execution ${arg} has no task ${taskId}`);
      const artifacts = task.artifacts ?? [];
      if (!name) {
        if (opts.json) emitJson({ executionId: arg, taskId, artifacts });
        else for (const a of artifacts) print(`${a.name}  ${a.bytes} bytes  ${a.uri}`);
        return 0;
      }
      if (!artifacts.some((a) => a.name === name)) throw new CliError(`task ${taskId} has no artifact ${name} (it has: ${artifacts.map((a) => a.name).join(', ') || 'none'})`);
      // Through the API (its IAM or token), not the bucket: no S3 credentials needed.
      const body = await api.download(`/executions/${encodeURIComponent(arg)}/tasks/${encodeURIComponent(taskId)}/artifacts/${encodeURIComponent(name)}`);
      if (values.out) await writeFile(values.out, body);
      else process.stdout.write(body);
      return 0;
    }
    case 'dead-letters':
      return deadLetters(api, opts);
    case 'events': {
      // --json: the API's document; with --follow, one event per line (JSON Lines) as they come.
      if (opts.follow) return followEvents(api, opts.kind, (e) => print(opts.json ? JSON.stringify(e) : eventLine(e)));
      const res = await listEvents(api, opts.kind);
      if (opts.json) emitJson(res);
      else if (!res.items.length) print('no events');
      else for (const e of res.items) print(eventLine(e));
      return 0;
    }
    case 'pool':
      if (opts.report) return poolReport(api, opts);
      if (opts.target !== undefined) throw new UsageError('--target goes with --report');
      emitJson(await api.call('GET', '/pool'));
      return 0;
    default: // agents, pool, health, breakers: their JSON is their report
      emitJson(await api.call('GET', `/${command}`));
      return 0;
  }
}

/** `xl pool --report`: a row per agent type with work or agents, then the bottleneck. */
async function poolReport(api: Client, opts: Options): Promise<number> {
  if (opts.target !== undefined && !(Number(opts.target) > 0 && Number(opts.target) <= 1440)) {
    throw new UsageError(`--target takes minutes above 0 and at most 1440, not "${opts.target}"`);
  }
  const report: PoolReport = await api.call('GET', `/pool/report${opts.target !== undefined ? `?targetMinutes=${encodeURIComponent(opts.target)}` : ''}`);
  if (opts.json) {
    emitJson(report);
    return 0;
  }
  for (const line of poolReportLines(report)) print(line);
  return 0;
}

async function deadLetters(api: Client, opts: Options): Promise<number> {
  if (opts.redrive) {
    const res = await api.call('POST', '/dead-letters/redrive', opts.queue ? { queue: opts.queue } : {});
    const failed = res.items.some((r: { error?: string }) => r.error);
    if (opts.json) {
      emitJson(res);
      return failed ? 1 : 0;
    }
    if (!res.items.length) print('no dead letters to move back');
    for (const r of res.items) {
      const how = r.error ? `not moved: ${r.error}` : r.mode === 'move-task' ? `moving back (SQS move task ${r.taskHandle ?? ''})` : 'moved back';
      print(`${r.queue}  ${r.messages} message(s)  ${how}`);
    }
    return failed ? 1 : 0;
  }
  const res = await api.call('GET', '/dead-letters');
  const items = res.items.filter((q: { queue: string }) => !opts.queue || q.queue === opts.queue);
  if (opts.json) {
    emitJson({ ...res, items });
    return 0;
  }
  if (!items.length) print('no dead letters');
  for (const q of items) {
    print(`${q.deadLetterQueue}  ${q.depth} message(s)`);
    for (const m of q.messages) {
      const task = m.executionId ? `${m.executionId} task ${m.taskId ?? `#${m.taskIndex}`}` : '(not a dispatch)';
      const state = m.taskFailed ? 'task failed as validation' : m.taskStatus ? `task ${m.taskStatus}` : (m.note ?? '');
      print(`  ${m.messageId}  ${task}  received ${m.receiveCount}x${m.sentAt ? `  sent ${m.sentAt}` : ''}  ${state}`);
    }
  }
  return 0;
}

const json = process.argv.includes('--json');
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    const info = err instanceof CliError ? err.info : {};
    if (json) emitJson({ error: { message: err.message, ...info } });
    else {
      const details = (info.details ?? []).map((d) => `\n  ${d.path || '/'}: ${d.message}`).join('');
      console.error(`xl: ${err.message}${details}${info.hint ? `\nhint: ${info.hint}` : ''}${err instanceof UsageError ? `\n${USAGE}` : ''}`);
    }
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
