// `xl logs <executionId> [taskId] [--follow]`: an execution's structured log lines, a line each,
// through GET /executions/{executionId}/logs (the local layer's log, or CloudWatch Logs on AWS).
import type { Client } from './client.ts';

export interface ShownLogLine {
  time: string;
  level: string;
  message: string;
  source: string;
  taskId?: string;
  taskIndex?: number;
  agentId?: string;
  fields: Record<string, unknown>;
}

interface LogPage {
  items: ShownLogLine[];
  nextToken?: string;
  followToken: string;
}

// What every line of a function carries and says nothing about the run.
const NOISE = new Set(['sampling_rate', 'xray_trace_id', 'function_request_id', 'function_arn', 'function_memory_size', 'function_name', 'cold_start', 'at']);

/** `time  LEVEL  who  task  message  key=value ...` */
export function formatLogLine(line: ShownLogLine): string {
  const who = line.agentId ?? line.source;
  const task = line.taskId ?? (line.taskIndex !== undefined ? `#${line.taskIndex}` : '-');
  const extra = Object.entries(line.fields)
    .filter(([k, v]) => !NOISE.has(k) && v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${line.time}  ${line.level.padEnd(5)}  ${who}  ${task}  ${line.message}${extra ? `  ${extra}` : ''}`;
}

export interface ShowLogsOptions {
  follow: boolean;
  json: boolean;
  out: NodeJS.WritableStream;
  /** How often --follow asks for new lines. */
  pollMs?: number;
}

/**
 * Prints the lines there are; with `follow`, keeps asking for new ones until the execution has
 * ended (its status is read before each round, so the lines written before its end are all read).
 * `--json` prints one document of every line, or under `--follow` one JSON line per log line.
 */
export async function showLogs(api: Client, executionId: string, taskId: string | undefined, opts: ShowLogsOptions): Promise<number> {
  const base = `/executions/${encodeURIComponent(executionId)}/logs`;
  const query = (token?: string) => {
    const q = new URLSearchParams({ limit: '1000', ...(taskId ? { taskId } : {}), ...(token ? { nextToken: token } : {}) });
    return `${base}?${q}`;
  };
  const collected: ShownLogLine[] = [];
  const emit = (line: ShownLogLine) => {
    if (opts.json && !opts.follow) collected.push(line);
    else opts.out.write((opts.json ? JSON.stringify(line) : formatLogLine(line)) + '\n');
  };
  let token: string | undefined;
  for (;;) {
    const ended = opts.follow ? (await api.call<{ status: string }>('GET', `/executions/${encodeURIComponent(executionId)}`)).status !== 'RUNNING' : true;
    let page: LogPage;
    do {
      page = await api.call<LogPage>('GET', query(token));
      for (const line of page.items) emit(line);
      token = page.nextToken ?? page.followToken;
    } while (page.nextToken);
    if (ended) break;
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 1000));
  }
  if (opts.json && !opts.follow) opts.out.write(JSON.stringify({ executionId, ...(taskId ? { taskId } : {}), items: collected }, null, 2) + '\n');
  return 0;
}
