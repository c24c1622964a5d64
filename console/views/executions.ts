// The executions, newest first: a page at a time (nextToken), filtered by status and name by the
// API (GET /executions?status=&name=), so a filter finds matches on any page, not just this one.
import type { ExecutionView } from '../../core/executions.ts';
import { api } from '../api.ts';
import { badge, between, formatDuration, formatTime, formatUsd, h, replace } from '../dom.ts';
import type { Context, View } from './view.ts';

type Summary = Pick<ExecutionView, 'executionId' | 'name' | 'pattern' | 'status' | 'startedAt' | 'stoppedAt'> & { costUsd?: number };
const STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'];
export const PAGE_SIZE = 20;

export function executionsView(_ctx: Context): View {
  // tokens[i] is the nextToken that reads page i (page 0 has none).
  const tokens: (string | undefined)[] = [undefined];
  let page = 0;
  let items: Summary[] = [];
  let next: string | undefined;

  // A filter starts over from the newest page; typing is sent once it pauses.
  let typing: ReturnType<typeof setTimeout> | undefined;
  const restart = () => {
    tokens.length = 1;
    page = 0;
    void refresh().catch(() => undefined); // the live refresh reports a refusal
  };
  const status = h('select', { id: 'filter-status', onchange: restart }, h('option', { value: '' }, 'Any status'), STATUSES.map((s) => h('option', { value: s }, s)));
  const search = h('input', {
    id: 'filter-name',
    type: 'search',
    placeholder: 'name contains…',
    'aria-describedby': 'filter-name-help',
    oninput: () => {
      clearTimeout(typing);
      typing = setTimeout(restart, 300);
    },
  });
  const body = h('tbody');
  const summary = h('p', { class: 'muted', 'aria-live': 'polite' });
  const newer = h('button', { type: 'button', onclick: () => turn(-1) }, '← Newer');
  const older = h('button', { type: 'button', onclick: () => turn(1) }, 'Older →');

  const root = h(
    'section',
    { 'aria-labelledby': 'executions-heading' },
    h('h2', { id: 'executions-heading' }, 'Executions'),
    h(
      'form',
      { class: 'filters', role: 'search', onsubmit: (e: Event) => e.preventDefault() },
      h('label', { for: 'filter-status' }, 'Status'),
      status,
      h('label', { for: 'filter-name' }, 'Search by name'),
      search,
      h('span', { id: 'filter-name-help', class: 'muted' }, 'part of the name or id, case-sensitive'),
    ),
    summary,
    h(
      'div',
      { class: 'scroll' },
      h('table', null, h('thead', null, h('tr', null, ['Name', 'Pattern', 'Status', 'Started', 'Duration', 'Cost'].map((c) => h('th', { scope: 'col' }, c)))), body),
    ),
    h('nav', { class: 'pager', 'aria-label': 'Pages of executions' }, newer, older),
  );

  async function turn(by: number): Promise<void> {
    page = Math.max(0, page + by);
    if (by > 0) tokens[page] = next;
    await refresh();
  }

  // The rows are redrawn only when they change (a link under the pointer stays the same element);
  // the running ones' durations tick in place.
  let drawn = '';
  const durations = new Map<string, HTMLElement>();
  const tick = () => {
    for (const e of items) {
      const cell = durations.get(e.executionId);
      if (cell) cell.textContent = formatDuration(between(e.startedAt, e.stoppedAt));
    }
  };

  function render(): void {
    const filtered = Boolean(status.value || search.value.trim());
    const sig = JSON.stringify([items, page, next, filtered]);
    if (sig === drawn) return tick();
    drawn = sig;
    durations.clear();
    replace(
      body,
      items.length
        ? items.map((e) =>
            h(
              'tr',
              null,
              h('td', null, h('a', { href: `#/executions/${encodeURIComponent(e.executionId)}`, 'data-focus-key': e.executionId }, e.name)),
              h('td', null, e.pattern),
              h('td', null, badge(e.status)),
              h('td', null, formatTime(e.startedAt)),
              (() => {
                const cell = h('td');
                durations.set(e.executionId, cell);
                return cell;
              })(),
              h('td', null, formatUsd(e.costUsd)),
            ),
          )
        : h(
            'tr',
            null,
            h(
              'td',
              { colspan: 6, class: 'muted' },
              filtered
                ? next
                  ? 'No match among the executions read so far: "Older" reads further back.'
                  : 'No execution matches these filters.'
                : 'No executions yet: submit a plan from "New plan".',
            ),
          ),
    );
    // With a filter the API reads a bounded number of executions per request: a page may be short.
    summary.textContent = `Page ${page + 1}: ${items.length} execution${items.length === 1 ? '' : 's'}${filtered ? ' matching' : ''}${filtered && next ? '; older ones may match too' : ''}.`;
    newer.disabled = page === 0;
    older.disabled = !next;
    tick();
  }

  // Only the newest request's answer is drawn: a filter changed while an older one was on its way.
  let asked = 0;
  async function refresh(): Promise<void> {
    const token = tokens[page];
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (token) query.set('nextToken', token);
    if (status.value) query.set('status', status.value);
    if (search.value.trim()) query.set('name', search.value.trim());
    const mine = ++asked;
    const data = await api<{ items: Summary[]; nextToken?: string }>('GET', `/executions?${query}`);
    if (mine !== asked) return;
    items = data.items;
    next = data.nextToken;
    render();
  }

  const dispose = () => clearTimeout(typing);
  return { title: 'Executions', root, refresh, dispose };
}
