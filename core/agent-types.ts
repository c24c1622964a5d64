import { createHash } from 'node:crypto';

// The agent types of the design document and the capabilities each one offers.
// The first five lists are the design's own; the others are ours to define (CONTRACT.md).

export const AGENT_TYPES = [
  'coder',
  'tester',
  'reviewer',
  'documenter',
  'architect',
  'performance',
  'security',
  'integration',
  'monitor',
  'logger',
  'notification',
] as const;
export type AgentType = (typeof AGENT_TYPES)[number];

export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const CAPABILITIES: Record<AgentType, readonly string[]> = {
  coder: ['code-generation', 'refactoring', 'debugging', 'optimization'],
  tester: ['unit-testing', 'integration-testing', 'performance-testing', 'security-testing'],
  reviewer: ['code-review', 'architecture-review', 'security-review', 'performance-review'],
  documenter: ['api-documentation', 'user-guides', 'code-comments', 'changelog'],
  architect: ['system-design', 'pattern-recognition', 'technology-selection', 'scalability-planning'],
  performance: [
    'performance-analysis',
    'bottleneck-identification',
    'optimization-recommendations',
    'benchmarking',
  ],
  security: ['vulnerability-scanning', 'dependency-audit', 'threat-modeling', 'secret-detection'],
  integration: ['api-integration', 'contract-testing', 'data-migration', 'ci-integration'],
  monitor: ['health-checking', 'metrics-collection', 'anomaly-detection', 'alerting'],
  logger: ['log-collection', 'log-analysis', 'audit-trail', 'log-summarization'],
  notification: ['email', 'chat', 'webhook', 'escalation'],
};

/** Pool bounds when XL_POOL (or PUT /pool) says nothing: the core trio stays warm. */
export function defaultPoolBounds(type: AgentType): { min: number; max: number } {
  return type === 'coder' || type === 'tester' || type === 'reviewer' ? { min: 1, max: 4 } : { min: 0, max: 4 };
}

/**
 * The queue name of one agent's direct queue (affinity): under the stack's queue prefix, so the
 * stack's queue grants name it, and within SQS's 80 characters (letters, digits, - and _).
 */
export function directQueueName(stackPrefix: string, type: AgentType, agentId: string): string {
  const id = agentId.replace(/[^A-Za-z0-9_-]/g, '-');
  const name = `${stackPrefix}${type}-direct-${id}`;
  if (name.length <= 80) return name;
  // Too long: the id's digest stands for it (a cut would drop the part that tells agents apart).
  return `${stackPrefix}${type}-direct-${createHash('sha256').update(agentId).digest('hex')}`.slice(0, 80);
}

/** Queue key for an agent type and priority, e.g. `coder-high`; also the queue's logical name. */
export function queueKey(type: AgentType, priority: Priority): string {
  return `${type}-${priority}`;
}
