// An agent's health metrics (the design's HealthStatus.metrics): over its last task runs, and its
// process's CPU and memory.
import { totalmem } from 'node:os';
import type { HealthMetrics } from '../core/records.ts';

/** Task runs whose outcomes feed the health metrics. */
const METRICS_WINDOW = 50;

/** Health metrics over the last task runs, and the process's CPU and memory. */
export class Metrics {
  completed = 0;
  failed = 0;
  private readonly window: { ok: boolean; ms: number }[] = [];
  private lastCpu = process.cpuUsage();
  private lastAt = process.hrtime.bigint();

  get count(): number {
    return this.window.length;
  }

  record(ok: boolean, ms: number): void {
    if (ok) this.completed++;
    else this.failed++;
    this.window.push({ ok, ms });
    if (this.window.length > METRICS_WINDOW) this.window.shift();
  }

  snapshot(): HealthMetrics {
    const cpu = process.cpuUsage(this.lastCpu);
    const now = process.hrtime.bigint();
    const wallUs = Number(now - this.lastAt) / 1000;
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
    const n = this.window.length;
    const ok = this.window.filter((w) => w.ok).length;
    return {
      cpu: round(wallUs > 0 ? ((cpu.user + cpu.system) / wallUs) * 100 : 0),
      memory: round((process.memoryUsage.rss() / totalmem()) * 100),
      responseTime: n ? Math.round(this.window.reduce((s, w) => s + w.ms, 0) / n) : 0,
      errorRate: n ? round((n - ok) / n, 3) : 0,
      taskSuccessRate: n ? round(ok / n, 3) : 1,
    };
  }
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
