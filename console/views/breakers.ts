// The circuit breakers: state, failures, when each opened, with reset; and the dead-letter queues
// that hold dispatches, with redrive.
import type * as z from 'zod';
import type { DeadLetterList, DeadLettersRedriven } from '../../core/api-schemas.ts';
import type { BreakerRecord } from '../../core/records.ts';
import { ApiError, api } from '../api.ts';
import { badge, formatTime, h, replace } from '../dom.ts';
import type { Context, View } from './view.ts';

export function breakersView(ctx: Context): View {
  const body = h('tbody');
  const letters = h('div');
  const problem = h('p', { class: 'error-text', role: 'alert' });
  const root = h(
    'section',
    { 'aria-labelledby': 'breakers-heading' },
    h('h2', { id: 'breakers-heading' }, 'Circuit breakers'),
    h('p', { class: 'muted' }, 'An open breaker holds back the tasks that need it until a probe succeeds, or until it is reset here.'),
    problem,
    h('div', { class: 'scroll' }, h('table', null, h('thead', null, h('tr', null, ['Breaker', 'State', 'Failures', 'Opened', 'Next probe', ''].map((c) => h('th', { scope: 'col' }, c)))), body)),
    h('h2', { id: 'dead-letters-heading' }, 'Dead letters'),
    h('p', { class: 'muted' }, 'Dispatches a task queue gave up on. Redrive moves them back to their queue; a task already failed for it is not run again.'),
    letters,
  );

  async function redrive(queue: string): Promise<void> {
    problem.textContent = '';
    try {
      const { items } = await api<z.infer<typeof DeadLettersRedriven>>('POST', '/dead-letters/redrive', { queue });
      const moved = items.reduce((n, i) => n + i.messages, 0);
      const failed = items.find((i) => i.error);
      ctx.announce(failed ? `Redrive of ${queue}: ${failed.error}` : `Redrove ${moved} message${moved === 1 ? '' : 's'} of ${queue}.`);
      await refresh();
    } catch (err) {
      problem.textContent = err instanceof ApiError ? err.message : String(err);
    }
  }

  function drawLetters(items: z.infer<typeof DeadLetterList>['items']) {
    const queues = items.filter((q) => q.depth > 0);
    if (!queues.length) return h('p', { class: 'muted' }, 'No dead-letter queue holds a message.');
    return h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { 'aria-labelledby': 'dead-letters-heading' },
        h('thead', null, h('tr', null, ['Task queue', 'Messages', 'Tasks', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h(
          'tbody',
          null,
          queues.map((q) =>
            h(
              'tr',
              null,
              h('th', { scope: 'row' }, q.queue),
              h('td', null, q.depth),
              h(
                'td',
                null,
                h(
                  'ul',
                  { class: 'issues' },
                  q.messages.map((m) =>
                    h(
                      'li',
                      null,
                      m.executionId ? h('a', { href: `#/executions/${encodeURIComponent(m.executionId)}` }, `${m.executionId} / ${m.taskId ?? m.taskIndex ?? '?'}`) : m.messageId,
                      ` (${m.taskStatus ?? 'unknown'}, received ${m.receiveCount}×${m.taskFailed ? ', task failed' : ''})`,
                    ),
                  ),
                ),
              ),
              h('td', null, h('button', { type: 'button', 'data-focus-key': `redrive:${q.queue}`, 'aria-label': `Redrive ${q.queue}`, onclick: () => void redrive(q.queue) }, 'Redrive')),
            ),
          ),
        ),
      ),
    );
  }

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
    const [{ items }, dead] = await Promise.all([api<{ items: BreakerRecord[] }>('GET', '/breakers'), api<z.infer<typeof DeadLetterList>>('GET', '/dead-letters')]);
    // Redrawn only on a change: a button under the pointer stays the same element.
    const sig = JSON.stringify([items, dead.items]);
    if (sig === drawn) return;
    drawn = sig;
    replace(letters, drawLetters(dead.items));
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

  return { title: 'Breakers and dead letters', root, refresh };
}
