// A task's artifacts: each with a download link, and the two kinds worth reading in place drawn as
// such: a diff (files, hunks, added and removed lines) and a Claude Code transcript (the JSON lines
// the agent keeps, agent/worker/run.ts), turn by turn with long blocks folded.
import { ApiError, authHeaders } from '../api.ts';
import { type Child, formatBytes, h } from '../dom.ts';

export interface Artifact {
  name: string;
  uri: string;
  bytes: number;
}

/** Bigger artifacts are only offered for download: the page would spend too long drawing them. */
export const VIEW_MAX_BYTES = 2 * 1024 * 1024;
const FOLD_CHARS = 600;
const FOLD_LINES = 12;
const DIFF_MAX_LINES = 5000;

export const artifactPath = (executionId: string, taskId: string, name: string) =>
  `/executions/${encodeURIComponent(executionId)}/tasks/${encodeURIComponent(taskId)}/artifacts/${encodeURIComponent(name)}`;

/** The artifact's bytes as text, through the API with the page's token (a plain link could not send it). */
async function fetchArtifact(path: string): Promise<Response> {
  const res = await fetch(path, { headers: authHeaders() });
  if (!res.ok) {
    const body = (await res.json().catch(() => undefined)) as { error?: { message?: string; type?: string } } | undefined;
    throw new ApiError(res.status, body?.error?.message ?? `GET ${path} answered ${res.status}`, body?.error?.type);
  }
  return res;
}

/**
 * A link that saves the artifact. The href is the API's route (a layer without a token serves it
 * as it is); a click fetches it with the token and saves the bytes under the artifact's name.
 */
function downloadLink(path: string, a: Artifact, onError: (message: string) => void): HTMLAnchorElement {
  return h(
    'a',
    {
      href: path,
      download: a.name,
      class: 'download',
      'data-focus-key': `download:${a.name}`,
      onclick: (e: Event) => {
        e.preventDefault();
        void fetchArtifact(path)
          .then((res) => res.blob())
          .then((blob) => {
            const url = URL.createObjectURL(blob);
            const save = h('a', { href: url, download: a.name, hidden: true });
            document.body.append(save);
            save.click();
            save.remove();
            setTimeout(() => URL.revokeObjectURL(url), 60_000);
          })
          .catch((err: unknown) => onError(`Could not download ${a.name}: ${err instanceof Error ? err.message : String(err)}`));
      },
    },
    `Download ${a.name}`,
  );
}

type Kind = 'diff' | 'transcript' | undefined;

/** What can be drawn by its name alone; other text artifacts are looked at once fetched. */
function kindByName(name: string): Kind | 'maybe' {
  if (/\.(diff|patch)$/i.test(name)) return 'diff';
  if (/\.jsonl$/i.test(name)) return 'transcript';
  if (/\.(txt|log|out)$/i.test(name) || !/\.[a-z0-9]+$/i.test(name)) return 'maybe';
  return undefined;
}

/** A unified diff: git's file headers, or ---/+++ with a hunk. */
export const looksLikeDiff = (text: string) => /^diff --git /m.test(text) || (/^--- .*\n\+\+\+ .*\n@@ /m.test(text));

function kindOf(name: string, text: string): Kind {
  const byName = kindByName(name);
  if (byName === 'diff') return 'diff';
  if (byName === 'transcript') return transcriptTurns(text).length ? 'transcript' : undefined;
  if (byName === 'maybe') return looksLikeDiff(text) ? 'diff' : undefined;
  return undefined;
}

/** A block shown whole when short, folded (its first line as the summary) when long. */
function fold(text: string, label: string, open = false): HTMLElement {
  const lines = text.split('\n');
  const pre = h('pre', { class: 'turn-text' }, text);
  if (text.length <= FOLD_CHARS && lines.length <= FOLD_LINES) return pre;
  const first = lines.find((l) => l.trim())?.slice(0, 120) ?? '';
  return h('details', { class: 'fold', open }, h('summary', null, `${label}: ${first}… (${lines.length} lines, ${text.length} characters)`), pre);
}

// ---- transcripts ----

interface Block {
  type: string;
  text?: string;
  thinking?: string;
  name?: string;
  id?: string;
  input?: unknown;
  content?: unknown;
  is_error?: boolean;
  tool_use_id?: string;
}
interface Line {
  type?: string;
  subtype?: string;
  message?: { role?: string; content?: string | Block[]; model?: string };
  model?: string;
  tools?: string[];
  summary?: string;
  result?: string;
  is_error?: boolean;
  num_turns?: number;
  total_cost_usd?: number;
  duration_ms?: number;
}

export interface Turn {
  role: 'session' | 'user' | 'assistant' | 'tool-use' | 'tool-result' | 'result' | 'summary';
  label: string;
  text: string;
  error?: boolean;
}

/**
 * A tool's input as a person reads it: `key: value` lines, a multi-line string (a file's content, a
 * script) below its key as it is rather than as an escaped JSON string; anything nested as JSON.
 */
export function toolInput(input: unknown): string {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return JSON.stringify(input ?? {}, null, 2);
  return Object.entries(input as Record<string, unknown>)
    .map(([k, v]) => (typeof v === 'string' ? (v.includes('\n') ? `${k}:\n${v.replace(/\n$/, '')}` : `${k}: ${v}`) : `${k}: ${JSON.stringify(v)}`))
    .join('\n');
}

const resultText = (content: unknown): string =>
  typeof content === 'string'
    ? content
    : Array.isArray(content)
      ? content.map((c: Block) => (c.type === 'text' ? (c.text ?? '') : `[${c.type}]`)).join('\n')
      : JSON.stringify(content ?? '', null, 2);

/**
 * The turns of a transcript: the stream-json lines of `claude -p --output-format stream-json` and
 * the lines of a Claude Code session file alike (both hold `{ type, message: { content } }`).
 */
export function transcriptTurns(text: string): Turn[] {
  const turns: Turn[] = [];
  const toolNames = new Map<string, string>();
  for (const raw of text.split('\n')) {
    if (!raw.trim()) continue;
    let line: Line;
    try {
      line = JSON.parse(raw) as Line;
    } catch {
      continue; // a line cut by the 16 MiB limit, or not JSON
    }
    if (line.type === 'system' && line.subtype === 'init') {
      turns.push({ role: 'session', label: 'Session', text: `Model ${line.model ?? '?'}; tools: ${(line.tools ?? []).join(', ') || 'none'}` });
    } else if (line.type === 'summary' && line.summary) {
      turns.push({ role: 'summary', label: 'Summary', text: line.summary });
    } else if (line.type === 'result') {
      const facts = [line.subtype, line.num_turns !== undefined && `${line.num_turns} turns`, line.total_cost_usd !== undefined && `$${line.total_cost_usd.toFixed(4)}`, line.duration_ms !== undefined && `${(line.duration_ms / 1000).toFixed(1)} s`];
      turns.push({ role: 'result', label: `Result (${facts.filter(Boolean).join(', ')})`, text: line.result ?? '', error: line.is_error });
    } else if ((line.type === 'user' || line.type === 'assistant') && line.message) {
      const content = line.message.content;
      const blocks: Block[] = typeof content === 'string' ? [{ type: 'text', text: content }] : (content ?? []);
      for (const b of blocks) {
        if (b.type === 'text' && b.text?.trim()) turns.push({ role: line.type, label: line.type === 'user' ? 'User' : 'Assistant', text: b.text });
        else if (b.type === 'thinking' && b.thinking) turns.push({ role: 'assistant', label: 'Assistant (thinking)', text: b.thinking });
        else if (b.type === 'tool_use') {
          if (b.id && b.name) toolNames.set(b.id, b.name);
          turns.push({ role: 'tool-use', label: `Tool use: ${b.name ?? '?'}`, text: toolInput(b.input) });
        } else if (b.type === 'tool_result') {
          const tool = b.tool_use_id ? toolNames.get(b.tool_use_id) : undefined;
          turns.push({ role: 'tool-result', label: `Tool result${tool ? `: ${tool}` : ''}${b.is_error ? ' (error)' : ''}`, text: resultText(b.content), error: b.is_error });
        }
      }
    }
  }
  return turns;
}

function drawTranscript(name: string, text: string): HTMLElement {
  const turns = transcriptTurns(text);
  return h(
    'section',
    { class: 'transcript', 'aria-label': `Transcript ${name}` },
    h('h5', null, `Transcript ${name}: ${turns.length} turns`),
    h(
      'ol',
      { class: 'turns' },
      turns.map((t) =>
        h('li', { class: `turn turn-${t.role}${t.error ? ' turn-error' : ''}` }, h('p', { class: 'turn-role' }, t.label), t.text ? fold(t.text, t.label, t.role === 'assistant' || t.role === 'user') : null),
      ),
    ),
  );
}

// ---- diffs ----

interface DiffFile {
  name: string;
  meta: string[];
  lines: { kind: 'add' | 'del' | 'ctx' | 'hunk' | 'meta'; text: string }[];
  added: number;
  removed: number;
}

export function parseDiff(text: string): DiffFile[] {
  const files: DiffFile[] = [];
  let file: DiffFile | undefined;
  const start = (name: string) => {
    file = { name, meta: [], lines: [], added: 0, removed: 0 };
    files.push(file);
    return file;
  };
  let inHunk = false;
  for (const line of text.replace(/\n$/, '').split('\n')) {
    const git = /^diff --git a\/(.+?) b\/(.+)$/.exec(line);
    if (git) {
      start(git[2]!);
      inHunk = false;
      continue;
    }
    if (!inHunk && line.startsWith('--- ')) {
      // A plain unified diff has no git header: its ---/+++ pair starts the file.
      if (!file || file.lines.length) start(line.slice(4).replace(/^a\//, '').replace(/\t.*$/, ''));
      file!.meta.push(line);
      continue;
    }
    if (!inHunk && line.startsWith('+++ ')) {
      const target = line.slice(4).replace(/^b\//, '').replace(/\t.*$/, '');
      if (file && target !== '/dev/null') file.name = target;
      file?.meta.push(line);
      continue;
    }
    const f = file ?? start('(diff)');
    if (line.startsWith('@@')) {
      inHunk = true;
      f.lines.push({ kind: 'hunk', text: line });
    } else if (!inHunk) f.meta.push(line);
    else if (line.startsWith('+')) {
      f.added++;
      f.lines.push({ kind: 'add', text: line });
    } else if (line.startsWith('-')) {
      f.removed++;
      f.lines.push({ kind: 'del', text: line });
    } else if (line.startsWith('\\')) f.lines.push({ kind: 'meta', text: line });
    else if (line.startsWith(' ') || line === '') f.lines.push({ kind: 'ctx', text: line });
    else {
      inHunk = false; // the next file's extended header (git's index, mode lines)
      f.meta.push(line);
    }
  }
  return files;
}

function drawDiff(name: string, text: string): HTMLElement {
  const files = parseDiff(text);
  let budget = DIFF_MAX_LINES;
  const totals = files.reduce((t, f) => ({ added: t.added + f.added, removed: t.removed + f.removed }), { added: 0, removed: 0 });
  return h(
    'section',
    { class: 'diff', 'aria-label': `Diff ${name}` },
    h('h5', null, `Diff ${name}: ${files.length} file${files.length === 1 ? '' : 's'}, ${totals.added} added and ${totals.removed} removed lines`),
    files.map((f) => {
      const shown = f.lines.slice(0, Math.max(0, budget));
      budget -= shown.length;
      return h(
        'div',
        { class: 'diff-file' },
        h('p', { class: 'diff-file-name' }, h('strong', null, f.name), h('span', { class: 'diff-count' }, ` +${f.added} −${f.removed}`)),
        f.meta.length ? h('pre', { class: 'diff-meta' }, f.meta.join('\n')) : null,
        h(
          'pre',
          { class: 'diff-lines', tabindex: 0, 'aria-label': `Changes to ${f.name}` },
          shown.map((l) => h('span', { class: `diff-${l.kind}` }, l.text, '\n')),
        ),
        shown.length < f.lines.length ? h('p', { class: 'muted' }, `${f.lines.length - shown.length} more lines: download the diff to read them.`) : null,
      );
    }),
  );
}

// ---- the list ----

/** Texts already read, by path and size: a live refresh draws them again without a request. The last few only. */
const cache = new Map<string, Promise<string>>();
const CACHE_ENTRIES = 16;

/** The artifacts section of a task's details; `onError` puts a failed download in the view's alert. */
export function artifactsSection(executionId: string, taskId: string, artifacts: Artifact[], onError: (message: string) => void): Child {
  if (!artifacts.length) return null;
  const views = h('div', { class: 'artifact-views' });
  const items = artifacts.map((a) => {
    const path = artifactPath(executionId, taskId, a.name);
    const kind = kindByName(a.name);
    if (kind && a.bytes > 0 && a.bytes <= VIEW_MAX_BYTES) {
      const slot = h('div', { class: 'artifact-view', 'aria-busy': 'true' }, h('p', { class: 'muted' }, `Reading ${a.name}…`));
      views.append(slot);
      const key = `${path}#${a.bytes}`;
      let text = cache.get(key);
      if (!text) {
        text = fetchArtifact(path).then((r) => r.text());
        cache.set(key, text);
        if (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
        text.catch(() => cache.delete(key));
      }
      void text.then(
        (t) => {
          const k = kindOf(a.name, t);
          slot.removeAttribute('aria-busy');
          slot.replaceChildren(...(k === 'diff' ? [drawDiff(a.name, t)] : k === 'transcript' ? [drawTranscript(a.name, t)] : []));
          if (!k) slot.remove();
        },
        (err: unknown) => {
          slot.removeAttribute('aria-busy');
          slot.replaceChildren(h('p', { class: 'error-text' }, `Could not read ${a.name}: ${err instanceof Error ? err.message : String(err)}`));
        },
      );
    }
    return h('li', null, downloadLink(path, a, onError), h('span', { class: 'muted' }, ` (${formatBytes(a.bytes)})`));
  });
  return [h('h4', null, 'Artifacts'), h('ul', { class: 'artifacts' }, items), views];
}
