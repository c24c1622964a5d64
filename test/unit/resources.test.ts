// The Resource Monitor's sources (agent/resources.ts): the ECS task metadata endpoint's Docker stats,
// a container's cgroup files (v1 and v2), and /proc for a worker process and what it started; and
// the monitor's rates and history on a fake clock.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type Counters,
  RESOURCE_HISTORY,
  ResourceMonitor,
  cgroupCounters,
  countersFromTaskStats,
  parseBlkio,
  parseIoStat,
  parseNetDev,
  parseStat,
  procCounters,
  samplerFor,
} from '../../agent/resources.ts';
import { waitFor } from '../support/processes.ts';

const scratch = mkdtempSync(join(tmpdir(), 'xl-resources-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('the monitor', () => {
  it('turns cumulative counters into rates over the interval, and keeps a bounded history', async () => {
    let now = 1_000_000;
    const counters: Counters[] = [
      { source: 'cgroup', cpuNs: 0, memoryBytes: 100, memoryLimitBytes: 1000, network: { rxBytes: 0, txBytes: 0, scope: 'container' }, disk: { readBytes: 0, writeBytes: 0 } },
      // 10 s later: 5 s of CPU (50% of one core), 10 KB/s in, 1 KB/s out, 2 KB/s written.
      { source: 'cgroup', cpuNs: 5e9, memoryBytes: 300, memoryLimitBytes: 1000, network: { rxBytes: 100_000, txBytes: 10_000, scope: 'container' }, disk: { readBytes: 0, writeBytes: 20_000 } },
    ];
    let i = 0;
    const monitor = new ResourceMonitor(async () => counters[Math.min(i++, 1)]!, () => now);
    const first = await monitor.sample();
    expect(first).toMatchObject({ cpuPercent: 0, memoryBytes: 100, network: { rxBytesPerSecond: 0 } });
    now += 10_000;
    const second = await monitor.sample();
    expect(second).toMatchObject({
      source: 'cgroup',
      cpuPercent: 50,
      memoryBytes: 300,
      memoryLimitBytes: 1000,
      network: { rxBytes: 100_000, rxBytesPerSecond: 10_000, txBytesPerSecond: 1000, scope: 'container' },
      disk: { writeBytes: 20_000, writeBytesPerSecond: 2000, readBytesPerSecond: 0 },
    });
    expect(monitor.history.map((p) => p.cpuPercent)).toEqual([0, 50]);
    for (let k = 0; k < RESOURCE_HISTORY + 5; k++) {
      now += 1000;
      await monitor.sample();
    }
    expect(monitor.history).toHaveLength(RESOURCE_HISTORY);
    // Counters that went down (processes ended) are no negative rate.
    expect(monitor.history.every((p) => p.cpuPercent >= 0 && (p.diskBytesPerSecond ?? 0) >= 0)).toBe(true);
  });

  it('picks its source from where the agent runs', async () => {
    expect(samplerFor({})).toBeTypeOf('function');
    const proc = await samplerFor({}, process.pid)();
    expect(proc.source).toBe('proc');
    const cgroup = await samplerFor({ XL_RESOURCE_SOURCE: 'cgroup' })();
    expect(cgroup.source).toBe('cgroup');
  });
});

describe('the ECS task metadata stats', () => {
  it('sums the containers of the task: cpu, working-set memory, block I/O, and the task network once', () => {
    const stats = {
      'a1-123': {
        cpu_stats: { cpu_usage: { total_usage: 2_000_000_000 } },
        memory_stats: { usage: 300 * 2 ** 20, limit: 2 * 2 ** 30, stats: { inactive_file: 100 * 2 ** 20 } },
        networks: { eth1: { rx_bytes: 5000, tx_bytes: 700 } },
        blkio_stats: { io_service_bytes_recursive: [{ op: 'Read', value: 10 }, { op: 'Write', value: 20 }, { op: 'Total', value: 30 }] },
      },
      'a1-456': {
        cpu_stats: { cpu_usage: { total_usage: 1_000_000_000 } },
        memory_stats: { usage: 50 * 2 ** 20, limit: 2 * 2 ** 30, stats: { cache: 10 * 2 ** 20 } },
        networks: { eth1: { rx_bytes: 5000, tx_bytes: 700 } },
        blkio_stats: { io_service_bytes_recursive: null },
      },
      // A container still starting has no stats yet.
      'a1-789': null,
    };
    expect(countersFromTaskStats(stats)).toEqual({
      source: 'ecs-task-metadata',
      cpuNs: 3e9,
      memoryBytes: 240 * 2 ** 20,
      memoryLimitBytes: 2 * 2 ** 30,
      network: { rxBytes: 5000, txBytes: 700, scope: 'task' },
      disk: { readBytes: 10, writeBytes: 20 },
    });
  });

  it('reads them from the endpoint the ECS agent names in ECS_CONTAINER_METADATA_URI_V4', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(req.url === '/v4/abc/task/stats' ? JSON.stringify({ c: { cpu_stats: { cpu_usage: { total_usage: 42 } }, memory_stats: { usage: 7 } } }) : '{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const counters = await samplerFor({ ECS_CONTAINER_METADATA_URI_V4: `http://127.0.0.1:${port}/v4/abc` })();
      expect(counters).toMatchObject({ source: 'ecs-task-metadata', cpuNs: 42, memoryBytes: 7 });
    } finally {
      server.close();
    }
  });
});

describe('cgroup files', () => {
  it('reads a v2 cgroup: cpu.stat, memory.current and .max, io.stat', async () => {
    const root = join(scratch, 'v2');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'cpu.stat'), 'usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n');
    writeFileSync(join(root, 'memory.current'), '104857600\n');
    writeFileSync(join(root, 'memory.max'), '536870912\n');
    writeFileSync(join(root, 'io.stat'), '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n');
    const proc = join(scratch, 'proc-v2');
    mkdirSync(join(proc, 'self/net'), { recursive: true });
    writeFileSync(join(proc, 'self/net/dev'), 'Inter-|\n face |\n    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: 1234 5 0 0 0 0 0 0 567 3 0 0 0 0 0 0\n');
    expect(await cgroupCounters(root, proc)).toEqual({
      source: 'cgroup',
      cpuNs: 1.5e9,
      memoryBytes: 104857600,
      memoryLimitBytes: 536870912,
      network: { rxBytes: 1234, txBytes: 567, scope: 'container' },
      disk: { readBytes: 4097, writeBytes: 8194 },
    });
  });

  it("reads a v1 cgroup (this machine's hybrid layout): cpuacct, memory, blkio", async () => {
    const counters = await cgroupCounters();
    expect(counters.source).toBe('cgroup');
    expect(counters.cpuNs).toBeGreaterThan(0);
    expect(counters.memoryBytes).toBeGreaterThan(0);
    expect(parseBlkio('8:0 Read 4096\n8:0 Write 1024\n8:0 Total 5120\nTotal 5120\n')).toEqual({ readBytes: 4096, writeBytes: 1024 });
    expect(parseIoStat('')).toEqual({ readBytes: 0, writeBytes: 0 });
  });
});

describe('/proc', () => {
  it('parses a stat line whose command name holds spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, k) => String(k + 3));
    fields[1] = '77'; // ppid (field 4)
    fields[2] = '88'; // pgrp (field 5)
    fields[11] = '30'; // utime (14)
    fields[12] = '12'; // stime (15)
    fields[21] = '256'; // rss (24)
    expect(parseStat(`123 (my (odd) cmd) ${fields.join(' ')}`)).toEqual({ ppid: 77, pgrp: 88, ticks: 42, rssPages: 256 });
    expect(parseNetDev('h\nh\n  lo: 5 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0\n')).toEqual({ rxBytes: 0, txBytes: 0 });
  });

  it("counts the members of its tasks' process groups even once they left the worker's tree, and nothing else", async () => {
    // A command that went to the background in a session of its own: its parent (sh) exits, so it is
    // no descendant of ours any more; its process group is the sh's, which the worker knows.
    const script = `${JSON.stringify(process.execPath)} -e 'const b = Buffer.alloc(64 * 2 ** 20, 1); setInterval(() => b[0]++, 1); for (;;) {}' >/dev/null 2>&1 & echo $!`;
    const sh = spawn('setsid', ['sh', '-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pgid = sh.pid!;
    let out = '';
    sh.stdout!.on('data', (d) => (out += d));
    await new Promise((r) => sh.on('exit', r));
    const busy = Number(out.trim());
    try {
      const alone = await procCounters(process.pid);
      await waitFor(async () => (await procCounters(process.pid, [pgid])).memoryBytes > alone.memoryBytes + 48 * 2 ** 20, 20_000, 100);
      const before = await procCounters(process.pid, [pgid]);
      await waitFor(async () => (await procCounters(process.pid, [pgid])).cpuNs > before.cpuNs + 1e8, 20_000, 100);
      // Without its group the background command is not the agent's.
      expect((await procCounters(process.pid)).memoryBytes).toBeLessThan(before.memoryBytes - 48 * 2 ** 20);
      expect(before).toMatchObject({ source: 'proc', disk: { readBytes: expect.any(Number), writeBytes: expect.any(Number) } });
    } finally {
      process.kill(busy, 'SIGKILL');
    }
  });
});
