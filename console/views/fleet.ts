// The fleet: the pool per agent type, with its bounds editable (PUT /pool/{agentType}), and the
// agents with their status, current task and health (cpu and memory).
import type { AgentRecord } from '../../core/records.ts';
import { ApiError, api } from '../api.ts';
import { badge, formatBytes, h, replace } from '../dom.ts';
import type { Context, View } from './view.ts';

interface PoolRow {
  agentType: string;
  min: number;
  max: number;
  desired: number;
  running: number;
  backlog: number;
}

interface PoolRowView {
  row: HTMLTableRowElement;
  min: HTMLInputElement;
  max: HTMLInputElement;
  cells: { desired: HTMLElement; running: HTMLElement; backlog: HTMLElement };
  error: HTMLElement;
  /** Edited and not saved yet: a refresh leaves the inputs as the user left them. */
  dirty: boolean;
}

export function fleetView(ctx: Context): View {
  const poolBody = h('tbody');
  const agentsBody = h('tbody');
  const rows = new Map<string, PoolRowView>();

  const root = h(
    'div',
    null,
    h(
      'section',
      { 'aria-labelledby': 'pool-heading' },
      h('h2', { id: 'pool-heading' }, 'Pool'),
      h('p', { class: 'muted' }, 'Per agent type: the bounds the pool manager keeps to, what it wants now, what runs, and the queued tasks.'),
      h(
        'div',
        { class: 'scroll' },
        h('table', null, h('thead', null, h('tr', null, ['Agent type', 'Min', 'Max', '', 'Desired', 'Running', 'Backlog'].map((c) => h('th', { scope: 'col' }, c)))), poolBody),
      ),
    ),
    h(
      'section',
      { 'aria-labelledby': 'agents-heading' },
      h('h2', { id: 'agents-heading' }, 'Agents'),
      h(
        'div',
        { class: 'scroll' },
        h('table', null, h('thead', null, h('tr', null, ['Agent', 'Type', 'Status', 'Current task', 'Health', 'CPU', 'Memory'].map((c) => h('th', { scope: 'col' }, c)))), agentsBody),
      ),
    ),
  );

  async function save(type: string): Promise<void> {
    const v = rows.get(type)!;
    v.error.textContent = '';
    try {
      const row = await api<PoolRow>('PUT', `/pool/${encodeURIComponent(type)}`, { min: Number(v.min.value), max: Number(v.max.value) });
      v.dirty = false;
      update(v, row);
      ctx.announce(`Pool bounds of ${type} set to ${row.min}..${row.max}.`);
    } catch (err) {
      v.error.textContent = err instanceof ApiError ? [err.message, ...err.details.map((d) => `${d.path}: ${d.message}`)].join(' — ') : String(err);
    }
  }

  function rowView(r: PoolRow): PoolRowView {
    const markDirty = () => (view.dirty = true);
    const input = (which: 'min' | 'max') =>
      h('input', { type: 'number', min: 0, step: 1, inputmode: 'numeric', id: `pool-${r.agentType}-${which}`, 'aria-label': `${r.agentType} ${which}`, class: 'bound', oninput: markDirty });
    const view: PoolRowView = {
      row: h('tr'),
      min: input('min'),
      max: input('max'),
      cells: { desired: h('td'), running: h('td'), backlog: h('td') },
      error: h('span', { class: 'error-text', role: 'alert' }),
      dirty: false,
    };
    const form = h(
      'form',
      { class: 'inline', 'aria-label': `${r.agentType} bounds`, onsubmit: (e: Event) => (e.preventDefault(), void save(r.agentType)) },
      h('button', { type: 'submit' }, 'Save'),
      view.error,
    );
    // The inputs belong to the row's form wherever they sit in the table.
    const formId = `pool-form-${r.agentType}`;
    form.id = formId;
    view.min.setAttribute('form', formId);
    view.max.setAttribute('form', formId);
    view.row.append(h('th', { scope: 'row' }, r.agentType), h('td', null, view.min), h('td', null, view.max), h('td', null, form), view.cells.desired, view.cells.running, view.cells.backlog);
    return view;
  }

  function update(v: PoolRowView, r: PoolRow): void {
    const editing = v.dirty || v.row.contains(document.activeElement);
    if (!editing) {
      v.min.value = String(r.min);
      v.max.value = String(r.max);
    }
    v.cells.desired.textContent = String(r.desired);
    v.cells.running.textContent = String(r.running);
    v.cells.backlog.textContent = String(r.backlog);
  }

  const health = (a: AgentRecord) => {
    const issues = a.health?.issues ?? [];
    return [badge(a.health?.overall ?? 'unknown'), issues.length ? h('ul', { class: 'issues' }, issues.map((i) => h('li', null, `${i.severity}: ${i.message}`))) : null];
  };

  async function refresh(): Promise<void> {
    const [pool, agents] = await Promise.all([api<{ items: PoolRow[] }>('GET', '/pool'), api<{ items: AgentRecord[] }>('GET', '/agents')]);
    for (const r of pool.items) {
      let v = rows.get(r.agentType);
      if (!v) {
        v = rowView(r);
        rows.set(r.agentType, v);
        poolBody.append(v.row);
      }
      update(v, r);
    }
    const live = agents.items.filter((a) => a.status !== 'terminated').sort((a, b) => a.agentType.localeCompare(b.agentType) || a.agentId.localeCompare(b.agentId));
    replace(
      agentsBody,
      live.length
        ? live.map((a) => {
            const res = a.health?.resources;
            return h(
              'tr',
              null,
              h('th', { scope: 'row' }, a.agentId),
              h('td', null, a.agentType),
              h('td', null, badge(a.status)),
              h('td', null, a.currentTaskId ?? '—'),
              h('td', null, health(a)),
              h('td', null, res ? `${res.cpuPercent.toFixed(0)}%` : '—'),
              h('td', null, res ? `${formatBytes(res.memoryBytes)}${res.memoryLimitBytes ? ` of ${formatBytes(res.memoryLimitBytes)}` : ''}` : '—'),
            );
          })
        : h('tr', null, h('td', { colspan: 7, class: 'muted' }, 'No agents run now: the pool starts them for queued tasks.')),
    );
  }

  return { title: 'Agents and pool', root, refresh };
}
