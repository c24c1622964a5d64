// The console's entry: the page's frame (navigation, status line, sign-in), a hash router over the
// views, and the live refresh of the one on show.
import './app.css';
import { ApiError, token } from './api.ts';
import { h, replace } from './dom.ts';
import { startLive } from './live.ts';
import { breakersView } from './views/breakers.ts';
import { executionView } from './views/execution.ts';
import { executionsView } from './views/executions.ts';
import { fleetView } from './views/fleet.ts';
import { newPlanView } from './views/new-plan.ts';
import type { Context, View } from './views/view.ts';

const LINKS: [string, string][] = [
  ['#/executions', 'Executions'],
  ['#/fleet', 'Agents and pool'],
  ['#/breakers', 'Breakers and dead letters'],
  ['#/new', 'New plan'],
];

const status = h('p', { class: 'status-line', role: 'status', 'aria-live': 'polite' });
const problem = h('p', { class: 'error-text', role: 'alert' });
const main = h('main', { id: 'main', tabindex: -1 });
const signOut = h('button', { type: 'button', class: 'link', hidden: true, onclick: () => (token.clear(), route()) }, 'Forget token');
const nav = h('nav', { 'aria-label': 'Console' }, h('ul', null, LINKS.map(([href, label]) => h('li', null, h('a', { href }, label)))));

document.body.append(
  h('a', { class: 'skip', href: '#main', onclick: (e: Event) => (e.preventDefault(), main.focus()) }, 'Skip to content'),
  h('header', null, h('h1', null, h('a', { href: '#/executions' }, 'xl console')), nav, signOut),
  main,
  h('footer', null, problem, status),
);

const ctx: Context = {
  navigate: (hash) => {
    location.hash = hash;
  },
  announce: (message) => {
    status.textContent = message;
  },
};

let current: View | undefined;
let stopLive: (() => void) | undefined;

function viewFor(hash: string): View {
  const [, first, second] = hash.replace(/^#/, '').split('/');
  if (first === 'executions' && second) return executionView(decodeURIComponent(second), ctx);
  if (first === 'fleet') return fleetView(ctx);
  if (first === 'breakers') return breakersView(ctx);
  if (first === 'new') return newPlanView(ctx);
  return executionsView(ctx);
}

function stop(): void {
  stopLive?.();
  stopLive = undefined;
  current?.dispose?.();
  current = undefined;
}

async function refresh(view: View): Promise<void> {
  try {
    await view.refresh();
    if (view === current) problem.textContent = '';
  } catch (err) {
    if (view !== current) return;
    if (err instanceof ApiError && err.status === 401) return signIn(token.get() ? 'The layer refused that token.' : undefined);
    problem.textContent = `Could not read the layer: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function route(): void {
  stop();
  signOut.hidden = !token.get();
  const hash = location.hash || '#/executions';
  for (const a of nav.querySelectorAll('a')) {
    const here = hash === a.getAttribute('href') || (a.getAttribute('href') === '#/executions' && hash.startsWith('#/executions/'));
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = (current = viewFor(hash));
  document.title = `${view.title} · xl console`;
  replace(main, view.root);
  main.focus({ preventScroll: true });
  void refresh(view);
  stopLive = startLive(() => void refresh(view));
}

/** XL_API_TOKEN is set on the layer: the token is asked for, and kept in this tab only. */
function signIn(message?: string): void {
  stop();
  token.clear();
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'token-help' });
  replace(
    main,
    h(
      'section',
      { 'aria-labelledby': 'sign-in-heading', class: 'sign-in' },
      h('h2', { id: 'sign-in-heading' }, 'Sign in'),
      message && h('p', { class: 'error-text', role: 'alert' }, message),
      h(
        'form',
        {
          onsubmit: (e: Event) => {
            e.preventDefault();
            token.set(input.value.trim());
            route();
          },
        },
        h('label', { for: 'token' }, 'API token'),
        h('p', { id: 'token-help', class: 'muted' }, "This layer asks for its bearer token (XL_API_TOKEN). It is kept in this tab's session storage only."),
        input,
        h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in')),
      ),
    ),
  );
  document.title = 'Sign in · xl console';
  input.focus();
}

window.addEventListener('hashchange', route);
route();
