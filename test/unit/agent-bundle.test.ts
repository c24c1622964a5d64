// The local layer's workers run the agent bundled, as its container does.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AGENT_BUNDLE_DIR, bundleAgent, tsxAgentCommand } from '../../local/agent-bundle.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** What a worker started with `args` says when it is given no agent type: it got as far as its settings. */
async function startError(args: string[]): Promise<string> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  const r = await run(process.execPath, args, { cwd: ROOT, env }).then(
    () => ({ stderr: '', stdout: '' }),
    (err: { stderr: string; stdout: string }) => err,
  );
  return r.stdout + r.stderr;
}

describe('the agent bundle', () => {
  it('runs the worker as agent/main.ts does, from a folder of the project that its packages resolve from', async () => {
    const command = await bundleAgent(ROOT);
    const entry = command.at(-1)!;
    expect(entry.startsWith(join(ROOT, AGENT_BUNDLE_DIR))).toBe(true);
    expect(existsSync(entry) && existsSync(`${entry}.map`)).toBe(true);
    // Stack traces name the project's files: the map's sources resolve from the bundle's own folder.
    const { sources } = JSON.parse(readFileSync(`${entry}.map`, 'utf8')) as { sources: string[] };
    expect(sources).toContain('../../../../agent/main.ts');
    for (const source of sources) expect(existsSync(resolve(dirname(entry), source)), source).toBe(true);
    const bundled = await startError(command);
    expect(bundled).toContain('XL_AGENT_TYPE must be one of');
    expect(await startError(tsxAgentCommand(ROOT))).toContain('XL_AGENT_TYPE must be one of');
  });

  it('is one folder per content: two layers starting at once share it whole', async () => {
    const [a, b] = await Promise.all([bundleAgent(ROOT), bundleAgent(ROOT)]);
    expect(a).toEqual(b);
    expect(await startError(a!)).toContain('XL_AGENT_TYPE must be one of');
  });

  it('says what does not build', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xl-agent-bundle-'));
    mkdirSync(join(dir, 'agent'));
    writeFileSync(join(dir, 'agent/main.ts'), "import { gone } from './missing.ts';\ngone();\n");
    await expect(bundleAgent(dir)).rejects.toThrow(/missing\.ts/);
  });
});
