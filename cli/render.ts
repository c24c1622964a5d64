// How xl shows an execution: the final report, the live table `--watch` redraws in place on a
// terminal, and the plain line per change it prints when its output is a pipe or a file.
import type { Writable } from 'node:stream';
import type { Client } from './client.ts';
import { ASSUMED_TASK_SECONDS, type PoolReport } from '../core/pool-report.ts';

export const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT']);
const FINAL_TASK = new Set(['completed', 'failed', 'skipped', 'cancelled', 'aborted']);

interface Spend {
  usd: number;
  turns: number;
  inputTokens: number;
  outputTokens: number;
}

export const costText = (c: Spend) => `$${c.usd.toFixed(4)} ${c.turns} turns ${c.inputTokens}+${c.outputTokens} tokens`;

const firstLine = (s: unknown) => String(s ?? '').split('\n')[0];

/** The execution as `xl status` and the end of `xl run` show it. */
export function executionLines(ex: any, opts: { tasks?: boolean } = {}): string[] {
  // After the live table, whose first line already names the execution and its status, the
  // header is repeated only for the reason an execution ended early.
  const out = opts.tasks !== false || ex.message ? [`${ex.executionId}  ${ex.pattern}  ${ex.status}${ex.message ? `  (${ex.message})` : ''}`] : [];
  for (const t of ex.tasks ?? []) {
    const took = t.durationMs !== undefined ? ` ${(t.durationMs / 1000).toFixed(1)}s` : '';
    const err = t.error ? `  ${t.error.type}${t.error.source ? ` (${t.error.source})` : ''}: ${firstLine(t.error.message)}` : '';
    const spent = t.cost ?? t.progress;
    const more: string[] = [];
    if (t.recoveredBy) more.push(`            recovered by ${t.recoveredBy.action}${t.skipReason ? ` (${t.skipReason})` : ''} after ${t.recoveredBy.error.type}: ${firstLine(t.recoveredBy.error.message)}`);
    // Attempts that did not simply complete: what failed, where, and what recovery did next.
    for (const a of (t.attemptLog ?? []).filter((e: any) => e.status !== 'completed')) {
      const next = a.next === 'retry' ? ` -> retry in ${a.delaySeconds ?? 0}s` : a.next === 'fallback' ? ' -> fallback' : '';
      more.push(`            #${a.attempt} ${a.agentType} ${a.status}${a.errorType ? ` ${a.errorType}${a.source ? ` (${a.source})` : ''}: ${firstLine(a.message)}` : ''}${next}`);
    }
    // The live table already showed each task's row: after it, only tasks with more to say are named.
    if (opts.tasks !== false) out.push(`  ${t.status.padEnd(9)} ${t.taskId}${took}  attempts=${t.attempts}${spent ? `  ${costText(spent)}` : ''}${err}`);
    else if (err || more.length) out.push(`  ${t.taskId}:${err ? ` ${err.trimStart()}` : ''}`);
    out.push(...more);
  }
  if (ex.cost) out.push(`cost: ${costText(ex.cost)}`);
  if (ex.result) out.push(`result: ${JSON.stringify(ex.result).slice(0, 2000)}`);
  return out;
}

function seconds(t: any, now: number): string {
  if (t.durationMs !== undefined) return `${(t.durationMs / 1000).toFixed(1)}s`;
  if (t.status === 'running' && t.startedAt) return `${((now - Date.parse(t.startedAt)) / 1000).toFixed(1)}s`;
  return '';
}

/** The plan's progress: final tasks over all tasks, as a bar of `width` cells. */
export function progressBar(done: number, total: number, width = 24): string {
  const filled = total ? Math.round((done / total) * width) : 0;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} tasks`;
}

/**
 * One frame of the live table: a header line, the progress bar, one row per task. With more tasks
 * than `maxRows`, the running and failed ones are kept and the rest counted on one line: a frame
 * taller than the terminal cannot be redrawn in place.
 */
export function tableLines(ex: any, now: number, startedAt: number, maxRows = Infinity): string[] {
  const all: any[] = ex.tasks ?? [];
  const done = all.filter((t) => FINAL_TASK.has(t.status)).length;
  let tasks = all;
  let hidden = '';
  if (all.length > maxRows) {
    const rank = (t: any) => (t.status === 'running' || t.status === 'failed' ? 0 : t.status === 'queued' ? 1 : 2);
    const keep = new Set([...all].sort((a, b) => rank(a) - rank(b)).slice(0, Math.max(1, maxRows - 1)));
    tasks = all.filter((t) => keep.has(t));
    const counts = new Map<string, number>();
    for (const t of all.filter((t) => !keep.has(t))) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
    hidden = `... ${all.length - tasks.length} more: ${[...counts].map(([status, n]) => `${n} ${status}`).join(', ')}`;
  }
  const rows = tasks.map((t) => {
    const spent = t.cost ?? t.progress;
    return [t.taskId, t.status + (t.error ? ` (${t.error.type})` : ''), t.agentId ?? '', String(t.attempts ?? 0), seconds(t, now), spent ? `$${spent.usd.toFixed(4)}` : ''];
  });
  const head = ['TASK', 'STATUS', 'AGENT', 'ATTEMPTS', 'DURATION', 'COST'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const cost = ex.cost ? `  ${costText(ex.cost)}` : '';
  return [
    `${ex.executionId}  ${ex.pattern}  ${ex.status}  ${((now - startedAt) / 1000).toFixed(1)}s`,
    `${progressBar(done, all.length)}${cost}`,
    line(head),
    ...rows.map(line),
    ...(hidden ? [hidden] : []),
  ];
}

/** A line per task change, for a pipe: the time, the task and its new status. */
export function changeLine(t: any, now: Date): string {
  const agent = t.status === 'running' && t.agentId ? ` on ${t.agentId}` : '';
  const attempt = t.attempts > 1 ? ` (attempt ${t.attempts})` : '';
  const spent = t.status === 'running' && t.progress ? `  ${costText(t.progress)} so far` : '';
  return `${now.toISOString().slice(11, 19)}  ${t.taskId}: ${t.status}${t.error ? ` (${t.error.type})` : ''}${agent}${attempt}${spent}`;
}

export type WatchMode = 'table' | 'lines' | 'quiet';

/** A terminal that redraws in place: moves up over the last frame and overwrites it. */
export class LiveTable {
  private drawn = 0;

  constructor(private readonly out: Writable & { columns?: number; rows?: number }) {}

  /** Task rows that fit: the terminal's height less the three header lines and the cursor's line. */
  get maxRows(): number {
    return this.out.rows ? Math.max(2, this.out.rows - 4) : Infinity;
  }

  draw(lines: string[]): void {
    // A line wider than the terminal wraps and the cursor arithmetic goes wrong: cut it.
    const width = this.out.columns || 0;
    const fit = width > 1 ? lines.map((l) => (l.length >= width ? l.slice(0, width - 1) : l)) : lines;
    const up = this.drawn ? `\x1b[${this.drawn}F` : '';
    this.out.write(`${up}\x1b[J${fit.join('\n')}\n`);
    this.drawn = fit.length;
  }
}

/**
 * Polls the execution until it ends, showing it as `mode` says on `out`; resolves with the final
 * record. The poll interval is short since it is one GET of one item.
 */
export async function watchExecution(api: Client, executionId: string, mode: WatchMode, out: Writable & { columns?: number; rows?: number }, intervalMs = 500): Promise<any> {
  const seen = new Map<string, string>();
  const table = mode === 'table' ? new LiveTable(out) : undefined;
  const startedAt = Date.now();
  const restore = () => out.write('\x1b[?25h');
  // Ctrl-C ends xl without an 'exit' event: give the terminal its cursor back first.
  const interrupted = () => {
    restore();
    process.exit(130);
  };
  if (table) {
    out.write('\x1b[?25l'); // no cursor flicker while redrawing
    process.once('exit', restore);
    process.once('SIGINT', interrupted);
  }
  try {
    for (;;) {
      const ex = await api.call('GET', `/executions/${encodeURIComponent(executionId)}`);
      if (table) table.draw(tableLines(ex, Date.now(), Date.parse(ex.startedAt ?? '') || startedAt, table.maxRows));
      else if (mode === 'lines') {
        for (const t of ex.tasks ?? []) {
          // A status change, or a running Claude Code task's spend moving on.
          const state = `${t.status} ${t.progress?.turns ?? ''}`;
          if (seen.get(t.taskId) === state) continue;
          seen.set(t.taskId, state);
          out.write(changeLine(t, new Date()) + '\n');
        }
      }
      if (TERMINAL.has(ex.status)) return ex;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  } finally {
    if (table) {
      restore();
      process.removeListener('exit', restore);
      process.removeListener('SIGINT', interrupted);
    }
  }
}

/** `xl pool --report`: a row per agent type with agents or work, then the bottleneck sentence. */
export function poolReportLines(report: PoolReport): string[] {
  const header = ['type', 'agents', 'waiting', 'running', 'wait p50/p95', 'saturation', 'idle agent-min', `needed (${report.targetMinutes} min)`, 'max'];
  const rows = report.types
    .filter((t) => t.waiting || t.running || t.agents.busy || t.agents.idle || t.agents.starting || t.queueWait.samples || t.idleAgentMinutes)
    .map((t) => [
      t.agentType,
      `${t.agents.busy + t.agents.idle}${t.agents.starting ? ` (+${t.agents.starting} starting)` : ''}`,
      String(t.waiting),
      String(t.running),
      `${t.queueWait.p50Seconds} / ${t.queueWait.p95Seconds} s`,
      `${Math.round(t.saturation * 100)}%`,
      String(t.idleAgentMinutes),
      `${t.agentsNeeded}${t.durationObserved ? '' : '*'}`,
      String(t.max),
    ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [line(header), ...rows.map(line)];
  if (!rows.length) out.push('(no agents and no work in the last hour)');
  if (report.types.some((t) => !t.durationObserved && rows.some((r) => r[0] === t.agentType))) out.push(`* no task of the type finished in the last hour: ${ASSUMED_TASK_SECONDS / 60} min a task assumed`);
  out.push('', report.bottleneck);
  return out;
}
