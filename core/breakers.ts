// The circuit breaker of the design document, shared by the whole fleet through one DynamoDB item
// per key. Half-open admits exactly one probe: the caller whose conditional write takes it.
import type { BreakerRecord } from './records.ts';

export interface BreakerPolicy {
  /** Failures in a row that open the breaker. */
  failureThreshold: number;
  /** How long an open breaker refuses before one probe may try. */
  openSeconds: number;
  /**
   * A failure this long after the previous one starts the count again (the design's
   * lastFailureTime): successes are not recorded per task, so old failures must not add up.
   */
  failureWindowSeconds: number;
}

export const DEFAULT_BREAKER_POLICY: BreakerPolicy = { failureThreshold: 5, openSeconds: 60, failureWindowSeconds: 600 };

export interface BreakerStore {
  get(key: string): Promise<BreakerRecord | undefined>;
  list(): Promise<BreakerRecord[]>;
  /** Writes `next` if the stored version is still `expectedVersion` (0: no item yet). */
  put(next: BreakerRecord, expectedVersion: number): Promise<boolean>;
}

export type Admission = { allowed: true; probe: boolean } | { allowed: false; reason: string };

export class CircuitBreaker {
  /** Keys seen closed, until when: a closed breaker is not read again for `closedCacheMs`. */
  private readonly closedUntil = new Map<string, number>();
  private readonly policy: BreakerPolicy;

  constructor(
    private readonly store: BreakerStore,
    policy: Partial<BreakerPolicy> = {},
    private readonly now: () => number = Date.now,
    /** Every dispatch asks; an opened breaker is seen by this process at most this much later. */
    private readonly closedCacheMs = 1000,
  ) {
    this.policy = { ...DEFAULT_BREAKER_POLICY, ...policy };
  }

  /** Whether a call may go through now; when half-open, only the single probe may. */
  async admit(key: string, probeId: string): Promise<Admission> {
    if ((this.closedUntil.get(key) ?? 0) > this.now()) return { allowed: true, probe: false };
    for (let i = 0; i < 5; i++) {
      const current = await this.store.get(key);
      if (!current || current.state === 'closed') {
        this.closedUntil.set(key, this.now() + this.closedCacheMs);
        return { allowed: true, probe: false };
      }
      this.closedUntil.delete(key);
      if (current.state === 'open') {
        const openedAt = Date.parse(current.openedAt ?? new Date(0).toISOString());
        if (this.now() - openedAt < this.policy.openSeconds * 1000) {
          return { allowed: false, reason: `circuit breaker ${key} is open` };
        }
        const next: BreakerRecord = { ...current, state: 'half-open', probeId, version: current.version + 1 };
        if (await this.store.put(next, current.version)) return { allowed: true, probe: true };
        continue; // someone else changed it first: look again
      }
      // half-open: a probe is out. If it has been out longer than the open period, it is lost.
      const openedAt = Date.parse(current.openedAt ?? new Date(0).toISOString());
      if (this.now() - openedAt > 2 * this.policy.openSeconds * 1000) {
        const next: BreakerRecord = { ...current, probeId, openedAt: new Date(this.now()).toISOString(), version: current.version + 1 };
        if (await this.store.put(next, current.version)) return { allowed: true, probe: true };
        continue;
      }
      return { allowed: false, reason: `circuit breaker ${key} is half-open and its probe is out` };
    }
    return { allowed: false, reason: `circuit breaker ${key} is contended` };
  }

  async recordSuccess(key: string): Promise<void> {
    for (let i = 0; i < 5; i++) {
      const current = await this.store.get(key);
      if (!current || (current.state === 'closed' && current.failures === 0)) return;
      const next: BreakerRecord = { key, state: 'closed', failures: 0, version: current.version + 1 };
      if (await this.store.put(next, current.version)) return;
    }
  }

  async recordFailure(key: string): Promise<void> {
    this.closedUntil.delete(key);
    for (let i = 0; i < 5; i++) {
      const current = await this.store.get(key);
      const version = current?.version ?? 0;
      const now = new Date(this.now()).toISOString();
      const stale = current?.state === 'closed' && current.lastFailureAt !== undefined && this.now() - Date.parse(current.lastFailureAt) > this.policy.failureWindowSeconds * 1000;
      const failures = (stale ? 0 : (current?.failures ?? 0)) + 1;
      const opens = current?.state === 'half-open' || failures >= this.policy.failureThreshold;
      const next: BreakerRecord = opens
        ? { key, state: 'open', failures, openedAt: now, lastFailureAt: now, version: version + 1 }
        : { key, state: current?.state ?? 'closed', failures, openedAt: current?.openedAt, lastFailureAt: now, version: version + 1 };
      if (await this.store.put(next, version)) return;
    }
  }

  /** Opens the breaker now, whatever its count (a task's escalation policy `open-breaker`). */
  async trip(key: string, _reason: string): Promise<void> {
    this.closedUntil.delete(key);
    for (let i = 0; i < 5; i++) {
      const current = await this.store.get(key);
      const version = current?.version ?? 0;
      const now = new Date(this.now()).toISOString();
      const next: BreakerRecord = { key, state: 'open', failures: Math.max(current?.failures ?? 0, this.policy.failureThreshold), openedAt: now, lastFailureAt: now, version: version + 1 };
      if (await this.store.put(next, version)) return;
    }
  }

  async reset(key: string): Promise<void> {
    this.closedUntil.delete(key);
    const current = await this.store.get(key);
    await this.store.put({ key, state: 'closed', failures: 0, version: (current?.version ?? 0) + 1 }, current?.version ?? 0);
  }
}

/** The breaker key of an agent type (dependencies get keys of their own, e.g. `dep:anthropic`). */
export const agentTypeBreakerKey = (agentType: string) => `agent:${agentType}`;
