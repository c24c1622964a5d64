// Result caching (the design's Caching), opt-in per task with `cache: { ttlSeconds, key? }`: a task
// whose definition, input and resolved repository commit match a run that completed within the TTL
// completes at once with that run's output and artifacts, marked `cachedFrom`, with no agent run
// and no cost.
//
// Where the key is known at submit (no repository, or a repository pinned to a full commit id, and
// not a later pipeline stage, whose input is the earlier stages' outputs), the task record carries
// it and Gate looks it up before dispatching: a hit needs no agent at all. Otherwise the agent that
// claims the task computes it once it has the input and the clone's commit, and looks it up before
// its driver runs. Entries are written by the agent whose run completed the task.
import { createHash } from 'node:crypto';
import { stringify } from 'safe-stable-stringify';
import type { TaskCache } from './plan.ts';
import type { Artifact, Stored } from './records.ts';

export type { TaskCache } from './plan.ts';

/**
 * The parts of a definition that decide what a run does. Its id, priority, timeout, failure
 * strategy and recovery decide how the layer treats the run, not its result, so a task renamed or
 * reprioritised still finds its result; `cache` itself is left out so that changing the TTL does not
 * change the key.
 */
const NOT_PART_OF_THE_KEY = new Set(['id', 'priority', 'timeoutSeconds', 'failureStrategy', 'recovery', 'cache']);

export interface CacheKeyParts {
  definition: Record<string, unknown> & { agentType: string; cache?: TaskCache };
  /** What the task's run reads as input: the plan's input, or a pipeline stage's `data`. */
  input: unknown;
  /** The commit the task's repository resolved to (none without a repository). */
  commit?: string;
}

/** A hex SHA-256 of the canonical JSON of what decides a run's result. */
export function cacheKey({ definition, input, commit }: CacheKeyParts): string {
  const what = definition.cache?.key !== undefined
    ? { agentType: definition.agentType, key: definition.cache.key }
    : Object.fromEntries(Object.entries(definition).filter(([k]) => !NOT_PART_OF_THE_KEY.has(k)));
  return createHash('sha256').update(stringify({ v: 1, what, input, commit: commit ?? null })!).digest('hex');
}

/** A full commit id (SHA-1 or SHA-256), which names one commit for good; a branch, a tag or an abbreviation may move. */
export function isFullCommitId(ref: string | undefined): ref is string {
  return ref !== undefined && /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i.test(ref);
}

/** The key when it is known before an agent resolves anything (core/executions.ts records it). */
export function submitTimeCacheKey(definition: CacheKeyParts['definition'] & { workspace?: { ref?: string } }, input: unknown, stage: number, pattern: string): string | undefined {
  if (!definition.cache) return undefined;
  if (pattern === 'pipeline' && stage > 0) return undefined;
  if (definition.workspace && !isFullCommitId(definition.workspace.ref)) return undefined;
  return cacheKey({ definition, input, commit: definition.workspace?.ref?.toLowerCase() });
}

export interface CachedResult {
  key: string;
  executionId: string;
  taskId: string;
  output?: Stored<Record<string, unknown>>;
  artifacts?: Artifact[];
  completedAt: string;
  /** Epoch seconds (DynamoDB's TTL attribute). */
  expiresAt: number;
}

/** Whether an entry still counts at `nowMs`. */
export function isFresh(entry: Pick<CachedResult, 'expiresAt'>, nowMs: number): boolean {
  return entry.expiresAt * 1000 > nowMs;
}
