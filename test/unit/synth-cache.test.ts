// The local layer's template cache: kept while the code that builds the template is unchanged,
// built again as soon as any of it changes.
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CACHE_KEEP } from '../../local/cache-prune.ts';
import { SYNTH_CACHE_DIR, cachedTemplate, synthInputs, synthKey } from '../../local/synth-cache.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** A project in miniature: local/synth.ts imports infra/stack.ts, which imports core/pool.ts. */
function miniProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'xl-synth-cache-'));
  const put = (file: string, text: string) => {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), text);
  };
  put('local/synth.ts', "import { stack } from '../infra/stack.ts';\nconsole.log(stack);\n");
  put('infra/stack.ts', "import { max } from '../core/pool.ts';\nexport const stack = { max };\n");
  put('core/pool.ts', 'export const max = 3;\n');
  put('test/unrelated.test.ts', 'export {};\n');
  put('README.md', '# mini\n');
  put('cdk.json', '{"context":{}}\n');
  put('package-lock.json', '{"lockfileVersion":3}\n');
  return dir;
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('the template cache key', () => {
  it('covers the stack, the modules it imports, the feature flags and the locked library versions; not tests', async () => {
    const inputs = await synthInputs(ROOT);
    expect(inputs).toEqual(expect.arrayContaining(['local/synth.ts', 'infra/stack.ts', 'infra/constructs/agents.ts', 'core/pool.ts', 'cdk.json', 'package-lock.json']));
    expect(inputs.filter((f) => f.startsWith('test/') || f.includes('node_modules'))).toEqual([]);
  });

  it('changes when an imported module, cdk.json or the lockfile changes, and only then', async () => {
    const dir = miniProject();
    const first = await synthKey(dir);
    writeFileSync(join(dir, 'README.md'), '# changed\n');
    writeFileSync(join(dir, 'test/unrelated.test.ts'), 'export const x = 1;\n');
    expect(await synthKey(dir)).toBe(first);
    writeFileSync(join(dir, 'core/pool.ts'), 'export const max = 4;\n');
    const second = await synthKey(dir);
    expect(second).not.toBe(first);
    writeFileSync(join(dir, 'cdk.json'), '{"context":{"flag":true}}\n');
    const third = await synthKey(dir);
    expect(third).not.toBe(second);
    writeFileSync(join(dir, 'package-lock.json'), '{"lockfileVersion":3,"packages":{}}\n');
    expect(await synthKey(dir)).not.toBe(third);
  });
});

describe('a cached template', () => {
  it('is synthesized once, then read back until the code changes', async () => {
    const dir = miniProject();
    const synth = vi.fn(async () => `{"max":${synth.mock.calls.length}}`);
    expect(await cachedTemplate(dir, synth)).toEqual({ text: '{"max":1}', cached: false });
    expect(await cachedTemplate(dir, synth)).toEqual({ text: '{"max":1}', cached: true });
    expect(synth).toHaveBeenCalledTimes(1);
    writeFileSync(join(dir, 'infra/stack.ts'), "import { max } from '../core/pool.ts';\nexport const stack = { max, more: 1 };\n");
    expect(await cachedTemplate(dir, synth)).toEqual({ text: '{"max":2}', cached: false });
    // One file per key, and no temporary file left behind.
    expect(readdirSync(join(dir, SYNTH_CACHE_DIR)).sort()).toEqual([expect.stringMatching(/^[0-9a-f]{32}\.template\.json$/), expect.stringMatching(/^[0-9a-f]{32}\.template\.json$/)]);
  });

  it('keeps the most recently used templates only', async () => {
    const dir = miniProject();
    const first = await synthKey(dir);
    await cachedTemplate(dir, async () => '{"v":0}');
    for (let i = 1; i <= CACHE_KEEP + 1; i++) {
      // The first template is read back (used) each time, so it stays while older ones go.
      expect(await cachedTemplate(dir, async () => 'never')).toEqual({ text: '{"v":0}', cached: true });
      writeFileSync(join(dir, 'core/pool.ts'), `export const max = ${i};\n`);
      await cachedTemplate(dir, async () => `{"v":${i}}`);
      writeFileSync(join(dir, 'core/pool.ts'), 'export const max = 3;\n');
    }
    const kept = readdirSync(join(dir, SYNTH_CACHE_DIR));
    expect(kept).toHaveLength(CACHE_KEEP);
    expect(kept).toContain(`${first}.template.json`);
  });

  it('is not kept with XL_SYNTH_CACHE=0', async () => {
    vi.stubEnv('XL_SYNTH_CACHE', '0');
    const dir = miniProject();
    const synth = vi.fn(async () => '{}');
    await cachedTemplate(dir, synth);
    expect(await cachedTemplate(dir, synth)).toEqual({ text: '{}', cached: false });
    expect(synth).toHaveBeenCalledTimes(2);
  });

  it('is whole for two layers starting at once', async () => {
    const dir = miniProject();
    const big = JSON.stringify({ resources: 'x'.repeat(1 << 20) });
    const results = await Promise.all([cachedTemplate(dir, async () => big), cachedTemplate(dir, async () => big)]);
    expect(results.map((r) => r.text.length)).toEqual([big.length, big.length]);
    expect((await cachedTemplate(dir, async () => 'never')).text).toBe(big);
  });
});
