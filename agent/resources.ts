// The design's Resource Monitor: what an agent uses (cpu, memory, network, disk), sampled at each
// heartbeat and reported in its record's health. Three sources, by where the agent runs:
//   - on ECS/Fargate, the task metadata endpoint's Docker stats for the whole task
//     (`${ECS_CONTAINER_METADATA_URI_V4}/task/stats`, no IAM permission involved);
//   - in a container (XL_RESOURCE_SOURCE=cgroup, set by the container runtimes), its cgroup's files;
//   - as a local worker process, /proc: the worker and every process it started.
// Each source yields cumulative counters; the monitor turns two samples into rates.
import { readdir, readFile } from 'node:fs/promises';
import { totalmem } from 'node:os';
import type { ResourcePoint, ResourceUsage } from '../core/records.ts';

/** Samples kept as the agent's short history: one per heartbeat (about 7 minutes at the default 20 s interval), about 1 KB, written with each heartbeat. */
export const RESOURCE_HISTORY = 20;

/** Cumulative counters at one instant. */
export interface Counters {
  source: ResourceUsage['source'];
  /** CPU time used so far, in nanoseconds. */
  cpuNs: number;
  memoryBytes: number;
  memoryLimitBytes?: number;
  network?: { rxBytes: number; txBytes: number; scope: 'task' | 'container' | 'host' };
  disk?: { readBytes: number; writeBytes: number };
}

export type Sampler = () => Promise<Counters>;

export class ResourceMonitor {
  private last: { at: number; counters: Counters } | undefined;
  private readonly points: ResourcePoint[] = [];
  private latest: ResourceUsage | undefined;

  constructor(
    private readonly sampler: Sampler,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes a sample; throws when the source cannot be read (the last sample stays current). */
  async sample(): Promise<ResourceUsage | undefined> {
    const at = this.now();
    const counters = await this.sampler();
    const prev = this.last;
    this.last = { at, counters };
    const seconds = prev ? (at - prev.at) / 1000 : 0;
    const rate = (now: number, before: number | undefined) => (prev && seconds > 0 && before !== undefined ? Math.max(0, (now - before) / seconds) : 0);
    const usage: ResourceUsage = {
      at: new Date(at).toISOString(),
      source: counters.source,
      cpuPercent: round(prev && seconds > 0 ? (Math.max(0, counters.cpuNs - prev.counters.cpuNs) / 1e9 / seconds) * 100 : 0),
      memoryBytes: counters.memoryBytes,
      ...(counters.memoryLimitBytes ? { memoryLimitBytes: counters.memoryLimitBytes } : {}),
      ...(counters.network
        ? {
            network: {
              ...counters.network,
              rxBytesPerSecond: Math.round(rate(counters.network.rxBytes, prev?.counters.network?.rxBytes)),
              txBytesPerSecond: Math.round(rate(counters.network.txBytes, prev?.counters.network?.txBytes)),
            },
          }
        : {}),
      ...(counters.disk
        ? {
            disk: {
              ...counters.disk,
              readBytesPerSecond: Math.round(rate(counters.disk.readBytes, prev?.counters.disk?.readBytes)),
              writeBytesPerSecond: Math.round(rate(counters.disk.writeBytes, prev?.counters.disk?.writeBytes)),
            },
          }
        : {}),
    };
    this.latest = usage;
    this.points.push({
      at: usage.at,
      cpuPercent: usage.cpuPercent,
      memoryBytes: usage.memoryBytes,
      ...(usage.network ? { rxBytesPerSecond: usage.network.rxBytesPerSecond, txBytesPerSecond: usage.network.txBytesPerSecond } : {}),
      ...(usage.disk ? { diskBytesPerSecond: usage.disk.readBytesPerSecond + usage.disk.writeBytesPerSecond } : {}),
    });
    if (this.points.length > RESOURCE_HISTORY) this.points.shift();
    return usage;
  }

  get current(): ResourceUsage | undefined {
    return this.latest;
  }

  get history(): ResourcePoint[] {
    return [...this.points];
  }
}

/** The sampler for where this agent runs (see the top of this file). */
export function samplerFor(env: NodeJS.ProcessEnv, pid: number = process.pid, extraGroups: () => Iterable<number> = () => []): Sampler {
  const metadata = env.ECS_CONTAINER_METADATA_URI_V4;
  if (metadata) return () => ecsTaskStats(metadata);
  if (env.XL_RESOURCE_SOURCE === 'cgroup') return () => cgroupCounters();
  return () => procCounters(pid, extraGroups());
}

// ---- ECS task metadata ----------------------------------------------------------------------------

/** Docker stats as the task metadata endpoint serves them, one entry per container (null while starting). */
export type TaskStats = Record<string, DockerStats | null>;

interface DockerStats {
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: { usage?: number; limit?: number; stats?: { cache?: number; inactive_file?: number } };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
  blkio_stats?: { io_service_bytes_recursive?: { op: string; value: number }[] | null };
}

async function ecsTaskStats(base: string): Promise<Counters> {
  const res = await fetch(`${base}/task/stats`, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`task metadata stats answered ${res.status}`);
  return countersFromTaskStats((await res.json()) as TaskStats);
}

/**
 * Sums the task's containers. Memory is the working set (usage less the page cache, as `docker
 * stats` shows it); the network is the task's (awsvpc gives every task its own interface, and every
 * container of a task reports the same one, so it is counted once).
 */
export function countersFromTaskStats(stats: TaskStats): Counters {
  let cpuNs = 0;
  let memoryBytes = 0;
  let limit = 0;
  let readBytes = 0;
  let writeBytes = 0;
  let network: Counters['network'];
  for (const s of Object.values(stats)) {
    if (!s) continue;
    cpuNs += s.cpu_stats?.cpu_usage?.total_usage ?? 0;
    const m = s.memory_stats;
    memoryBytes += Math.max(0, (m?.usage ?? 0) - (m?.stats?.inactive_file ?? m?.stats?.cache ?? 0));
    limit = Math.max(limit, m?.limit ?? 0);
    for (const io of s.blkio_stats?.io_service_bytes_recursive ?? []) {
      if (/^read$/i.test(io.op)) readBytes += io.value;
      if (/^write$/i.test(io.op)) writeBytes += io.value;
    }
    if (!network && s.networks) {
      const nets = Object.values(s.networks);
      network = { rxBytes: sum(nets.map((n) => n.rx_bytes ?? 0)), txBytes: sum(nets.map((n) => n.tx_bytes ?? 0)), scope: 'task' };
    }
  }
  return { source: 'ecs-task-metadata', cpuNs, memoryBytes, ...(limit ? { memoryLimitBytes: limit } : {}), ...(network ? { network } : {}), disk: { readBytes, writeBytes } };
}

// ---- cgroup (a container) ---------------------------------------------------------------------------

/** The cgroup the agent's container gives it: v2 (unified) or v1 (cpuacct, memory, blkio). */
export async function cgroupCounters(root = '/sys/fs/cgroup', proc = '/proc'): Promise<Counters> {
  const read = (path: string) => readFile(`${root}/${path}`, 'utf8').catch(() => undefined);
  const network = await netDev(`${proc}/self/net/dev`, 'container');
  const v2cpu = await read('cpu.stat');
  if (v2cpu !== undefined) {
    const max = (await read('memory.max'))?.trim();
    const io = parseIoStat((await read('io.stat')) ?? '');
    return {
      source: 'cgroup',
      cpuNs: Number(/usage_usec (\d+)/.exec(v2cpu)?.[1] ?? 0) * 1000,
      memoryBytes: Number((await read('memory.current'))?.trim() ?? 0),
      ...(max && max !== 'max' ? { memoryLimitBytes: Number(max) } : { memoryLimitBytes: totalmem() }),
      ...(network ? { network } : {}),
      disk: io,
    };
  }
  const limit = Number((await read('memory/memory.limit_in_bytes'))?.trim() ?? 0);
  return {
    source: 'cgroup',
    cpuNs: Number((await read('cpuacct/cpuacct.usage'))?.trim() ?? 0),
    memoryBytes: Number((await read('memory/memory.usage_in_bytes'))?.trim() ?? 0),
    // v1 says "no limit" with a huge number.
    memoryLimitBytes: limit > 0 && limit < totalmem() ? limit : totalmem(),
    ...(network ? { network } : {}),
    disk: parseBlkio((await read('blkio/blkio.throttle.io_service_bytes')) ?? ''),
  };
}

/** cgroup v2 io.stat: `<maj:min> rbytes=N wbytes=N ...` per device. */
export function parseIoStat(text: string): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const m of text.matchAll(/rbytes=(\d+)/g)) readBytes += Number(m[1]);
  for (const m of text.matchAll(/wbytes=(\d+)/g)) writeBytes += Number(m[1]);
  return { readBytes, writeBytes };
}

/** cgroup v1 blkio.throttle.io_service_bytes: `<maj:min> Read N` lines (and a `Total`). */
export function parseBlkio(text: string): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const m of text.matchAll(/^\S+ (Read|Write) (\d+)$/gm)) {
    if (m[1] === 'Read') readBytes += Number(m[2]);
    else writeBytes += Number(m[2]);
  }
  return { readBytes, writeBytes };
}

// ---- /proc (a worker process) ------------------------------------------------------------------------

/** Clock ticks per second of /proc's times (USER_HZ: 100 on every Linux that Node supports). */
const USER_HZ = 100;
const PAGE_SIZE = 4096;

/**
 * The worker and what it started: its descendants, and the members of the process groups its
 * tasks run in (`groups`: a command in a group of its own may have been reparented). CPU and block
 * I/O of processes that ended since the last sample are not counted (their counters went with them).
 */
export async function procCounters(pid: number, groups: Iterable<number> = [], proc = '/proc'): Promise<Counters> {
  const entries = (await readdir(proc)).filter((name) => /^\d+$/.test(name));
  const stats = new Map<number, { ppid: number; pgrp: number; ticks: number; rssPages: number }>();
  await Promise.all(
    entries.map(async (name) => {
      const text = await readFile(`${proc}/${name}/stat`, 'utf8').catch(() => undefined);
      const parsed = text && parseStat(text);
      if (parsed) stats.set(Number(name), parsed);
    }),
  );
  const wanted = new Set<number>([pid]);
  const groupSet = new Set(groups);
  for (const [p, s] of stats) if (groupSet.has(s.pgrp)) wanted.add(p);
  // Descendants: keep adding children of what is wanted until nothing changes.
  for (let grew = true; grew; ) {
    grew = false;
    for (const [p, s] of stats) {
      if (!wanted.has(p) && wanted.has(s.ppid)) {
        wanted.add(p);
        grew = true;
      }
    }
  }
  let ticks = 0;
  let rssPages = 0;
  let readBytes = 0;
  let writeBytes = 0;
  await Promise.all(
    [...wanted].map(async (p) => {
      const s = stats.get(p);
      if (!s) return;
      ticks += s.ticks;
      rssPages += s.rssPages;
      const io = await readFile(`${proc}/${p}/io`, 'utf8').catch(() => undefined);
      if (io) {
        readBytes += Number(/^read_bytes: (\d+)$/m.exec(io)?.[1] ?? 0);
        writeBytes += Number(/^write_bytes: (\d+)$/m.exec(io)?.[1] ?? 0);
      }
    }),
  );
  const network = await netDev(`${proc}/${pid}/net/dev`, 'host');
  return {
    source: 'proc',
    cpuNs: (ticks / USER_HZ) * 1e9,
    memoryBytes: rssPages * PAGE_SIZE,
    memoryLimitBytes: totalmem(),
    ...(network ? { network } : {}),
    disk: { readBytes, writeBytes },
  };
}

/** /proc/<pid>/stat: the fields after the command's closing parenthesis (the name may hold spaces). */
export function parseStat(text: string): { ppid: number; pgrp: number; ticks: number; rssPages: number } | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): ppid 4, pgrp 5, utime 14, stime 15, rss 24.
  return { ppid: Number(f[1]), pgrp: Number(f[2]), ticks: Number(f[11]) + Number(f[12]), rssPages: Number(f[21]) };
}

/** /proc/.../net/dev: received and sent bytes over every interface but loopback. */
async function netDev(file: string, scope: 'container' | 'host'): Promise<Counters['network'] | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  return { ...parseNetDev(text), scope };
}

export function parseNetDev(text: string): { rxBytes: number; txBytes: number } {
  let rxBytes = 0;
  let txBytes = 0;
  for (const line of text.split('\n').slice(2)) {
    const [name = '', rest] = line.split(':');
    if (!rest || name.trim() === 'lo') continue;
    const f = rest.trim().split(/\s+/).map(Number);
    rxBytes += f[0] ?? 0;
    txBytes += f[8] ?? 0;
  }
  return { rxBytes, txBytes };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const round = (x: number) => Math.round(x * 10) / 10;
