// An execution's logs (`xl logs`, GET /executions/{executionId}/logs): the structured lines the
// layer's functions and agents wrote about it, from wherever the layer keeps them (a LogSource: the
// local layer's log file, or CloudWatch Logs on AWS).
import { NotFoundError, ValidationError } from './errors.ts';

/** One structured log line, as `xl logs` shows it. */
export interface LogLine {
  /** ISO 8601. */
  time: string;
  /** DEBUG, INFO, WARN, ERROR. */
  level: string;
  message: string;
  /** Who wrote it: a function's service (`xl-steps`) or an agent (`agent`). */
  source: string;
  executionId?: string;
  taskId?: string;
  taskIndex?: number;
  agentId?: string;
  /** The line's other fields. */
  fields: Record<string, unknown>;
}

export interface LogQuery {
  executionId: string;
  /** One task's lines: those naming its id or its index. */
  task?: { taskId: string; taskIndex: number };
  limit: number;
  nextToken?: string;
  /** When the execution started (ISO 8601): no line of it is older. */
  since?: string;
}

export interface LogPage {
  items: LogLine[];
  /** More lines are there now: ask again with this token. */
  nextToken?: string;
  /** Where lines written later will start (`xl logs --follow` asks with it again). */
  followToken: string;
}

/** Where the layer's structured log lines are kept. A token it does not know is a ValidationError. */
export interface LogSource {
  read(query: LogQuery): Promise<LogPage>;
}

export const DEFAULT_LOG_LIMIT = 200;
export const MAX_LOG_LIMIT = 1000;

// Fields that LogLine names, in either writer's spelling (Powertools' in the functions, the
// worker's own JSON lines in the agents: agent/main.ts).
const KNOWN = new Set(['time', 'timestamp', 'level', 'message', 'msg', 'service', 'executionId', 'taskId', 'taskIndex', 'index', 'agentId']);

/** A written line (a JSON object) as a LogLine; undefined when it is not one of the layer's. */
export function toLogLine(record: unknown, source?: string): LogLine | undefined {
  if (!record || typeof record !== 'object' || Array.isArray(record)) return undefined;
  const r = record as Record<string, unknown>;
  const message = r.message ?? r.msg;
  const time = r.timestamp ?? r.time;
  if (typeof message !== 'string' || typeof time !== 'string') return undefined;
  const index = r.taskIndex ?? r.index;
  const fields = Object.fromEntries(Object.entries(r).filter(([k]) => !KNOWN.has(k)));
  return {
    time,
    level: String(r.level ?? 'INFO').toUpperCase(),
    message,
    source: typeof r.service === 'string' ? r.service : (source ?? (typeof r.agentId === 'string' ? 'agent' : 'xl')),
    ...(typeof r.executionId === 'string' ? { executionId: r.executionId } : {}),
    ...(typeof r.taskId === 'string' ? { taskId: r.taskId } : {}),
    ...(typeof index === 'number' ? { taskIndex: index } : {}),
    ...(typeof r.agentId === 'string' ? { agentId: r.agentId } : {}),
    fields,
  };
}

/** Whether a line is about the query's execution (and task). */
export function matchesQuery(line: LogLine, query: Pick<LogQuery, 'executionId' | 'task'>): boolean {
  if (line.executionId !== query.executionId) return false;
  if (!query.task) return true;
  return line.taskId === query.task.taskId || (line.taskId === undefined && line.taskIndex === query.task.taskIndex);
}

export interface ExecutionLogsDeps {
  executions: {
    getExecution(executionId: string): Promise<{ startedAt?: string } | undefined>;
    listTasks(executionId: string): Promise<{ taskId: string; index: number }[]>;
  };
  source: LogSource;
}

/** An execution's log lines, a page at a time; a task's only when a task id is given. */
export class ExecutionLogs {
  constructor(private readonly deps: ExecutionLogsDeps) {}

  /** `limit` may be the query string's text, which is refused as written when it is not a whole number. */
  async read(executionId: string, opts: { taskId?: string; limit?: number | string; nextToken?: string } = {}): Promise<LogPage> {
    const raw = opts.limit ?? DEFAULT_LOG_LIMIT;
    const limit = typeof raw === 'number' ? raw : /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LOG_LIMIT) {
      throw new ValidationError(`limit must be an integer from 1 to ${MAX_LOG_LIMIT}, got ${JSON.stringify(opts.limit)}`, [{ path: '/limit', message: 'out of range' }]);
    }
    const execution = await this.deps.executions.getExecution(executionId);
    if (!execution) throw new NotFoundError(`no execution ${executionId}`);
    let task: LogQuery['task'];
    if (opts.taskId !== undefined) {
      const tasks = await this.deps.executions.listTasks(executionId);
      const found = tasks.find((t) => t.taskId === opts.taskId);
      if (!found) throw new NotFoundError(`execution ${executionId} has no task ${opts.taskId} (it has: ${tasks.map((t) => t.taskId).join(', ') || 'none'})`);
      task = { taskId: found.taskId, taskIndex: found.index };
    }
    return this.deps.source.read({
      executionId,
      task,
      limit,
      ...(opts.nextToken ? { nextToken: opts.nextToken } : {}),
      ...(execution.startedAt ? { since: execution.startedAt } : {}),
    });
  }
}

/** Opaque page tokens: a source's position as base64url JSON. */
export function encodeToken(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

export function decodeToken<T>(token: string, valid: (value: unknown) => value is T): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (!valid(value)) throw new ValidationError('nextToken is not a token this API gave', [{ path: '/nextToken', message: 'unknown token' }]);
  return value;
}

let registered: LogSource | undefined;

/** The local layer keeps its logs itself and says where (as it registers its agent runtime). */
export function registerLogSource(source: LogSource | undefined): void {
  registered = source;
}

export function registeredLogSource(): LogSource | undefined {
  return registered;
}
