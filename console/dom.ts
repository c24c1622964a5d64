/// <reference lib="dom" />
// A few lines of DOM building: the console has no framework, so that it needs no package beyond
// what the layer has (esbuild bundles it).
export type Child = Node | string | number | null | undefined | false | Child[];
type Props = Record<string, unknown>;

/** An element with attributes, `on<event>` listeners and children; false and null props are left out. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
    else if (key === 'class') el.className = String(value);
    else if (key === 'value' || key === 'checked' || key === 'disabled') (el as unknown as Record<string, unknown>)[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/**
 * Replaces a container's children, keeping the keyboard focus on the element with the same
 * `data-focus-key` (a live refresh must not throw a keyboard user back to the top).
 */
export function replace(container: Element, ...children: Child[]): void {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.getAttribute('data-focus-key') : null;
  container.replaceChildren();
  append(container, children);
  if (key) (container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`) as HTMLElement | null)?.focus();
}

export const formatDuration = (ms: number | undefined): string => {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
};

export const between = (from: string | undefined, to: string | undefined): number | undefined =>
  from ? (to ? Date.parse(to) : Date.now()) - Date.parse(from) : undefined;

export const formatTime = (iso: string | undefined): string => (iso ? new Date(iso).toLocaleString() : '—');

export const formatUsd = (usd: number | undefined): string => (usd === undefined ? '—' : `$${usd.toFixed(usd < 1 ? 4 : 2)}`);

export const formatBytes = (bytes: number | undefined): string => {
  if (bytes === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
};

/** A status as a word in a coloured badge: the word carries the meaning, the colour only helps. */
export const badge = (status: string): HTMLElement => h('span', { class: `badge status-${status.toLowerCase()}` }, status);
