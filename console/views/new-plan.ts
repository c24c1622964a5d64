// A new plan, pasted or opened from a file, JSON or YAML. The layer judges it: its 400 names each
// problem's JSON path, shown here with the line and column it is at in the text.
import { YAMLParseError, parse } from 'yaml';
import { SourceMap } from '../../core/plan-source.ts';
import { ApiError, api } from '../api.ts';
import { h, replace } from '../dom.ts';
import type { Context, View } from './view.ts';

export function newPlanView(ctx: Context): View {
  const text = h('textarea', { id: 'plan-text', rows: 18, spellcheck: 'false', 'aria-describedby': 'plan-help', 'aria-invalid': 'false' });
  const file = h('input', {
    id: 'plan-file',
    type: 'file',
    accept: '.json,.yaml,.yml,application/json,application/yaml',
    onchange: async () => {
      const f = file.files?.[0];
      if (f) text.value = await f.text();
    },
  });
  const problems = h('div', { id: 'plan-problems', role: 'alert' });

  const goTo = (line: number, column: number) => {
    const lines = text.value.split('\n');
    const offset = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + column - 1;
    text.focus();
    text.setSelectionRange(offset, Math.max(offset, offset + (lines[line - 1]?.length ?? 0) - column + 1));
  };

  const show = (heading: string, items: { path?: string; message: string; line?: number; column?: number }[]) => {
    text.setAttribute('aria-invalid', 'true');
    replace(
      problems,
      h('h3', null, heading),
      h(
        'ul',
        { class: 'problems' },
        items.map((p) =>
          h(
            'li',
            null,
            p.path !== undefined && h('code', { class: 'path' }, p.path || '/'),
            p.path !== undefined && ' ',
            p.message,
            p.line !== undefined && [' ', h('button', { type: 'button', class: 'link', onclick: () => goTo(p.line!, p.column ?? 1) }, `line ${p.line}, column ${p.column}`)],
          ),
        ),
      ),
    );
  };

  async function submit(e: Event): Promise<void> {
    e.preventDefault();
    replace(problems);
    text.setAttribute('aria-invalid', 'false');
    let plan: unknown;
    try {
      // YAML 1.2 reads JSON too.
      plan = parse(text.value);
    } catch (err) {
      const at = err instanceof YAMLParseError ? err.linePos?.[0] : undefined;
      return show('The plan is neither JSON nor YAML', [{ message: (err as Error).message.split('\n')[0]!, line: at?.line, column: at?.col }]);
    }
    try {
      const started = await api<{ executionId: string; created?: boolean }>('POST', '/executions', plan);
      ctx.announce(`Execution ${started.executionId} started.`);
      ctx.navigate(`#/executions/${encodeURIComponent(started.executionId)}`);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const map = new SourceMap(text.value);
      const details = err.details.length ? err.details : [{ path: '', message: err.message }];
      show(
        `The layer refused the plan (${err.status})`,
        details.map((d) => ({ path: d.path, message: d.message, ...map.locate(d.path) })),
      );
    }
  }

  const root = h(
    'section',
    { 'aria-labelledby': 'new-heading' },
    h('h2', { id: 'new-heading' }, 'New plan'),
    h(
      'form',
      { onsubmit: (e: Event) => void submit(e) },
      h('label', { for: 'plan-text' }, 'Plan (JSON or YAML)'),
      h('p', { id: 'plan-help', class: 'muted' }, 'A pattern (sequential, parallel or pipeline) and its tasks, as `xl run` takes them. See examples/ in the repository.'),
      text,
      h('div', { class: 'row' }, h('label', { for: 'plan-file' }, 'Or open a file'), file),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Submit plan')),
    ),
    problems,
  );

  // Nothing on the layer to follow: a live refresh leaves the form alone.
  return { title: 'New plan', root, refresh: async () => undefined };
}
