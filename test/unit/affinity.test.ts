// Affinity (core/affinity.ts): which agent Gate prefers for a key, and the agent's recent keys.
import { describe, expect, it } from 'vitest';
import { preferredAgent, RECENT_KEYS, withRecentKey } from '../../core/affinity.ts';
import { directQueueName } from '../../core/agent-types.ts';
import { parsePlan } from '../../core/plan.ts';
import type { AgentRecord } from '../../core/records.ts';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const FRESH_MS = 60_000;

function agent(agentId: string, fields: Partial<AgentRecord> = {}): AgentRecord {
  return {
    agentId,
    agentType: 'coder',
    status: 'idle',
    startedAt: '2026-12-01T11:00:00Z',
    lastHeartbeatAt: new Date(NOW - 5000).toISOString(),
    runtime: { kind: 'process', pid: 1 },
    health: { overall: 'healthy', metrics: { cpu: 0, memory: 0, responseTime: 0, errorRate: 0, taskSuccessRate: 1 }, lastCheck: '' },
    directQueueUrl: `http://q/xl_coder-direct-${agentId}`,
    recentKeys: ['repo-a'],
    ...fields,
  };
}

describe('preferredAgent', () => {
  it('prefers an idle agent that ran the key over a busy one that did', () => {
    const chosen = preferredAgent([agent('busy', { status: 'busy', running: 1 }), agent('idle')], 'repo-a', NOW, FRESH_MS);
    expect(chosen?.agentId).toBe('idle');
  });

  it('takes the least loaded of busy agents that ran the key', () => {
    const chosen = preferredAgent([agent('three', { status: 'busy', running: 3 }), agent('one', { status: 'busy', running: 1 })], 'repo-a', NOW, FRESH_MS);
    expect(chosen?.agentId).toBe('one');
  });

  it('prefers no agent that did not run the key, is silent past the span, draining, or has no direct queue', () => {
    const agents = [
      agent('other', { recentKeys: ['repo-b'] }),
      agent('silent', { lastHeartbeatAt: new Date(NOW - FRESH_MS - 1).toISOString() }),
      agent('draining', { status: 'draining' }),
      agent('no-queue', { directQueueUrl: undefined }),
    ];
    expect(preferredAgent(agents, 'repo-a', NOW, FRESH_MS)).toBeUndefined();
  });
});

describe('withRecentKey', () => {
  it('puts the key last, once, and keeps the last RECENT_KEYS keys', () => {
    expect(withRecentKey(['a', 'b'], 'a')).toEqual(['b', 'a']);
    const many = Array.from({ length: RECENT_KEYS }, (_, i) => `k${i}`);
    expect(withRecentKey(many, 'new')).toEqual([...many.slice(1), 'new']);
  });

  it('asks for no write when the key is the latest already', () => {
    expect(withRecentKey(['a', 'b'], 'b')).toBeUndefined();
  });
});

describe('directQueueName', () => {
  it('names the queue under the stack prefix, within SQS\'s 80 characters, apart for agents whose ids share a long start', () => {
    expect(directQueueName('xl_', 'coder', 'coder-1a2b')).toBe('xl_coder-direct-coder-1a2b');
    const long = 'a-very-long-stack-name-for-tests_';
    const a = directQueueName(long, 'notification', `${'f'.repeat(40)}1`);
    const b = directQueueName(long, 'notification', `${'f'.repeat(40)}2`);
    expect(a.length).toBeLessThanOrEqual(80);
    expect(a).toMatch(/^a-very-long-stack-name-for-tests_notification-direct-[0-9a-f]+$/);
    expect(a).not.toBe(b);
  });
});

describe('Task.affinity', () => {
  it('takes a key of 1 to 256 characters and refuses an empty one, naming the field', () => {
    expect(() => parsePlan({ pattern: 'sequential', tasks: [{ id: 'a', agentType: 'coder', command: 'true', affinity: 'repo-a' }] })).not.toThrow();
    expect(() => parsePlan({ pattern: 'sequential', tasks: [{ id: 'a', agentType: 'coder', command: 'true', affinity: '' }] })).toThrow(/affinity/);
  });
});
