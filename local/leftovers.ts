// What a local layer that died (SIGKILL, a crash) may leave running: its worker processes, for the
// second or so before they notice their parent is gone, and the process groups of their commands.
// A restart on the same state dir kills both before anything else runs, so that no agent of the
// earlier run can still claim, finish or hand back a task the new run is about to re-dispatch.
// Processes are recognised, never guessed from a recorded pid alone: pids are reused.
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AGENT_BUNDLE_DIR } from './agent-bundle.ts';
import { commandLine, pids } from './processes.ts';

/** USER_HZ, the unit of /proc/<pid>/stat's start time: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

let bootMs: number | undefined;
async function bootTimeMs(): Promise<number> {
  if (bootMs === undefined) {
    const text = await readFile('/proc/stat', 'utf8');
    bootMs = Number(/^btime (\d+)$/m.exec(text)?.[1]) * 1000;
  }
  return bootMs;
}

/** A process's process group and start time (epoch ms), or undefined when it is gone. */
export async function processInfo(pid: number): Promise<{ pgrp: number; startMs: number; zombie: boolean } | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    zombie: fields[0] === 'Z',
    pgrp: Number(fields[2]),
    startMs: (await bootTimeMs()) + (Number(fields[19]) / CLOCK_TICKS) * 1000,
  };
}

/**
 * Worker processes (agent/main.ts, or its bundle) started by an earlier layer on this state dir: their environment
 * names this run dir (only processes of our own user can be read, and only those we could start).
 */
export async function findLeftoverWorkers(runDir: string): Promise<number[]> {
  const marker = `\0XL_RUN_DIR=${runDir}\0`;
  const found: number[] = [];
  for (const pid of await pids()) {
    if (pid === process.pid) continue;
    const cmdline = await commandLine(pid);
    if (!cmdline.includes('agent/main.ts') && !cmdline.includes(AGENT_BUNDLE_DIR)) continue;
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
    if (('\0' + environ).includes(marker)) found.push(pid);
  }
  return found;
}

/** SIGKILLs the earlier layer's workers and waits (up to 5 s) until they are gone. */
export async function killLeftoverWorkers(runDir: string): Promise<number[]> {
  const found = await findLeftoverWorkers(runDir);
  for (const pid of found) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const infos = await Promise.all(found.map(processInfo));
    if (infos.every((i) => i === undefined || i.zombie)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return found;
}

/**
 * Kills the process groups the earlier run's workers listed in `<agentId>.pgids` (their running
 * commands) and removes the lists. A group id cannot be reused while the group has members, so a
 * group is taken for the listed one when its leader started before the list was last written
 * (entries are appended after the spawn), or, its leader gone, when its members started after the
 * list was created. Other groups are left alone.
 */
export async function reapLeftoverGroups(runDir: string): Promise<number> {
  const files = (await readdir(runDir).catch(() => [] as string[])).filter((f) => f.endsWith('.pgids'));
  if (!files.length) return 0;
  const all = (await Promise.all((await pids()).map(async (pid) => ({ pid, info: await processInfo(pid) })))).filter((p) => p.info);
  let killed = 0;
  for (const file of files) {
    const path = join(runDir, file);
    const [text, written] = await Promise.all([readFile(path, 'utf8').catch(() => ''), stat(path).catch(() => undefined)]);
    // Start times are in clock ticks and file times may be coarse: a second of slack either way.
    const writtenMs = (written?.mtimeMs ?? 0) + 1000;
    const createdMs = (written?.birthtimeMs || 0) - 1000;
    for (const pgid of text.split('\n').map((l) => Number(l.trim())).filter((n) => n > 1)) {
      const members = all.filter((p) => p.info!.pgrp === pgid && !p.info!.zombie);
      const leader = members.find((p) => p.pid === pgid);
      const ours = leader ? leader.info!.startMs <= writtenMs : members.every((p) => p.info!.startMs >= createdMs);
      if (!members.length || !ours) continue;
      try {
        process.kill(-pgid, 'SIGKILL');
        killed++;
      } catch {
        // the group is gone
      }
    }
    await rm(path, { force: true });
  }
  return killed;
}
