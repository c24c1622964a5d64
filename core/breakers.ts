// The circuit breakers of the design document, shared by the whole fleet through one DynamoDB item
// per key (docs/design.md, "Circuit breakers"). Keys name what can fail for every task at once: an
// agent type (`agent:<type>`), the model API (`dependency:model-api`), a git host
// (`dependency:git:<host>`). Every state change is a conditional write on the item's version, so
// exactly one caller wins each transition (and emits its event); half-open admits one probe.
import { AGENT_TYPES } from './agent-types.ts';
// zod/mini: every function reads the policy, and the classic API is five times its size in a bundle.
import * as z from 'zod/mini';
import type { TaskError } from './errors.ts';
import { type EventSink, noEvents } from './events.ts';
import type { BreakerRecord, BreakerState } from './records.ts';

// ---- keys -----------------------------------------------------------------------------------------

export const agentBreakerKey = (agentType: string) => `agent:${agentType}`;
export const MODEL_API_BREAKER_KEY = 'dependency:model-api';

/** Whether a key is one a breaker can have: agent:<type>, dependency:model-api or dependency:git:<host>. */
export function isBreakerKey(key: string): boolean {
  if (key === MODEL_API_BREAKER_KEY) return true;
  if (key.startsWith('agent:')) return (AGENT_TYPES as readonly string[]).includes(key.slice('agent:'.length));
  return /^dependency:git:[A-Za-z0-9.-]{1,253}(:\d{1,5})?$/.test(key);
}
export const GIT_BREAKER_PREFIX = 'dependency:git:';
export const gitBreakerKey = (host: string) => GIT_BREAKER_PREFIX + host.toLowerCase();

/**
 * The host a repository is fetched from: an URL's (`https://`, `ssh://`, `git://`), or an scp-like
 * `[user@]host:path`'s. Local paths and `file://` URLs have none: no host of the fleet's is involved.
 */
export function gitHost(repository: string): string | undefined {
  const spec = repository.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(spec)?.[1]?.toLowerCase();
  if (scheme) {
    if (scheme === 'file') return undefined;
    try {
      return new URL(spec).hostname.toLowerCase() || undefined;
    } catch {
      return undefined;
    }
  }
  // git's own rule: a colon before any slash makes it scp-like (`git@github.com:org/repo.git`).
  const scp = /^(?:[^@/]+@)?([^@/:]+):/.exec(spec);
  return scp ? scp[1]!.toLowerCase() : undefined;
}

/** What breakerKeysFor and failureBreakerKey read of a task (a plan's task or its record). */
export interface BreakerSubject {
  agentType: string;
  instructions?: string;
  workspace?: { repository: string };
  /** The keys recorded at submit (TaskRecord.breakers); computed from the task when absent. */
  breakers?: readonly string[];
}

/** Every key a task needs closed: its agent type's, the model API's for Claude Code, its git host's. */
export function breakerKeysFor(task: BreakerSubject): string[] {
  const keys = [agentBreakerKey(task.agentType)];
  if (task.instructions !== undefined) keys.push(MODEL_API_BREAKER_KEY);
  const host = task.workspace ? gitHost(task.workspace.repository) : undefined;
  if (host) keys.push(gitBreakerKey(host));
  return keys;
}

/**
 * The key a task's failure counts against, or undefined when it says nothing about the fleet: a
 * permanent or validation error is the task's own (a user's bad command). A failure whose source is
 * the model API or a git host counts against that dependency, whatever its type; the rest of the
 * transient, timeout and dependency failures count against the agent type. Resource failures
 * (a budget, a size limit) are the task's.
 */
export function failureBreakerKey(task: BreakerSubject, error: Pick<TaskError, 'type' | 'source'>): string | undefined {
  if (error.type === 'permanent' || error.type === 'validation') return undefined;
  if (error.source === 'model-api') return MODEL_API_BREAKER_KEY;
  if (error.source === 'git') {
    const git = (task.breakers ?? breakerKeysFor(task)).find((k) => k.startsWith(GIT_BREAKER_PREFIX));
    if (git) return git;
  }
  return error.type === 'resource' ? undefined : agentBreakerKey(task.agentType);
}

/**
 * Of the keys a dispatch was told to report (DispatchMessage.breakers), those its run's outcome is a
 * success for: all of them when it completed; when it failed as permanent or validation (nothing
 * against the fleet), all but the one its source names (a refused model key is no proof the model
 * API works); none for any other failure (Recover counts it).
 */
export function successBreakerKeys(keys: readonly string[], outcome: { status: 'completed' } | { status: 'failed'; error: Pick<TaskError, 'type' | 'source'> }): string[] {
  if (outcome.status === 'completed') return [...keys];
  const { type, source } = outcome.error;
  if (type !== 'permanent' && type !== 'validation') return [];
  return keys.filter((k) => !(source === 'model-api' && k === MODEL_API_BREAKER_KEY) && !(source === 'git' && k.startsWith(GIT_BREAKER_PREFIX)));
}

// ---- policy ---------------------------------------------------------------------------------------

export interface BreakerPolicy {
  /** Failures within the window that open a closed breaker. */
  failureThreshold: number;
  /** The sliding window (s): a failure older than this no longer counts. */
  failureWindowSeconds: number;
  /** How long the first opening refuses before one probe may go (s); each re-open doubles it. */
  cooldownSeconds: number;
  /** The cap on the doubled cooldown (s). */
  maxCooldownSeconds: number;
  /** A probe that has not reported for this long (s) is lost: another caller may take a new one. */
  probeTimeoutSeconds: number;
}

export const DEFAULT_BREAKER_POLICY: Readonly<BreakerPolicy> = {
  failureThreshold: 5,
  failureWindowSeconds: 60,
  cooldownSeconds: 30,
  maxCooldownSeconds: 900,
  probeTimeoutSeconds: 900,
};

/** The cooldown after the `reopens`-th re-open (0: the first opening): base × 2^reopens, capped. */
export function cooldownSeconds(policy: BreakerPolicy, reopens: number): number {
  return Math.min(policy.cooldownSeconds * 2 ** reopens, policy.maxCooldownSeconds);
}

export const BREAKER_POLICY_VARIABLE = 'XL_BREAKER_POLICY';
const POLICY_FIELDS = Object.keys(DEFAULT_BREAKER_POLICY) as (keyof BreakerPolicy)[];
const positiveSeconds = z.number({ error: 'must be a number of seconds' }).check(z.positive('must be above 0'));

const PolicyOverrideSchema = z.strictObject({
  failureThreshold: z.optional(z.int({ error: 'must be a whole number' }).check(z.gte(1, 'must be at least 1'))),
  failureWindowSeconds: z.optional(positiveSeconds),
  cooldownSeconds: z.optional(positiveSeconds),
  maxCooldownSeconds: z.optional(positiveSeconds),
  probeTimeoutSeconds: z.optional(positiveSeconds),
}, { error: (issue) => (issue.code === 'unrecognized_keys' ? 'unknown fields' : 'must be an object of policy fields') });

/**
 * `XL_BREAKER_POLICY`: `{ "<pattern>": { <BreakerPolicy fields> } }`, a pattern being a key
 * (`agent:coder`), a key prefix ending in `*` (`dependency:git:*`) or `*` (every key).
 */
export const BreakerPolicySpecSchema = z.record(z.string(), PolicyOverrideSchema);
export type BreakerPolicySpec = Record<string, Partial<BreakerPolicy>>;

/** The policy of each key: the defaults, overridden by `*`, then by matching prefixes (shortest first), then by the key itself. */
export class BreakerPolicies {
  private readonly patterns: [string, Partial<BreakerPolicy>][];

  constructor(spec: BreakerPolicySpec = {}) {
    const prefixLength = (p: string) => (p.endsWith('*') ? p.length - 1 : Infinity);
    this.patterns = Object.entries(spec).sort(([a], [b]) => prefixLength(a) - prefixLength(b));
  }

  for(key: string): BreakerPolicy {
    const policy = { ...DEFAULT_BREAKER_POLICY };
    for (const [pattern, override] of this.patterns) {
      const matches = pattern.endsWith('*') ? key.startsWith(pattern.slice(0, -1)) : key === pattern;
      if (matches) Object.assign(policy, override);
    }
    return policy;
  }

  /** Parses the variable's JSON; throws an error naming the variable and the bad field. */
  static parse(text: string | undefined, name = BREAKER_POLICY_VARIABLE): BreakerPolicies {
    if (text === undefined || text.trim() === '') return new BreakerPolicies();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new Error(`${name} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    return new BreakerPolicies(parseBreakerPolicySpec(json, name));
  }
}

/** Checks a policy spec (the CDK prop, or the variable's parsed JSON); throws naming the bad field. */
export function parseBreakerPolicySpec(spec: unknown, name = BREAKER_POLICY_VARIABLE): BreakerPolicySpec {
  if (spec && typeof spec === 'object' && !Array.isArray(spec)) {
    const misplaced = Object.keys(spec).find((k) => (POLICY_FIELDS as string[]).includes(k));
    if (misplaced) throw new Error(`${name}: "${misplaced}" must sit under a key pattern, e.g. {"*": {"${misplaced}": ...}} for every key`);
    const badPattern = Object.keys(spec).find((k) => !/^[^*]*\*?$/.test(k));
    if (badPattern !== undefined) throw new Error(`${name}["${badPattern}"]: must be a key, or a key prefix ending in *`);
  }
  const result = BreakerPolicySpecSchema.safeParse(spec);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const [pattern, field] = issue.path.map(String);
    const where = pattern === undefined ? name : field === undefined ? `${name}["${pattern}"]` : `${name}["${pattern}"].${field}`;
    const unknown = issue.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')}; known: ${POLICY_FIELDS.join(', ')})` : '';
    return `${where}: ${issue.message}${unknown}`;
  });
  throw new Error(problems.join('; '));
}

// ---- the breaker ----------------------------------------------------------------------------------

export interface BreakerStore {
  get(key: string): Promise<BreakerRecord | undefined>;
  list(): Promise<BreakerRecord[]>;
  /** Writes `next` if the stored version is still `expectedVersion` (0: no item yet). */
  put(next: BreakerRecord, expectedVersion: number): Promise<boolean>;
}

export type Admission =
  | {
      allowed: true;
      /** This caller holds the half-open probe: its outcome closes or re-opens the breaker. */
      probe: boolean;
      /** The run's success must be reported (recordSuccess): the record has failures, or this is its probe. */
      report: boolean;
    }
  | { allowed: false; reason: string; /** When a probe may next be taken (ISO). */ retryAt: string };

/** GET /breakers: a key's state as users see it. */
export interface BreakerView {
  key: string;
  state: BreakerState;
  /** Failures within the window (closed), or that opened it. */
  failures: number;
  openedAt?: string;
  /** When one probe may be taken: the end of the cooldown (open), or when the out probe counts as lost (half-open). */
  nextProbeAt?: string;
}

export interface CircuitBreakerOptions {
  policy?: BreakerPolicies | Partial<BreakerPolicy>;
  /** Epoch ms. */
  clock?: () => number;
  /** A key seen closed is not read again by this process for this long (every dispatch asks). */
  closedCacheMs?: number;
  events?: EventSink;
}

/** Tries of a read-then-conditional-write before giving up (each lost race means another caller won). */
const TRIES = 5;

export class CircuitBreaker {
  private readonly closedUntil = new Map<string, { until: number; report: boolean }>();
  private readonly policies: BreakerPolicies;
  private readonly now: () => number;
  private readonly closedCacheMs: number;
  private readonly events: EventSink;

  constructor(
    private readonly store: BreakerStore,
    options: CircuitBreakerOptions = {},
  ) {
    this.policies = options.policy instanceof BreakerPolicies ? options.policy : new BreakerPolicies({ '*': options.policy ?? {} });
    this.now = options.clock ?? Date.now;
    this.closedCacheMs = options.closedCacheMs ?? 1000;
    this.events = options.events ?? noEvents;
  }

  policyFor(key: string): BreakerPolicy {
    return this.policies.for(key);
  }

  /** Whether a run needing `key` may go now; when half-open, only the caller that takes the probe may. */
  async admit(key: string, probeId: string): Promise<Admission> {
    const cached = this.closedUntil.get(key);
    if (cached && cached.until > this.now()) return { allowed: true, probe: false, report: cached.report };
    for (let i = 0; i < TRIES; i++) {
      const current = await this.store.get(key);
      const now = this.now();
      if (!current || current.state === 'closed') {
        const report = (current?.failures ?? 0) > 0;
        if (this.closedCacheMs > 0) this.closedUntil.set(key, { until: now + this.closedCacheMs, report });
        return { allowed: true, probe: false, report };
      }
      this.closedUntil.delete(key);
      const due = this.nextProbeTime(current);
      if (now < due) return { allowed: false, reason: refusal(current, due), retryAt: iso(due) };
      const policy = this.policies.for(key);
      const next: BreakerRecord = { ...current, state: 'half-open', probeId, nextProbeAt: iso(now + policy.probeTimeoutSeconds * 1000), version: current.version + 1 };
      if (await this.store.put(next, current.version)) {
        const reason = current.state === 'half-open' ? 'the previous probe did not report in time' : 'cooldown over: one probe may go';
        await this.events.emit({ kind: 'breaker.half-open', key, failures: next.failures, reason, nextProbeAt: next.nextProbeAt });
        return { allowed: true, probe: true, report: true };
      }
      // Another caller changed it first (most likely took the probe): look again.
    }
    return { allowed: false, reason: `circuit breaker ${key} is contended`, retryAt: iso(this.now() + 1000) };
  }

  /**
   * Admits every key of a task, in order; the first refusal refuses the task, and probes this call
   * took on earlier keys are given back (released) so they do not wait to be counted lost.
   */
  async admitAll(keys: readonly string[], probeId: string): Promise<{ allowed: true; probe: boolean; report: string[] } | { allowed: false; key: string; reason: string; retryAt: string }> {
    const probes: string[] = [];
    const report: string[] = [];
    for (const key of keys) {
      const admission = await this.admit(key, probeId);
      if (!admission.allowed) {
        for (const probed of probes) await this.release(probed, probeId);
        return { allowed: false, key, reason: admission.reason, retryAt: admission.retryAt };
      }
      if (admission.probe) probes.push(key);
      if (admission.report) report.push(key);
    }
    return { allowed: true, probe: probes.length > 0, report };
  }

  /** Gives a probe back unused: the next caller may take it at once. */
  async release(key: string, probeId: string): Promise<void> {
    const current = await this.store.get(key);
    if (current?.state !== 'half-open' || current.probeId !== probeId) return;
    const { probeId: _taken, ...rest } = current;
    await this.store.put({ ...rest, nextProbeAt: iso(this.now()), version: current.version + 1 }, current.version);
  }

  /**
   * A run needing `key` went well: a half-open breaker closes, a closed one's count starts again.
   * Written only when there is something to reset. An open breaker ignores it: the run was
   * dispatched before it opened, and says nothing of now.
   */
  async recordSuccess(key: string): Promise<void> {
    for (let i = 0; i < TRIES; i++) {
      const current = await this.store.get(key);
      if (!current || current.state === 'open') return;
      if (current.state === 'closed' && current.failures === 0 && !current.failureTimes?.length) return;
      if (await this.store.put(closedRecord(key, current.version + 1), current.version)) {
        this.closedUntil.delete(key);
        if (current.state === 'half-open') await this.events.emit({ kind: 'breaker.closed', key, failures: 0, reason: 'the probe succeeded' });
        return;
      }
    }
  }

  /**
   * A run needing `key` failed in a way that counts (failureBreakerKey): closed, it opens at the
   * threshold within the window; half-open, it re-opens with a doubled cooldown; open, nothing changes
   * (runs dispatched before it opened are still ending).
   */
  async recordFailure(key: string): Promise<void> {
    this.closedUntil.delete(key);
    for (let i = 0; i < TRIES; i++) {
      const current = await this.store.get(key);
      if (current?.state === 'open') return;
      const now = this.now();
      const policy = this.policies.for(key);
      const version = current?.version ?? 0;
      let next: BreakerRecord;
      if (current?.state === 'half-open') {
        const reopens = (current.reopens ?? 0) + 1;
        next = openRecord(key, current.failures + 1, now, reopens, cooldownSeconds(policy, reopens), version + 1);
      } else {
        const windowMs = policy.failureWindowSeconds * 1000;
        const times = [...(current?.failureTimes ?? []).filter((t) => now - t < windowMs), now].slice(-policy.failureThreshold);
        next =
          times.length >= policy.failureThreshold
            ? openRecord(key, times.length, now, 0, cooldownSeconds(policy, 0), version + 1)
            : { key, state: 'closed', failures: times.length, failureTimes: times, lastFailureAt: iso(now), version: version + 1 };
      }
      if (await this.store.put(next, version)) {
        if (next.state === 'open') {
          const reason = current?.state === 'half-open' ? 'the probe failed' : `${next.failures} failures within ${policy.failureWindowSeconds} s`;
          await this.events.emit({ kind: 'breaker.opened', key, failures: next.failures, reason, nextProbeAt: next.nextProbeAt });
        }
        return;
      }
    }
  }

  /** Opens the breaker now, whatever its count (a task's escalation policy `open-breaker`). */
  async trip(key: string, reason: string): Promise<void> {
    this.closedUntil.delete(key);
    for (let i = 0; i < TRIES; i++) {
      const current = await this.store.get(key);
      if (current?.state === 'open') return;
      const policy = this.policies.for(key);
      const version = current?.version ?? 0;
      const next = openRecord(key, Math.max(current?.failures ?? 0, policy.failureThreshold), this.now(), 0, cooldownSeconds(policy, 0), version + 1);
      if (await this.store.put(next, version)) {
        await this.events.emit({ kind: 'breaker.opened', key, failures: next.failures, reason, nextProbeAt: next.nextProbeAt });
        return;
      }
    }
  }

  /** POST /breakers/{key}/reset: closes it. False when the key has no record (never failed). */
  async reset(key: string): Promise<boolean> {
    this.closedUntil.delete(key);
    for (let i = 0; i < TRIES; i++) {
      const current = await this.store.get(key);
      if (!current) return false;
      if (await this.store.put(closedRecord(key, current.version + 1), current.version)) {
        if (current.state !== 'closed') await this.events.emit({ kind: 'breaker.closed', key, failures: 0, reason: 'reset by request' });
        return true;
      }
    }
    throw new Error(`circuit breaker ${key} is contended: try the reset again`);
  }

  /** Every key with a record, as GET /breakers shows it. */
  async list(): Promise<BreakerView[]> {
    return (await this.store.list()).map((r) => this.view(r));
  }

  view(record: BreakerRecord): BreakerView {
    const now = this.now();
    const windowMs = this.policies.for(record.key).failureWindowSeconds * 1000;
    const failures = record.state === 'closed' && record.failureTimes ? record.failureTimes.filter((t) => now - t < windowMs).length : record.failures;
    return {
      key: record.key,
      state: record.state,
      failures,
      ...(record.openedAt && record.state !== 'closed' ? { openedAt: record.openedAt } : {}),
      ...(record.state !== 'closed' ? { nextProbeAt: iso(this.nextProbeTime(record)) } : {}),
    };
  }

  /** Epoch ms from which a probe may be taken; records written before nextProbeAt existed derive it. */
  private nextProbeTime(record: BreakerRecord): number {
    if (record.nextProbeAt) return Date.parse(record.nextProbeAt);
    const policy = this.policies.for(record.key);
    const openedAt = record.openedAt ? Date.parse(record.openedAt) : 0;
    const seconds = record.state === 'half-open' ? policy.probeTimeoutSeconds : cooldownSeconds(policy, record.reopens ?? 0);
    return openedAt + seconds * 1000;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

const closedRecord = (key: string, version: number): BreakerRecord => ({ key, state: 'closed', failures: 0, version });

function openRecord(key: string, failures: number, now: number, reopens: number, cooldown: number, version: number): BreakerRecord {
  return { key, state: 'open', failures, openedAt: iso(now), lastFailureAt: iso(now), reopens, nextProbeAt: iso(now + cooldown * 1000), version };
}

function refusal(record: BreakerRecord, due: number): string {
  if (record.state === 'half-open') {
    return `circuit breaker ${record.key} is half-open and its probe is out; if the probe does not report, another may go at ${iso(due)}`;
  }
  return `circuit breaker ${record.key} is open (${record.failures} failures, opened at ${record.openedAt ?? 'an unknown time'}); it lets one probe through at ${iso(due)}`;
}
