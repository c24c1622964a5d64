// What a restart of the local layer kills of the earlier run: its workers (recognised by their
// environment, not by a pid alone) and the command groups they listed, and nothing else.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killLeftoverWorkers, processInfo, reapLeftoverGroups } from '../../local/leftovers.ts';
import { alive, waitFor } from '../support/processes.ts';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) {
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** A process that looks like a worker (agent/main.ts on its command line) of the given run dir. */
function fakeWorker(runDir: string): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '--', '/somewhere/agent/main.ts'], {
    env: { PATH: process.env.PATH, XL_RUN_DIR: runDir },
    stdio: 'ignore',
  });
  started.push(child);
  return child;
}

/** A command in its own process group, as a worker starts one. */
function commandGroup(): ChildProcess {
  const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  started.push(child);
  return child;
}

describe('a restart on the same state dir', () => {
  it('kills the workers of its own run dir and no other', async () => {
    const mine = mkdtempSync(join(tmpdir(), 'xl-run-'));
    const other = mkdtempSync(join(tmpdir(), 'xl-run-'));
    const leftover = fakeWorker(mine);
    const neighbour = fakeWorker(other);
    await waitFor(async () => (await processInfo(leftover.pid!)) !== undefined && (await processInfo(neighbour.pid!)) !== undefined);

    expect(await killLeftoverWorkers(mine)).toEqual([leftover.pid]);
    expect(alive(leftover.pid!)).toBe(false);
    expect(alive(neighbour.pid!)).toBe(true);
  });

  it('kills the command groups its workers listed, but not a group that started after the list was written', async () => {
    const runDir = mkdtempSync(join(tmpdir(), 'xl-run-'));
    const listed = commandGroup();
    await waitFor(async () => (await processInfo(listed.pid!)) !== undefined);
    const file = join(runDir, 'coder-1.pgids');
    writeFileSync(file, `${listed.pid}\n`);
    // A group whose id is in a list written before it started: its pid was reused, it is not ours.
    const later = commandGroup();
    await waitFor(async () => (await processInfo(later.pid!)) !== undefined);
    const stale = join(runDir, 'coder-2.pgids');
    writeFileSync(stale, `${later.pid}\n`);
    const past = new Date(Date.now() - 60_000);
    utimesSync(stale, past, past);

    expect(await reapLeftoverGroups(runDir)).toBe(1);
    await waitFor(() => !alive(listed.pid!));
    expect(alive(later.pid!)).toBe(true);
  });
});
