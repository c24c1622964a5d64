// The xl command (CONTRACT.md, "Command-line tool"): a thin client of the HTTP API.
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';

const ROOT = resolve(import.meta.dirname, '..');
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT']);

const USAGE = `usage: xl <command> [options]
  up                               start the embedded local layer (same as npm start)
  run <plan.json|plan.yaml> [--watch]   submit a plan and wait; --watch shows live per-task progress
  status <executionId>             show an execution and its tasks
  cancel <executionId>             abort an execution
  redrive <executionId> [--watch]  run a FAILED, TIMED_OUT or ABORTED execution again: only its failed and skipped tasks
  artifact <executionId> <taskId> [name] [--out file]
                                   list a task's artifacts, or write one to stdout (or --out)
  dead-letters [--redrive] [--queue <type>-<priority>]
                                   list the dispatches in the dead-letter queues, or move them back
  agents | pool | health | breakers
options: --endpoint URL (or XL_ENDPOINT); default: the local layer's endpoint.json, else the deployed stack`;

interface Client {
  call<T = any>(method: string, path: string, body?: unknown): Promise<T>;
}

async function endpoint(flag: string | undefined): Promise<string> {
  if (flag) return flag;
  if (process.env.XL_ENDPOINT) return process.env.XL_ENDPOINT;
  const stateDir = process.env.XL_STATE_DIR ?? join(ROOT, '.local');
  try {
    const { url } = JSON.parse(await readFile(join(stateDir, 'endpoint.json'), 'utf8')) as { url: string };
    return url;
  } catch {
    const { deployedEndpoint } = await import('./aws.ts');
    return deployedEndpoint();
  }
}

function client(base: string): Client {
  return {
    async call(method, path, body) {
      const url = base.replace(/\/$/, '') + path;
      const payload = body === undefined ? undefined : JSON.stringify(body);
      let headers: Record<string, string> = { 'content-type': 'application/json' };
      if (process.env.XL_API_TOKEN) headers.authorization = `Bearer ${process.env.XL_API_TOKEN}`;
      if (/\.execute-api\.[a-z0-9-]+\.amazonaws\.com/.test(url)) {
        const { signedHeaders } = await import('./aws.ts');
        headers = await signedHeaders(method, url, payload, headers);
      }
      const res = await fetch(url, { method, headers, body: payload });
      const text = await res.text();
      const data = text ? JSON.parse(text) : {};
      if (!res.ok) {
        const err = data.error ?? { message: text };
        const details = (err.details ?? []).map((d: { path: string; message: string }) => `\n  ${d.path || '/'}: ${d.message}`).join('');
        throw new Error(`${res.status} ${err.type ?? ''}: ${err.message}${details}`);
      }
      return data;
    },
  };
}

async function readPlan(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8');
  return /\.ya?ml$/i.test(file) ? YAML.parse(text) : JSON.parse(text);
}

function printExecution(ex: any): void {
  console.log(`${ex.executionId}  ${ex.pattern}  ${ex.status}${ex.message ? `  (${ex.message})` : ''}`);
  for (const t of ex.tasks ?? []) {
    const took = t.durationMs !== undefined ? ` ${(t.durationMs / 1000).toFixed(1)}s` : '';
    const err = t.error ? `  ${t.error.type}${t.error.source ? ` (${t.error.source})` : ''}: ${t.error.message.split('\n')[0]}` : '';
    const spent = t.cost ?? t.progress;
    console.log(`  ${t.status.padEnd(9)} ${t.taskId}${took}  attempts=${t.attempts}${spent ? `  ${costText(spent)}` : ''}${err}`);
    if (t.recoveredBy) console.log(`            recovered by ${t.recoveredBy.action}${t.skipReason ? ` (${t.skipReason})` : ''} after ${t.recoveredBy.error.type}: ${t.recoveredBy.error.message.split('\n')[0]}`);
    // Attempts that did not simply complete: what failed, where, and what recovery did next.
    for (const a of (t.attemptLog ?? []).filter((e: any) => e.status !== 'completed')) {
      const next = a.next === 'retry' ? ` -> retry in ${a.delaySeconds ?? 0}s` : a.next === 'fallback' ? ' -> fallback' : '';
      console.log(`            #${a.attempt} ${a.agentType} ${a.status}${a.errorType ? ` ${a.errorType}${a.source ? ` (${a.source})` : ''}: ${String(a.message ?? '').split('\n')[0]}` : ''}${next}`);
    }
  }
  if (ex.cost) console.log(`cost: ${costText(ex.cost)}`);
  if (ex.result) console.log(`result: ${JSON.stringify(ex.result).slice(0, 2000)}`);
}

const costText = (c: { usd: number; turns: number; inputTokens: number; outputTokens: number }) =>
  `$${c.usd.toFixed(4)} ${c.turns} turns ${c.inputTokens}+${c.outputTokens} tokens`;

async function watch(api: Client, executionId: string, verbose: boolean): Promise<any> {
  const seen = new Map<string, string>();
  for (;;) {
    const ex = await api.call('GET', `/executions/${executionId}`);
    for (const t of ex.tasks) {
      // A status change, or a running Claude Code task's spend moving on.
      const state = `${t.status} ${t.progress?.turns ?? ''}`;
      if (seen.get(t.taskId) !== state) {
        seen.set(t.taskId, state);
        if (!verbose) continue;
        const spent = t.status === 'running' && t.progress ? `  ${costText(t.progress)} so far` : '';
        console.log(`${new Date().toISOString().slice(11, 19)}  ${t.taskId}: ${t.status}${t.error ? ` (${t.error.type})` : ''}${spent}`);
      }
    }
    if (TERMINAL.has(ex.status)) return ex;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * An artifact's bytes from the bucket (`s3://bucket/key`): through the local layer's S3 endpoint
 * when the API is the local layer's (its endpoint.json), else with the default AWS credentials.
 */
async function fetchArtifact(uri: string, apiBase: string): Promise<Uint8Array> {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new Error(`not an s3:// URI: ${uri}`);
  const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
  const local = await localServices(apiBase);
  const s3 = local?.s3
    ? new S3Client({ endpoint: local.s3, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, forcePathStyle: true })
    : new S3Client({});
  const res = await s3.send(new GetObjectCommand({ Bucket: m[1], Key: m[2] }));
  return res.Body!.transformToByteArray();
}

/** The local layer's emulator endpoints, when `apiBase` is that layer. */
async function localServices(apiBase: string): Promise<{ s3?: string } | undefined> {
  const stateDir = process.env.XL_STATE_DIR ?? join(ROOT, '.local');
  try {
    const info = JSON.parse(await readFile(join(stateDir, 'endpoint.json'), 'utf8')) as { url: string; services?: { s3?: string } };
    return info.url.replace(/\/$/, '') === apiBase.replace(/\/$/, '') ? info.services : undefined;
  } catch {
    return undefined;
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      endpoint: { type: 'string' },
      watch: { type: 'boolean', default: false },
      out: { type: 'string' },
      redrive: { type: 'boolean', default: false },
      queue: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, arg] = positionals;
  if (!command || values.help) {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'up') {
    await import('../local/main.ts');
    return new Promise<number>(() => undefined); // runs until a signal
  }
  const base = await endpoint(values.endpoint);
  const api = client(base);
  switch (command) {
    case 'run': {
      if (!arg) throw new Error('xl run needs a plan file');
      const res = await api.call('POST', '/executions', await readPlan(arg));
      console.log(`${res.executionId}  ${res.status}`);
      // Waits for the end either way; --watch also prints each task's status changes as they happen.
      const ex = await watch(api, res.executionId, values.watch);
      printExecution(ex);
      return ex.status === 'SUCCEEDED' ? 0 : 1;
    }
    case 'status': {
      if (!arg) throw new Error('xl status needs an execution id');
      printExecution(await api.call('GET', `/executions/${encodeURIComponent(arg)}`));
      return 0;
    }
    case 'cancel':
      if (!arg) throw new Error('xl cancel needs an execution id');
      await api.call('DELETE', `/executions/${encodeURIComponent(arg)}`);
      console.log(`${arg}  ABORTED`);
      return 0;
    case 'redrive': {
      if (!arg) throw new Error('xl redrive needs an execution id');
      const res = await api.call('POST', `/executions/${encodeURIComponent(arg)}/redrive`);
      console.log(`${res.executionId}  ${res.status}  (run ${res.workflowRun}, ${res.tasks} task${res.tasks === 1 ? '' : 's'} to run again)`);
      if (!values.watch) return 0;
      const ex = await watch(api, res.executionId, true);
      printExecution(ex);
      return ex.status === 'SUCCEEDED' ? 0 : 1;
    }
    case 'artifact': {
      const [, , taskId, name] = positionals;
      if (!arg || !taskId) throw new Error('xl artifact needs an execution id and a task id');
      const ex = await api.call('GET', `/executions/${encodeURIComponent(arg)}`);
      const task = (ex.tasks as { taskId: string; artifacts?: { name: string; uri: string; bytes: number }[] }[]).find((t) => t.taskId === taskId);
      if (!task) throw new Error(`execution ${arg} has no task ${taskId}`);
      const artifacts = task.artifacts ?? [];
      if (!name) {
        for (const a of artifacts) console.log(`${a.name}  ${a.bytes} bytes  ${a.uri}`);
        return 0;
      }
      const artifact = artifacts.find((a) => a.name === name);
      if (!artifact) throw new Error(`task ${taskId} has no artifact ${name} (it has: ${artifacts.map((a) => a.name).join(', ') || 'none'})`);
      const body = await fetchArtifact(artifact.uri, base);
      if (values.out) await writeFile(values.out, body);
      else process.stdout.write(body);
      return 0;
    }
    case 'dead-letters': {
      if (values.redrive) {
        const res = await api.call('POST', '/dead-letters/redrive', values.queue ? { queue: values.queue } : {});
        if (!res.items.length) console.log('no dead letters to move back');
        for (const r of res.items) {
          const how = r.error ? `not moved: ${r.error}` : r.mode === 'move-task' ? `moving back (SQS move task ${r.taskHandle ?? ''})` : 'moved back';
          console.log(`${r.queue}  ${r.messages} message(s)  ${how}`);
        }
        return res.items.some((r: { error?: string }) => r.error) ? 1 : 0;
      }
      const res = await api.call('GET', '/dead-letters');
      if (!res.items.length) console.log('no dead letters');
      for (const q of res.items) {
        if (values.queue && q.queue !== values.queue) continue;
        console.log(`${q.deadLetterQueue}  ${q.depth} message(s)`);
        for (const m of q.messages) {
          const task = m.executionId ? `${m.executionId} task ${m.taskId ?? `#${m.taskIndex}`}` : '(not a dispatch)';
          const state = m.taskFailed ? 'task failed as validation' : m.taskStatus ? `task ${m.taskStatus}` : (m.note ?? '');
          console.log(`  ${m.messageId}  ${task}  received ${m.receiveCount}x${m.sentAt ? `  sent ${m.sentAt}` : ''}  ${state}`);
        }
      }
      return 0;
    }
    case 'agents':
    case 'pool':
    case 'health':
    case 'breakers':
      console.log(JSON.stringify(await api.call('GET', `/${command}`), null, 2));
      return 0;
    default:
      console.error(`xl: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`xl: ${err.message}`);
    process.exit(1);
  },
);
