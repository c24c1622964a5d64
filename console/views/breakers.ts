// The circuit breakers: state, failures, when each opened, with reset.
import type { BreakerRecord } from '../../core/records.ts';
import { ApiError, api } from '../api.ts';
import { badge, formatTime, h, replace } from '../dom.ts';
import type { Context, View } from './view.ts';

export function breakersView(ctx: Context): View {
  const body = h('tbody');
  const problem = h('p', { class: 'error-text', role: 'alert' });
  const root = h(
    'section',
    { 'aria-labelledby': 'breakers-heading' },
    h('h2', { id: 'breakers-heading' }, 'Circuit breakers'),
    h('p', { class: 'muted' }, 'An open breaker holds back the tasks that need it until a probe succeeds, or until it is reset here.'),
    problem,
    h('div', { class: 'scroll' }, h('table', null, h('thead', null, h('tr', null, ['Breaker', 'State', 'Failures', 'Opened', 'Next probe', ''].map((c) => h('th', { scope: 'col' }, c)))), body)),
  );

  async function reset(key: string): Promise<void> {
    problem.textContent = '';
    try {
      await api('POST', `/breakers/${encodeURIComponent(key)}/reset`);
      ctx.announce(`Breaker ${key} reset: closed.`);
      await refresh();
    } catch (err) {
      problem.textContent = err instanceof ApiError ? err.message : String(err);
    }
  }

  let drawn = '';
  async function refresh(): Promise<void> {
    const { items } = await api<{ items: BreakerRecord[] }>('GET', '/breakers');
    // Redrawn only on a change: a Reset button under the pointer stays the same element.
    const sig = JSON.stringify(items);
    if (sig === drawn) return;
    drawn = sig;
    replace(
      body,
      items.length
        ? items.map((b) =>
            h(
              'tr',
              null,
              h('th', { scope: 'row' }, b.key),
              h('td', null, badge(b.state)),
              h('td', null, b.failures),
              h('td', null, formatTime(b.openedAt)),
              h('td', null, formatTime(b.nextProbeAt)),
              h('td', null, b.state !== 'closed' && h('button', { type: 'button', 'data-focus-key': `reset:${b.key}`, 'aria-label': `Reset ${b.key}`, onclick: () => void reset(b.key) }, 'Reset')),
            ),
          )
        : h('tr', null, h('td', { colspan: 6, class: 'muted' }, 'No breaker has recorded a failure.')),
    );
  }

  return { title: 'Circuit breakers', root, refresh };
}
