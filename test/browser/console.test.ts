// The console in a real browser: Debian's Chromium driven by playwright-core, against a real local
// layer (`npm start`, worker processes running command tasks) that asks for a bearer token. Skipped,
// with one line, where no Chromium is installed (.ci/run installs the `chromium` package).
import { execSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, ROOT, removeStateDir, scratchDir, startLayer, waitFor } from '../e2e/harness.ts';

const CHROMIUM = process.env.XL_CHROMIUM ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`test/browser: no Chromium at ${CHROMIUM} (apt-get install chromium): the console's browser tests are skipped`);

const TOKEN = 'console-test-token';
/** The README's screenshots (console-execution, -fleet, -artifacts) go to docs/ when asked for (XL_CONSOLE_SCREENSHOTS=1); else to the test's state dir, so a test run changes no committed file. */
const shot = (name: string) => join(process.env.XL_CONSOLE_SCREENSHOTS === '1' ? join(ROOT, 'docs') : layer.stateDir, name);
const auth = { authorization: `Bearer ${TOKEN}` };

let layer: Layer;
let browser: Browser;
let page: Page;
/** What the page wrote to its console as errors, and the script errors it threw. */
const errors: string[] = [];

const api = (method: string, path: string, body?: unknown) => layer.request(method, path, body, auth);
const open = (hash: string) => page.goto(`${layer.url}/console${hash}`);
const cmd = (id: string, command: string, agentType = 'coder') => ({ id, agentType, command });

/** Resolves once the page has had `count` answers from the API (the page itself and the event stream aside). */
function apiResponses(count: number): Promise<void> {
  return new Promise((ok) => {
    let seen = 0;
    if (count === 0) return ok();
    const on = (r: { url(): string }) => {
      if (/^\/(console|events)/.test(new URL(r.url()).pathname) || ++seen < count) return;
      page.off('response', on);
      ok();
    };
    page.on('response', on);
  });
}

async function submit(plan: object): Promise<string> {
  const res = await api('POST', '/executions', plan);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.executionId;
}

describe.skipIf(!haveChromium)('the console', () => {
  beforeAll(async () => {
    [layer, browser] = await Promise.all([
      startLayer({
        env: {
          XL_API_TOKEN: TOKEN,
          XL_POOL: 'coder=2..4,tester=1..2,reviewer=1..2',
          XL_HEARTBEAT_SECONDS: '3',
          // The tester's breaker opens at its first transient failure and stays open; the others never.
          XL_BREAKER_POLICY: JSON.stringify({ 'agent:*': { failureThreshold: 1_000_000 }, 'agent:tester': { failureThreshold: 1, cooldownSeconds: 3600 } }),
          // Claude Code tasks run a stand-in CLI that plays a synthesized transcript and writes the files it names.
          XL_CLAUDE_BIN: join(ROOT, 'test/fixtures/claude-standin.mjs'),
        },
      }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] }),
    ]);
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  });
  afterAll(async () => {
    await browser?.close();
    await layer?.stop();
    if (layer) await removeStateDir(layer.stateDir);
  });

  it('asks for the API token, says when one is refused, and shows the executions once given the right one', async () => {
    await open('');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('API token').fill('wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('The layer refused that token.').waitFor();
    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Executions' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('xl-console-token'))).toBe(TOKEN);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    // The two refusals were the point of this test; from here on the page must write no error.
    expect(errors.every((e) => /401/.test(e))).toBe(true);
    errors.length = 0;
  });

  it('submits a pasted YAML plan and watches its tasks turn completed, stage by stage', async () => {
    await open('#/new');
    const yaml = [
      'name: console-pipeline',
      'pattern: pipeline',
      'stages:',
      '  - name: generate',
      '    tasks:',
      `      - { id: api, agentType: coder, command: "echo '{\\"api\\":1}'" }`,
      `      - { id: schema, agentType: coder, command: "sleep 2; echo '{\\"schema\\":1}'" }`,
      '  - name: verify',
      '    tasks:',
      `      - { id: review, agentType: reviewer, command: "sleep 1; echo '{\\"reviewed\\":true}'" }`,
    ].join('\n');
    await page.getByLabel('Plan (JSON or YAML)').fill(yaml);
    await page.getByRole('button', { name: 'Submit plan' }).click();
    await page.waitForURL(/#\/executions\/ex-/);
    await page.getByRole('heading', { name: /console-pipeline/ }).waitFor();
    expect(await page.getByRole('heading', { name: 'Stage 1: generate' }).isVisible()).toBe(true);
    // In progress: the first stage's quick task done, its slow one still going.
    await page.locator('button[data-task="api"].status-completed').waitFor({ timeout: 30_000 });
    await page.screenshot({ path: shot('console-execution.png'), fullPage: true });
    for (const id of ['api', 'schema', 'review']) await page.locator(`button[data-task="${id}"].status-completed`).waitFor({ timeout: 30_000 });
    await page.getByRole('heading', { name: /console-pipeline/ }).getByText('SUCCEEDED').waitFor();
    await page.locator('button[data-task="review"]').click();
    expect(await page.locator('pre.output').textContent()).toContain('"reviewed": true');
  });

  it('shows the layer’s validation errors at their JSON paths, with the line they are on', async () => {
    await open('#/new');
    await page.getByLabel('Plan (JSON or YAML)').fill(JSON.stringify({ pattern: 'sequential', tasks: [{ id: 'a', agentType: 'painter', command: 'true' }] }, null, 2));
    await page.getByRole('button', { name: 'Submit plan' }).click();
    const problem = page.locator('#plan-problems li').filter({ hasText: '/tasks/0/agentType' });
    await problem.waitFor();
    expect(await problem.textContent()).toMatch(/line 6, column \d+/);
    expect(await page.getByLabel('Plan (JSON or YAML)').getAttribute('aria-invalid')).toBe('true');
    // The browser logs the API's 400 itself; nothing else may be logged.
    expect(errors.filter((e) => !/status of 400/.test(e))).toEqual([]);
    errors.length = 0;
  });

  it('opens a failed task from the keyboard and reads its error', async () => {
    const id = await submit({ name: 'console-failure', pattern: 'sequential', tasks: [cmd('one', `echo '{"n":1}'`), cmd('two', 'echo broken pipe >&2; exit 3'), cmd('three', 'true')] });
    await waitFor('the execution to fail', async () => (await api('GET', `/executions/${id}`)).body.status === 'FAILED', 45_000);
    await open(`#/executions/${id}`);
    // By keyboard: the task is a button, and its details take the focus.
    await page.locator('button[data-task="two"].status-failed').focus();
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('task-heading');
    const error = page.getByLabel('Error');
    await error.waitFor();
    expect(await error.locator('.error-type').textContent()).toBe('permanent');
    expect(await error.locator('.error-message').textContent()).toContain('broken pipe');
    expect(await page.locator('button[data-task="three"]').getAttribute('class')).toContain('status-skipped');
    // The chain on one line: each arrow between its two boxes, none wrapped under a box.
    const boxes = await page.locator('.graph.sequential > li').evaluateAll((items) =>
      items.map((li) => {
        const box = li.querySelector('button')!.getBoundingClientRect();
        const arrow = getComputedStyle(li, '::after').content;
        return { top: Math.round(box.top), left: box.left, right: box.right, liRight: li.getBoundingClientRect().right, liHeight: li.getBoundingClientRect().height, boxHeight: box.height, arrow };
      }),
    );
    expect(boxes.map((b) => b.top)).toEqual([boxes[0]!.top, boxes[0]!.top, boxes[0]!.top]);
    expect(boxes.map((b) => b.arrow)).toEqual(['"→"', '"→"', 'none']);
    for (const [i, b] of boxes.entries()) {
      expect(b.liHeight).toBeLessThanOrEqual(b.boxHeight + 1); // nothing below the box
      if (i < 2) expect(b.liRight).toBeGreaterThan(b.right + 10); // the arrow beside it
    }
  });

  it('cancels a running execution', async () => {
    const id = await submit({ name: 'console-cancel', pattern: 'sequential', tasks: [cmd('long', 'sleep 60')] });
    await open(`#/executions/${id}`);
    await page.locator('button[data-task="long"].status-running').waitFor({ timeout: 30_000 });
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Cancel execution' }).click();
    await page.getByRole('heading', { name: /console-cancel/ }).getByText('ABORTED').waitFor();
    expect((await api('GET', `/executions/${id}`)).body.status).toBe('ABORTED');
  });

  it('finds executions by name and status through the API, so matches on any page are found', async () => {
    await open('#/executions');
    const asked = page.waitForRequest((r) => new URL(r.url()).pathname === '/executions' && new URL(r.url()).searchParams.get('name') === 'cancel');
    await page.getByLabel('Search by name').fill('cancel');
    expect(new URL((await asked).url()).searchParams.get('limit')).toBe('20');
    // The unfiltered page showed it too: wait for the filtered answer to be drawn.
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    await page.getByRole('link', { name: 'console-cancel' }).waitFor();
    await page.getByLabel('Status').selectOption('FAILED');
    await page.getByText('No execution matches these filters.').waitFor();
    await page.getByLabel('Search by name').fill('');
    await page.getByRole('link', { name: 'console-failure' }).waitFor();
    await expect.poll(() => page.getByRole('link', { name: 'console-cancel' }).count()).toBe(0);
    await page.getByLabel('Status').selectOption('');
  });

  it('changes a pool bound, and the agents show their type, status and health', async () => {
    await open('#/fleet');
    const max = page.getByLabel('reviewer max');
    await max.fill('3');
    await page.getByRole('form', { name: 'reviewer bounds' }).getByRole('button', { name: 'Save' }).click();
    await page.getByText('Pool bounds of reviewer set to 1..3.').waitFor();
    const pool = await api('GET', '/pool');
    expect(pool.body.items.find((r: any) => r.agentType === 'reviewer')).toMatchObject({ min: 1, max: 3 });
    // A bound the layer refuses says why, at the row.
    await page.getByLabel('reviewer min').fill('5');
    await page.getByRole('form', { name: 'reviewer bounds' }).getByRole('button', { name: 'Save' }).click();
    await page.getByRole('form', { name: 'reviewer bounds' }).getByText(/above max/).waitFor();
    errors.splice(0, errors.length, ...errors.filter((e) => !/status of 400/.test(e)));
    await page.getByLabel('reviewer min').fill('1');
    await page.getByRole('form', { name: 'reviewer bounds' }).getByRole('button', { name: 'Save' }).click();
    await page.getByText('Pool bounds of reviewer set to 1..3.').waitFor();
    // The agents, with their health sampled (cpu and memory) once the monitor has seen them.
    await page.locator('#agents-heading ~ .scroll tbody tr th', { hasText: /^coder-/ }).first().waitFor();
    await page.locator('#agents-heading ~ .scroll tbody td', { hasText: / of \d/ }).first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: shot('console-fleet.png'), fullPage: true });
  });

  it('resets an open breaker', async () => {
    const id = await submit({ name: 'console-breaker', pattern: 'sequential', tasks: [cmd('flaky', 'echo try later >&2; exit 75', 'tester')] });
    await waitFor('agent:tester to open', async () => (await api('GET', '/breakers')).body.items.find((b: any) => b.key === 'agent:tester' && b.state === 'open'), 45_000);
    await open('#/breakers');
    await page.getByRole('button', { name: 'Reset agent:tester' }).click();
    await page.getByText('Breaker agent:tester reset: closed.').waitFor();
    const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'agent:tester' }) });
    await row.getByText('closed').waitFor();
    expect((await api('GET', '/breakers')).body.items.find((b: any) => b.key === 'agent:tester')?.state).toBe('closed');
    await api('DELETE', `/executions/${id}`);
  });

  it('reads a task’s transcript turn by turn and its diff as a diff, downloads an artifact, and marks a cached task', async () => {
    const repo = scratchDir('xl-console-repo-');
    const git = (args: string) => execSync(`git -C ${repo} -c user.name=t -c user.email=t@t ${args}`, { stdio: 'pipe' });
    git('init -q -b main');
    writeFileSync(join(repo, 'README.md'), 'hello\n');
    git('add README.md');
    git('commit -q -m init');
    // A Claude Code task (the stand-in plays coder-typescript.jsonl, writing src/slug.ts): its
    // session transcript and the workspace's diff are its artifacts.
    const task = {
      id: 'write',
      agentType: 'coder',
      instructions: 'Write a typed slugify function. [standin:coder-typescript]',
      workspace: { repository: `file://${repo}`, ref: 'main' },
      cache: { ttlSeconds: 3600 },
    };
    const first = await submit({ name: 'console-artifacts', pattern: 'sequential', tasks: [task] });
    const ended = await waitFor('the artifacts execution to end', async () => {
      const ex = (await api('GET', `/executions/${first}`)).body;
      return ex.status === 'RUNNING' ? undefined : ex;
    }, 60_000);
    expect(ended.status, JSON.stringify(ended.tasks)).toBe('SUCCEEDED');
    expect(ended.tasks[0].artifacts.map((a: any) => a.name).sort()).toEqual(['claude-transcript.jsonl', 'new-files.tar.gz', 'workspace.diff']);

    await open(`#/executions/${first}`);
    await page.locator('button[data-task="write"].status-completed').click();
    const transcript = page.getByRole('region', { name: 'Transcript claude-transcript.jsonl' });
    await transcript.waitFor();
    const roles = await transcript.locator('.turn-role').allTextContents();
    expect(roles[0]).toBe('Session');
    expect(roles).toContain('Tool use: Write');
    expect(roles).toContain('Tool result: Write');
    expect(roles).toContain('Assistant');
    expect(roles.at(-1)).toMatch(/^Result \(success, 2 turns/);
    expect(await transcript.locator('.turn-assistant').last().textContent()).toContain('I wrote src/slug.ts');

    const diff = page.getByRole('region', { name: 'Diff workspace.diff' });
    await diff.waitFor();
    expect(await diff.locator('.diff-file-name strong').allTextContents()).toEqual(['src/slug.ts']);
    expect(await diff.locator('.diff-add').first().textContent()).toBe('+export function slugify(title: string): string {\n');
    expect(await diff.locator('.diff-del').count()).toBe(0);
    // The archive is offered for download only.
    expect(await page.getByRole('region', { name: /new-files/ }).count()).toBe(0);
    await page.screenshot({ path: shot('console-artifacts.png'), fullPage: true });

    // The download link saves the bytes the bucket holds (through the API, with the page's token).
    const saving = page.waitForEvent('download');
    await page.getByRole('link', { name: 'Download workspace.diff' }).click();
    const download = await saving;
    expect(download.suggestedFilename()).toBe('workspace.diff');
    const saved = readFileSync((await download.path())!);
    const route = `/executions/${first}/tasks/write/artifacts/workspace.diff`;
    const direct = await fetch(layer.url + route, { headers: auth });
    expect(direct.headers.get('content-type')).toBe('text/x-diff; charset=utf-8');
    expect(direct.headers.get('content-disposition')).toMatch(/^attachment; filename="workspace.diff"/);
    const bytes = Buffer.from(await direct.arrayBuffer());
    expect(saved.equals(bytes)).toBe(true);
    expect(bytes.length).toBe(ended.tasks[0].artifacts.find((a: any) => a.name === 'workspace.diff').bytes);
    // The route asks for the token as the others do, and names what a task has when asked for what it lacks.
    expect((await fetch(layer.url + route)).status).toBe(401);
    const missing = await fetch(layer.url + `/executions/${first}/tasks/write/artifacts/nothing.txt`, { headers: auth });
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.message).toBe('task write has no artifact nothing.txt (it has: workspace.diff, new-files.tar.gz, claude-transcript.jsonl)');

    // The same task again is served from the result cache: its tile says so, and its artifacts are the first run's.
    const second = await submit({ name: 'console-artifacts-again', pattern: 'sequential', tasks: [task] });
    await waitFor('the cached execution to succeed', async () => (await api('GET', `/executions/${second}`)).body.status === 'SUCCEEDED', 60_000);
    await open(`#/executions/${second}`);
    const tile = page.locator('button[data-task="write"].status-completed');
    await tile.locator('.task-cached').waitFor();
    expect(await tile.locator('.task-cached').textContent()).toBe('cached from write');
    await tile.click();
    await page.getByRole('link', { name: `${first} / write` }).waitFor();
    await page.getByRole('region', { name: 'Diff workspace.diff' }).waitFor();
    expect(errors).toEqual([]);
  });

  it('writes no error to the browser console on any view, at 1280 and at 390 px wide, with nothing wider than the screen', async () => {
    const { body } = await api('GET', '/executions');
    const hashes = ['#/executions', `#/executions/${body.items[0].executionId}`, '#/fleet', '#/breakers', '#/new'];
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: 800 });
      for (const hash of hashes) {
        // Two live refreshes (or none, for the form of a new plan) after the view's first read.
        const refreshed = apiResponses(hash === '#/new' ? 0 : 3);
        await open(hash);
        await page.locator('main h2').first().waitFor();
        await refreshed;
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        expect(overflow, `${hash} at ${width} px`).toBeLessThanOrEqual(0);
      }
    }
    expect(errors).toEqual([]);
  });
});
