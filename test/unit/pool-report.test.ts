// The resource report's arithmetic (core/pool-report.ts) on records made up for it, at a fixed time.
import { describe, expect, it } from 'vitest';
import { ASSUMED_TASK_SECONDS, agentsToDrain, buildReport, coveredMs, parseTargetMinutes, percentile, type ReportTask } from '#core/pool-report.ts';
import type { AgentRecord } from '#core/records.ts';
import { poolReportLines } from '../../cli/render.ts';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const ago = (minutes: number) => NOW - minutes * 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

const agent = (agentId: string, agentType: AgentRecord['agentType'], status: AgentRecord['status'], startedMinutesAgo: number, lastHeartbeatMinutesAgo = 0): AgentRecord => ({
  agentId,
  agentType,
  status,
  startedAt: iso(ago(startedMinutesAgo)),
  lastHeartbeatAt: iso(ago(lastHeartbeatMinutesAgo)),
  runtime: { kind: 'process', pid: 1 },
  health: { overall: 'healthy', metrics: { cpu: 0, memory: 0, responseTime: 0, errorRate: 0, taskSuccessRate: 1 }, lastCheck: iso(NOW) },
});

/** A task dispatched `dispatched` minutes ago, claimed `waitMinutes` later, run for `runMinutes` (running when undefined). */
const task = (agentType: ReportTask['agentType'], agentId: string, dispatched: number, waitMinutes: number, runMinutes?: number): ReportTask => ({
  agentType,
  agentId,
  status: runMinutes === undefined ? 'running' : 'completed',
  dispatchedAt: ago(dispatched),
  startedAt: iso(ago(dispatched - waitMinutes)),
  ...(runMinutes !== undefined ? { finishedAt: iso(ago(dispatched - waitMinutes - runMinutes)), durationMs: runMinutes * 60_000 } : {}),
});

const type = (agentType: ReportTask['agentType'], max: number, visible: number, inFlight: number, slots = 1) => ({ agentType, bounds: { min: 0, max }, slots, backlog: { visible, inFlight } });

describe('report arithmetic', () => {
  it('takes the nearest-rank percentile', () => {
    expect(percentile([], 95)).toBe(0);
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 95)).toBe(95);
  });

  it('measures the union of intervals within a window', () => {
    expect(coveredMs([[0, 10], [5, 15], [20, 30]], 0, 100)).toBe(25);
    expect(coveredMs([[0, 10], [5, 15], [20, 30]], 8, 25)).toBe(12);
    expect(coveredMs([], 0, 100)).toBe(0);
  });

  it('needs enough agents to finish the work within the target, and one per slot for tasks longer than it', () => {
    expect(agentsToDrain(0, 60, 1, 10)).toBe(0);
    expect(agentsToDrain(40, 60, 1, 10)).toBe(4); // 10 one-minute tasks an agent in 10 min
    expect(agentsToDrain(40, 60, 2, 10)).toBe(2);
    expect(agentsToDrain(40, 1800, 1, 10)).toBe(40); // 30-minute tasks: all at once, still late
  });

  it('reads ?targetMinutes=, and refuses what is not a positive number of minutes up to a day', () => {
    expect(parseTargetMinutes(undefined)).toBe(10);
    expect(parseTargetMinutes('2.5')).toBe(2.5);
    for (const bad of ['0', '-1', 'soon', '1441']) expect(parseTargetMinutes(bad)).toBeUndefined();
  });
});

describe('the pool report', () => {
  const agents = [
    agent('tester-1', 'tester', 'busy', 50),
    agent('tester-2', 'tester', 'busy', 50),
    agent('coder-1', 'coder', 'idle', 90),
    agent('coder-gone', 'coder', 'terminated', 40, 10), // up from 40 to 10 minutes ago
  ];
  const tasks: ReportTask[] = [
    // testers: waits of 1, 2 and 3 minutes, runs of 4 minutes each (mean 4)
    task('tester', 'tester-1', 30, 1, 4),
    task('tester', 'tester-2', 30, 2, 4),
    task('tester', 'tester-1', 20, 3),
    // one still queued for 6 minutes: its wait so far counts
    { agentType: 'tester', status: 'queued', dispatchedAt: ago(6) },
    // a claim before the window does not count
    task('tester', 'tester-2', 120, 5, 2),
    task('tester', 'tester-2', 10, 0),
    // coder-1 ran 10 minutes in the hour; coder-gone 5 of its 30
    task('coder', 'coder-1', 45, 0, 10),
    task('coder', 'coder-gone', 30, 0, 5),
  ];
  const report = buildReport({ now: NOW, targetMinutes: 10, types: [type('tester', 2, 8, 2), type('coder', 4, 0, 0)], agents, tasks });
  const tester = report.types.find((t) => t.agentType === 'tester')!;
  const coder = report.types.find((t) => t.agentType === 'coder')!;

  it('gives the queue wait p50 and p95 over the last hour, the still-waiting tasks included', () => {
    // Waits in the window: 1, 2, 3, 0 and 6 (queued) minutes.
    expect(tester.queueWait).toEqual({ samples: 5, p50Seconds: 120, p95Seconds: 360 });
  });

  it('gives saturation as busy slots over slots', () => {
    expect(tester).toMatchObject({ busySlots: 2, slots: 2, saturation: 1, waiting: 8, running: 2 });
    expect(coder).toMatchObject({ busySlots: 0, slots: 1, saturation: 0 });
  });

  it('counts idle agent-minutes in the window: up and running nothing, ended agents until their last heartbeat', () => {
    // coder-1: 60 up - 10 busy = 50; coder-gone: 30 up - 5 busy = 25.
    expect(coder.idleAgentMinutes).toBe(75);
    // tester-1: 50 up - (4 + 17 running) = 29; tester-2: 50 up - (4 + 10 running) = 36.
    expect(tester.idleAgentMinutes).toBe(65);
  });

  it('predicts the agents that drain the backlog within the target from the observed run times', () => {
    // 10 tasks at the observed 4 minutes (the tasks finished in the window): 2.5 each in 10 min, 4 agents.
    expect(tester).toMatchObject({ taskSeconds: 240, durationObserved: true, agentsNeeded: 4 });
    const none = buildReport({ now: NOW, targetMinutes: 10, types: [type('reviewer', 4, 3, 0)], agents: [], tasks: [] }).types[0]!;
    expect(none).toMatchObject({ taskSeconds: ASSUMED_TASK_SECONDS, durationObserved: false, agentsNeeded: 2, saturation: 1 });
  });

  it('names the saturated type in one sentence, and what would drain it', () => {
    expect(report.bottleneck).toBe(
      'tester is the bottleneck: all 2 slots of its 2 agents (its max) are busy with 8 tasks waiting (p95 wait 6 min); 4 agents would drain them within 10 min: raise its max above 2.',
    );
  });

  it('says it of a type of one agent too, and names agents still starting', () => {
    const one = buildReport({ now: NOW, targetMinutes: 10, types: [type('tester', 1, 3, 1)], agents: [agent('tester-1', 'tester', 'busy', 50)], tasks: [] });
    expect(one.bottleneck).toBe('tester is the bottleneck: the one slot of its one agent (its max) is busy with 3 tasks waiting (p95 wait 0 s); 2 agents would drain them within 10 min: raise its max above 1.');
    const starting = buildReport({ now: NOW, targetMinutes: 10, types: [type('coder', 4, 5, 0)], agents: [agent('coder-1', 'coder', 'starting', 1)], tasks: [] });
    expect(starting.bottleneck).toBe('coder is the bottleneck: 5 tasks waiting (p95 wait 0 s) while 1 agent starts; 3 agents would drain them within 10 min.');
  });

  it('says there is none when nothing waits, naming the type that idled the most', () => {
    const quiet = buildReport({ now: NOW, targetMinutes: 10, types: [type('tester', 2, 0, 0), type('coder', 4, 0, 0)], agents, tasks });
    expect(quiet.bottleneck).toBe('No bottleneck: no task is waiting; coder agents idled the most (75 agent-minutes in the last hour).');
  });

  it('prints a row per type with agents or work, then the bottleneck (xl pool --report)', () => {
    const lines = poolReportLines(report);
    expect(lines[0]).toMatch(/^type\s+agents\s+waiting\s+running\s+wait p50\/p95\s+saturation\s+idle agent-min\s+needed \(10 min\)\s+max$/);
    expect(lines[1]).toMatch(/^tester\s+2\s+8\s+2\s+120 \/ 360 s\s+100%\s+65\s+4\s+2$/);
    expect(lines[2]).toMatch(/^coder\s+1\s+0\s+0\s+0 \/ 0 s\s+0%\s+75\s+0\s+4$/);
    expect(lines.at(-1)).toBe(report.bottleneck);
  });
});
