// An execution's logs on AWS: FilterLogEvents over the stack's log groups (each function's, and
// the agents' ECS group), with a JSON filter pattern on the line's executionId (and task). Every
// line the layer writes is one JSON object (Powertools in the functions, whose log format is JSON;
// the worker's own lines in the agents' containers), so `{ $.executionId = "..." }` finds them.
//
// FilterLogEvents searches one group per call and pages within it (a page holds up to 1 MB or
// 10,000 events); lines of several groups are merged by time here, so a page token is a time and
// the ids of the events already given at that time, not a group's own token.
import { type LogLine, type LogPage, type LogQuery, type LogSource, decodeToken, encodeToken, toLogLine } from '../logs.ts';

/** The slice of @aws-sdk/client-cloudwatch-logs' FilterLogEvents this source calls. */
export interface FilterLogEventsInput {
  logGroupName: string;
  filterPattern: string;
  startTime?: number;
  limit?: number;
  nextToken?: string;
}
export interface FilteredLogEvent {
  eventId?: string;
  timestamp?: number;
  message?: string;
}
export type FilterLogEvents = (input: FilterLogEventsInput) => Promise<{ events?: FilteredLogEvent[]; nextToken?: string }>;

interface Position {
  /** Epoch ms of the last line given. */
  t: number;
  /** The event ids given at `t`. */
  seen: string[];
}
const isPosition = (v: unknown): v is Position =>
  typeof v === 'object' && v !== null && Number.isSafeInteger((v as Position).t) && Array.isArray((v as Position).seen) && (v as Position).seen.every((s) => typeof s === 'string');

/** A quoted string in a filter pattern. */
const quoted = (value: string) => JSON.stringify(value);

/** The JSON filter pattern for a query: the execution's lines, or one task's (by its id or index). */
export function filterPattern(query: Pick<LogQuery, 'executionId' | 'task'>): string {
  const execution = `$.executionId = ${quoted(query.executionId)}`;
  if (!query.task) return `{ ${execution} }`;
  const { taskId, taskIndex } = query.task;
  return `{ (${execution}) && (($.taskId = ${quoted(taskId)}) || ($.taskIndex = ${taskIndex}) || ($.index = ${taskIndex})) }`;
}

export class CloudWatchLogSource implements LogSource {
  constructor(private readonly opts: { logGroups: string[]; filterLogEvents: FilterLogEvents }) {}

  /** The log groups from XL_LOG_GROUPS (comma-separated names), as the stack gives them to the API function. */
  static fromEnv(filterLogEvents: FilterLogEvents, env = process.env): CloudWatchLogSource {
    const logGroups = (env.XL_LOG_GROUPS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (!logGroups.length) throw new Error('environment variable XL_LOG_GROUPS is not set (the log groups that `xl logs` reads)');
    return new CloudWatchLogSource({ logGroups, filterLogEvents });
  }

  async read(query: LogQuery): Promise<LogPage> {
    const from: Position = query.nextToken ? decodeToken(query.nextToken, isPosition) : { t: query.since ? Date.parse(query.since) : 0, seen: [] };
    const seen = new Set(from.seen);
    const pattern = filterPattern(query);
    let more = false;
    const found = (
      await Promise.all(
        this.opts.logGroups.map(async (logGroupName) => {
          const events: (FilteredLogEvent & { timestamp: number; eventId: string })[] = [];
          let nextToken: string | undefined;
          do {
            const page = await this.opts.filterLogEvents({ logGroupName, filterPattern: pattern, startTime: from.t, limit: Math.min(10_000, query.limit + seen.size), nextToken });
            for (const e of page.events ?? []) {
              if (e.timestamp !== undefined && e.eventId !== undefined && !(e.timestamp === from.t && seen.has(e.eventId))) events.push(e as (typeof events)[number]);
            }
            nextToken = page.nextToken;
          } while (nextToken && events.length < query.limit);
          if (nextToken) more = true;
          return events;
        }),
      )
    ).flat();
    found.sort((a, b) => a.timestamp - b.timestamp || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
    if (found.length > query.limit) more = true;
    const page = found.slice(0, query.limit);
    const last = page.at(-1);
    const next: Position = !last ? from : { t: last.timestamp, seen: [...(last.timestamp === from.t ? from.seen : []), ...page.filter((e) => e.timestamp === last.timestamp).map((e) => e.eventId)] };
    const items = page.map((e) => parse(e)).filter((l): l is LogLine => l !== undefined);
    return { items, ...(more ? { nextToken: encodeToken(next) } : {}), followToken: encodeToken(next) };
  }
}

function parse(event: FilteredLogEvent): LogLine | undefined {
  try {
    return toLogLine(JSON.parse(event.message ?? ''));
  } catch {
    return undefined;
  }
}
