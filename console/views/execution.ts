// One execution: its plan drawn as a graph (a sequential chain, a parallel fan-out with its bound,
// pipeline stages), each task coloured and named by status; the chosen task's attempts, agent,
// duration, cost, error, output and artifacts (views/artifacts.ts); cancel and redrive.
import type { ExecutionView, TaskResult } from '../../core/executions.ts';
import { ApiError, api } from '../api.ts';
import { badge, between, formatDuration, formatTime, formatUsd, h, replace } from '../dom.ts';
import { artifactsSection } from './artifacts.ts';
import type { Context, View } from './view.ts';

const ENDED = ['FAILED', 'TIMED_OUT', 'ABORTED'];

export function executionView(executionId: string, ctx: Context): View {
  let execution: ExecutionView | undefined;
  let selected: string | undefined;
  const header = h('div');
  const graph = h('div', { class: 'graph-wrap' });
  const detail = h('div');
  const problem = h('p', { class: 'error-text', role: 'alert' });
  const root = h('section', { 'aria-labelledby': 'execution-heading' }, header, problem, graph, detail);

  async function act(what: string, run: () => Promise<unknown>): Promise<void> {
    problem.textContent = '';
    try {
      await run();
      ctx.announce(what);
      await refresh();
    } catch (err) {
      problem.textContent = err instanceof ApiError ? err.message : String(err);
    }
  }

  const cancel = () => {
    if (!window.confirm(`Cancel execution ${execution?.name}? Its running tasks are stopped.`)) return;
    void act('Execution cancelled.', () => api('DELETE', `/executions/${encodeURIComponent(executionId)}`));
  };
  const redrive = () => void act('Execution redriven: its failed and skipped tasks run again.', () => api('POST', `/executions/${encodeURIComponent(executionId)}/redrive`));

  const node = (t: TaskResult) =>
    h(
      'li',
      null,
      h(
        'button',
        {
          type: 'button',
          class: `task status-${t.status}${t.taskId === selected ? ' selected' : ''}`,
          'aria-pressed': String(t.taskId === selected),
          'data-focus-key': `task:${t.taskId}`,
          'data-task': t.taskId,
          onclick: () => {
            selected = t.taskId;
            render();
            document.getElementById('task-heading')?.focus();
          },
        },
        h('span', { class: 'task-id' }, t.taskId),
        h('span', { class: 'task-status' }, t.status),
        h('span', { class: 'task-meta' }, t.durationMs !== undefined ? formatDuration(t.durationMs) : t.attempts > 1 ? `attempt ${t.attempts}` : ''),
        // Served from the result cache: no agent ran it here.
        t.cachedFrom && h('span', { class: 'task-cached', title: `Output and artifacts of ${t.cachedFrom.executionId} / ${t.cachedFrom.taskId}` }, `cached from ${t.cachedFrom.taskId}`),
      ),
    );

  function drawGraph(e: ExecutionView) {
    const byId = new Map(e.tasks.map((t) => [t.taskId, t]));
    if (e.pattern === 'pipeline' && e.stages?.length) {
      return h(
        'ol',
        { class: 'graph pipeline', 'aria-label': 'Pipeline stages, in order' },
        e.stages.map((s, i) =>
          h(
            'li',
            { class: 'stage' },
            h('h4', null, `Stage ${i + 1}: ${s.name}`),
            h('ul', { class: 'stage-tasks', 'aria-label': `Tasks of stage ${s.name}, in parallel` }, s.tasks.map((id) => byId.get(id)).filter((t): t is TaskResult => !!t).map(node)),
          ),
        ),
      );
    }
    if (e.pattern === 'parallel') {
      return h(
        'div',
        { class: 'graph parallel' },
        h('p', { class: 'fan' }, `Fan-out: ${e.tasks.length} tasks, at most ${e.maxConcurrency ?? '?'} at once`),
        h('ul', { 'aria-label': 'Tasks, in parallel' }, e.tasks.map(node)),
      );
    }
    return h('ol', { class: 'graph sequential', 'aria-label': 'Tasks, one after another' }, e.tasks.map(node));
  }

  function drawTask(t: TaskResult) {
    const rows: [string, unknown][] = [
      ['Status', badge(t.status)],
      ['Agent', t.agentId ?? '—'],
      ['Attempts', t.attempts],
      ['Started', formatTime(t.startedAt)],
      ['Duration', formatDuration(t.durationMs ?? (t.status === 'running' ? between(t.startedAt, undefined) : undefined))],
      ['Cost', t.cost ? `${formatUsd(t.cost.usd)} (${t.cost.inputTokens ?? 0} in / ${t.cost.outputTokens ?? 0} out tokens)` : '—'],
    ];
    if (t.skipReason) rows.push(['Skipped because', t.skipReason]);
    if (t.cachedFrom) {
      const from = t.cachedFrom;
      rows.push(['Cached from', h('a', { href: `#/executions/${encodeURIComponent(from.executionId)}` }, `${from.executionId} / ${from.taskId}`)]);
    }
    return h(
      'section',
      { class: 'task-detail', 'aria-labelledby': 'task-heading' },
      h('h3', { id: 'task-heading', tabindex: -1 }, `Task ${t.taskId}`),
      h('dl', null, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v as string)])),
      t.error &&
        h(
          'div',
          { class: 'error-box', 'aria-label': 'Error' },
          h('h4', null, 'Error'),
          h('p', null, h('strong', { class: 'error-type' }, t.error.type), t.error.source ? ` from ${t.error.source}` : ''),
          h('pre', { class: 'error-message' }, t.error.message),
        ),
      t.attemptLog?.length &&
        h(
          'div',
          { class: 'scroll' },
          h(
            'table',
            null,
            h('caption', null, 'Attempts'),
            h('thead', null, h('tr', null, ['#', 'Agent', 'Status', 'Error', 'Next'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              null,
              t.attemptLog.map((a) => h('tr', null, h('td', null, a.attempt), h('td', null, a.agentId ?? '—'), h('td', null, a.status), h('td', null, a.errorType ? `${a.errorType}: ${a.message ?? ''}` : ''), h('td', null, a.next ? `${a.next}${a.delaySeconds ? ` in ${a.delaySeconds} s` : ''}` : ''))),
            ),
          ),
        ),
      t.output && [h('h4', null, 'Output'), h('pre', { class: 'output', tabindex: 0, 'aria-label': 'Output as JSON' }, JSON.stringify(t.output, null, 2))],
      artifactsSection(executionId, t.taskId, t.artifacts ?? [], (message) => (problem.textContent = message)),
    );
  }

  // Each part is redrawn only when what it shows changed: a button under the pointer or the keyboard
  // stays the same element across live refreshes.
  const drawn = { header: '', graph: '', detail: '' };
  const changed = (part: keyof typeof drawn, value: unknown) => {
    const sig = JSON.stringify(value);
    if (drawn[part] === sig) return false;
    drawn[part] = sig;
    return true;
  };
  const elapsed = h('span');

  function render(): void {
    const e = execution;
    if (!e) return;
    elapsed.textContent = formatDuration(between(e.startedAt, e.stoppedAt));
    const task = e.tasks.find((t) => t.taskId === selected);
    if (changed('graph', [e.tasks.map((t) => [t.taskId, t.status, t.durationMs, t.attempts]), e.stages, e.maxConcurrency, selected])) {
      replace(graph, h('h3', null, 'Plan'), drawGraph(e));
    }
    if (changed('detail', [task, task?.status === 'running' ? Date.now() : 0])) {
      replace(detail, task ? drawTask(task) : h('p', { class: 'muted' }, 'Choose a task to see its attempts, agent, cost, error, output and artifacts.'));
    }
    const { tasks: _tasks, ...rest } = e;
    if (!changed('header', [rest, e.tasks.map((t) => t.status)])) return;
    const counts = new Map<string, number>();
    for (const t of e.tasks) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
    replace(
      header,
      h('p', null, h('a', { href: '#/executions' }, '← All executions')),
      h('h2', { id: 'execution-heading' }, e.name, ' ', badge(e.status)),
      h(
        'dl',
        { class: 'facts' },
        [
          ['Execution', e.executionId],
          ['Pattern', e.pattern],
          ['Started', formatTime(e.startedAt)],
          ['Duration', elapsed],
          ['Cost', formatUsd(e.cost?.usd)],
          ['Tasks', [...counts].map(([s, n]) => `${n} ${s}`).join(', ')],
        ].map(([k, v]) => [h('dt', null, k as string), h('dd', null, v)]),
      ),
      e.message && h('p', { class: 'muted' }, e.message),
      h(
        'div',
        { class: 'actions' },
        e.status === 'RUNNING' && h('button', { type: 'button', class: 'danger', onclick: cancel, 'data-focus-key': 'cancel' }, 'Cancel execution'),
        ENDED.includes(e.status) && h('button', { type: 'button', onclick: redrive, 'data-focus-key': 'redrive' }, 'Redrive'),
      ),
    );
  }

  async function refresh(): Promise<void> {
    execution = await api<ExecutionView>('GET', `/executions/${encodeURIComponent(executionId)}`);
    render();
  }

  return { title: `Execution ${executionId}`, root, refresh };
}
