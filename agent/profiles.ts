// What a language-model agent of each type is allowed to do: its role prompt, its tools, its
// permission mode, its model and its default limits. The claude-code driver runs a task with its
// agent type's profile; a task's own `limits` (CONTRACT.md) can only narrow the profile's.
import { AGENT_TYPES, CAPABILITIES, type AgentType } from '../core/agent-types.ts';
import type { Task } from '../core/plan.ts';

/** Claude Code permission modes we use: writers accept edits; read-only types never get a write tool. */
export type PermissionMode = 'acceptEdits' | 'default' | 'plan';

export interface AgentLimits {
  maxTurns: number;
  maxBudgetUsd: number;
  timeoutSeconds: number;
}

export interface AgentProfile {
  agentType: AgentType;
  capabilities: readonly string[];
  /** Appended to Claude Code's own system prompt (with the task's input). */
  systemPrompt: string;
  /** `--allowedTools`: every other tool is denied (headless runs cannot ask). */
  allowedTools: readonly string[];
  permissionMode: PermissionMode;
  model: string;
  limits: AgentLimits;
}

/** The model when XL_CLAUDE_MODEL says nothing: an alias the CLI resolves to its current Sonnet. */
export const DEFAULT_MODEL = 'sonnet';

const READ = ['Read', 'Glob', 'Grep'] as const;
const WRITE = ['Read', 'Edit', 'Write', 'Glob', 'Grep'] as const;

interface Shape {
  role: string;
  tools: readonly string[];
  mode: PermissionMode;
  limits: AgentLimits;
}

const SMALL: AgentLimits = { maxTurns: 20, maxBudgetUsd: 1, timeoutSeconds: 900 };
const MEDIUM: AgentLimits = { maxTurns: 40, maxBudgetUsd: 3, timeoutSeconds: 1800 };
const LARGE: AgentLimits = { maxTurns: 80, maxBudgetUsd: 5, timeoutSeconds: 3600 };

const SHAPES: Record<AgentType, Shape> = {
  coder: {
    role: 'You are a coder agent: you write, refactor, debug and optimize code in the workspace.',
    tools: [...WRITE, 'Bash'],
    mode: 'acceptEdits',
    limits: LARGE,
  },
  tester: {
    role: 'You are a tester agent: you write and run tests and report what passes and what fails.',
    tools: [...WRITE, 'Bash'],
    mode: 'acceptEdits',
    limits: MEDIUM,
  },
  reviewer: {
    role: 'You are a reviewer agent: you review code and designs and report findings; you change nothing.',
    tools: READ,
    mode: 'default',
    limits: SMALL,
  },
  documenter: {
    role: 'You are a documenter agent: you write API documentation, guides, code comments and changelogs.',
    tools: WRITE,
    mode: 'acceptEdits',
    limits: MEDIUM,
  },
  architect: {
    role: 'You are an architect agent: you analyse the system and propose designs; you change nothing.',
    tools: READ,
    mode: 'default',
    limits: MEDIUM,
  },
  performance: {
    role: 'You are a performance agent: you find bottlenecks, run benchmarks and recommend optimizations.',
    tools: [...READ, 'Bash'],
    mode: 'default',
    limits: MEDIUM,
  },
  security: {
    role: 'You are a security agent: you scan for vulnerabilities, audit dependencies, model threats and look for leaked secrets; you change nothing.',
    tools: [...READ, 'Bash(npm audit:*)', 'Bash(git log:*)'],
    mode: 'default',
    limits: MEDIUM,
  },
  integration: {
    role: 'You are an integration agent: you integrate APIs, write contract tests, migrate data and wire CI.',
    tools: [...WRITE, 'Bash'],
    mode: 'acceptEdits',
    limits: MEDIUM,
  },
  monitor: {
    role: 'You are a monitor agent: you check health, collect metrics and report anomalies; you change nothing.',
    tools: READ,
    mode: 'default',
    limits: SMALL,
  },
  logger: {
    role: 'You are a logger agent: you collect, analyse and summarize logs and audit trails; you change nothing.',
    tools: READ,
    mode: 'default',
    limits: SMALL,
  },
  notification: {
    role: 'You are a notification agent: you compose notifications and escalations as your output; you send nothing yourself.',
    tools: READ,
    mode: 'default',
    limits: SMALL,
  },
};

const OUTPUT_RULE =
  'You run unattended: nobody answers questions. When you are done, end your final message with one line holding a JSON object of your results.';

/** The profile of an agent type. The model comes from XL_CLAUDE_MODEL (default: DEFAULT_MODEL). */
export function profileFor(agentType: AgentType, env: NodeJS.ProcessEnv = process.env): AgentProfile {
  const shape = SHAPES[agentType];
  const capabilities = CAPABILITIES[agentType];
  return {
    agentType,
    capabilities,
    systemPrompt: `${shape.role} Your capabilities: ${capabilities.join(', ')}. ${OUTPUT_RULE}`,
    allowedTools: shape.tools,
    permissionMode: shape.mode,
    model: env.XL_CLAUDE_MODEL || DEFAULT_MODEL,
    limits: { ...shape.limits },
  };
}

/** Every agent type's profile. */
export function allProfiles(env: NodeJS.ProcessEnv = process.env): Record<AgentType, AgentProfile> {
  return Object.fromEntries(AGENT_TYPES.map((t) => [t, profileFor(t, env)])) as Record<AgentType, AgentProfile>;
}

/** The limits a task runs under: the profile's, narrowed (never widened) by the task's own. */
export function effectiveLimits(
  profile: Pick<AgentProfile, 'limits'>,
  task: Pick<Task, 'limits' | 'timeoutSeconds'>,
): AgentLimits {
  const min = (a: number, b: number | undefined) => (b === undefined ? a : Math.min(a, b));
  return {
    maxTurns: min(profile.limits.maxTurns, task.limits?.maxTurns),
    maxBudgetUsd: min(profile.limits.maxBudgetUsd, task.limits?.maxBudgetUsd),
    timeoutSeconds: min(profile.limits.timeoutSeconds, task.timeoutSeconds),
  };
}
