// The executions, newest first: a page at a time (nextToken), filtered by status and name.
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

  const status = h('select', { id: 'filter-status', onchange: () => render() }, h('option', { value: '' }, 'Any status'), STATUSES.map((s) => h('option', { value: s }, s)));
  const search = h('input', { id: 'filter-name', type: 'search', placeholder: 'name contains…', oninput: () => render() });
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
    const wanted = status.value;
    const text = search.value.trim().toLowerCase();
    const shown = items.filter((e) => (!wanted || e.status === wanted) && (!text || e.name.toLowerCase().includes(text) || e.executionId.includes(text)));
    const sig = JSON.stringify([shown, items.length, page, next]);
    if (sig === drawn) return tick();
    drawn = sig;
    durations.clear();
    replace(
      body,
      shown.length
        ? shown.map((e) =>
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
        : h('tr', null, h('td', { colspan: 6, class: 'muted' }, items.length ? 'No execution on this page matches.' : 'No executions yet: submit a plan from "New plan".')),
    );
    summary.textContent = `Page ${page + 1}: ${shown.length} of ${items.length} shown${wanted || text ? ' (filters apply to this page)' : ''}.`;
    newer.disabled = page === 0;
    older.disabled = !next;
    tick();
  }

  async function refresh(): Promise<void> {
    const token = tokens[page];
    const data = await api<{ items: Summary[]; nextToken?: string }>('GET', `/executions?limit=${PAGE_SIZE}${token ? `&nextToken=${encodeURIComponent(token)}` : ''}`);
    items = data.items;
    next = data.nextToken;
    render();
  }

  return { title: 'Executions', root, refresh };
}
