// `xl events [--follow] [--kind k] [--json]`: the layer's recent events (GET /events), and with
// --follow the stream of new ones, reconnecting with Last-Event-ID when the layer restarts.
import { CliError, type Client } from './client.ts';

export interface ShownEvent {
  id: string;
  at: string;
  kind: string;
  [field: string]: unknown;
}

/** One line per event: when, what, about which execution, task, agent or breaker, and why. */
export function eventLine(e: ShownEvent): string {
  const about = [e.executionId, e.taskId && `task ${String(e.taskId)}`, e.agentId && `agent ${String(e.agentId)}`, e.key].filter(Boolean).join(' ');
  const why = e.message ?? e.reason;
  const extra =
    e.kind === 'budget.spent'
      ? `${String(e.spentUsd)} of ${String(e.budgetUsd)} USD`
      : e.kind === 'execution.failed' || e.kind === 'execution.succeeded'
        ? String(e.status)
        : e.kind === 'task.failed' || e.kind === 'task.escalated'
          ? String(e.errorType) + (e.action ? ` -> ${String(e.action)}` : '')
          : '';
  return [e.at, e.kind.padEnd(19), about, extra, why ? `(${String(why).split('\n')[0]})` : ''].filter(Boolean).join('  ');
}

/** Server-sent event frames out of a text stream: each frame's id and data, comments skipped. */
export async function* sseFrames(body: ReadableStream<Uint8Array>): AsyncGenerator<{ id?: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id: string | undefined;
      const data: string[] = [];
      for (const line of frame.split('\n')) {
        if (line.startsWith('id:')) id = line.slice(3).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) yield { id, data: data.join('\n') };
    }
  }
}

const query = (kind: string | undefined) => (kind ? `?kind=${encodeURIComponent(kind)}` : '');

/** The events the layer keeps (GET /events as JSON). */
export async function listEvents(api: Client, kind: string | undefined): Promise<{ items: ShownEvent[]; lastEventId?: string }> {
  return api.call('GET', `/events${query(kind)}`);
}

/**
 * Prints each event as it comes until the process is stopped. A stream that ends (the layer
 * stopped) is opened again, after the last id seen; a layer that stays unreachable for about a
 * minute ends the command with its error.
 */
export async function followEvents(api: Client, kind: string | undefined, show: (e: ShownEvent) => void, opts: { retryMs?: number; maxRetries?: number } = {}): Promise<never> {
  let lastEventId: string | undefined;
  let failures = 0;
  for (;;) {
    try {
      const res = await api.stream(`/events${query(kind)}`, lastEventId ? { 'last-event-id': lastEventId } : {});
      failures = 0;
      for await (const frame of sseFrames(res.body!)) {
        if (frame.id) lastEventId = frame.id;
        show(JSON.parse(frame.data) as ShownEvent);
      }
    } catch (err) {
      // A refusal (400, 401, 501) will not change by asking again.
      if (err instanceof CliError && err.info.status !== undefined) throw err;
      if (++failures > (opts.maxRetries ?? 30)) throw err;
    }
    await new Promise((ok) => setTimeout(ok, opts.retryMs ?? 2000));
  }
}
