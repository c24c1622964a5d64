// Agent health as the design grades it: overall and issues, from the agent's own metrics and the
// capability check it ran at start.
import { describe, expect, it } from 'vitest';
import { checkCapabilities } from '../../agent/capabilities.ts';
import { pinnedClaudeBin } from '../../agent/drivers/claude-code.ts';
import { assessHealth } from '../../core/health.ts';
import type { HealthMetrics } from '../../core/records.ts';

const metrics = (over: Partial<HealthMetrics> = {}): HealthMetrics => ({ cpu: 10, memory: 20, responseTime: 500, errorRate: 0, taskSuccessRate: 1, ...over });

describe('assessHealth', () => {
  it('is healthy with nothing to say', () => {
    expect(assessHealth(metrics(), 10)).toEqual({ overall: 'healthy', issues: [] });
  });

  it('a high error rate only degrades (most failures are the tasks\' own), and only after enough runs', () => {
    expect(assessHealth(metrics({ errorRate: 1, taskSuccessRate: 0 }), 3).overall).toBe('healthy');
    expect(assessHealth(metrics({ errorRate: 1, taskSuccessRate: 0 }), 10)).toEqual({
      overall: 'degraded',
      issues: [{ check: 'performance', severity: 'warning', message: '100% of the last 10 tasks failed' }],
    });
  });

  it('memory: degraded from 80%, unhealthy from 95%', () => {
    expect(assessHealth(metrics({ memory: 85 }), 0)).toEqual({ overall: 'degraded', issues: [{ check: 'resource', severity: 'warning', message: 'memory at 85%' }] });
    expect(assessHealth(metrics({ memory: 97 }), 0).overall).toBe('unhealthy');
  });

  it('carries the capability issues found at start; a critical one makes the agent unhealthy', () => {
    const warning = { check: 'capability' as const, severity: 'warning' as const, message: 'claude-code: no model access' };
    expect(assessHealth(metrics(), 0, [warning])).toEqual({ overall: 'degraded', issues: [warning] });
    expect(assessHealth(metrics(), 0, [{ ...warning, severity: 'critical' }]).overall).toBe('unhealthy');
  });
});

describe('capability check', () => {
  it('finds nothing missing with the pinned Claude Code CLI, git, a shell and model access', async () => {
    expect(await checkCapabilities({ claudeBin: pinnedClaudeBin()!, modelAccess: true })).toEqual([]);
  });

  it('says what Claude Code tasks will lack: a CLI that does not run, no model access', async () => {
    const issues = await checkCapabilities({ claudeBin: '/nonexistent/claude', modelAccess: false });
    expect(issues).toEqual([
      { check: 'capability', severity: 'warning', message: 'claude-code: /nonexistent/claude cannot run (not found); tasks with instructions fail' },
      { check: 'capability', severity: 'warning', message: expect.stringMatching(/^claude-code: no model access/) },
    ]);
  });
});
