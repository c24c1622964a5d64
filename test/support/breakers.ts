// An in-memory BreakerStore with DynamoDB's conditional-write semantics (version check), and a fake
// clock: for the breaker's unit and model-based tests, where time is the subject.
import type { BreakerStore } from '../../core/breakers.ts';
import type { LayerEvent } from '../../core/events.ts';
import type { BreakerRecord } from '../../core/records.ts';

export class MemoryBreakerStore implements BreakerStore {
  readonly items = new Map<string, BreakerRecord>();
  /** Successful writes, and reads, so tests can say what a healthy fleet pays. */
  writes = 0;
  reads = 0;

  async get(key: string): Promise<BreakerRecord | undefined> {
    this.reads++;
    const item = this.items.get(key);
    return item && structuredClone(item);
  }

  async list(): Promise<BreakerRecord[]> {
    return [...this.items.values()].map((r) => structuredClone(r)).sort((a, b) => a.key.localeCompare(b.key));
  }

  async put(next: BreakerRecord, expectedVersion: number): Promise<boolean> {
    const current = this.items.get(next.key);
    if ((current?.version ?? 0) !== expectedVersion) return false;
    this.items.set(next.key, structuredClone(Object.fromEntries(Object.entries(next).filter(([, v]) => v !== undefined)) as unknown as BreakerRecord));
    this.writes++;
    return true;
  }
}

export class FakeClock {
  constructor(public ms = Date.UTC(2026, 0, 1)) {}
  readonly now = () => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
  iso(offsetSeconds = 0): string {
    return new Date(this.ms + offsetSeconds * 1000).toISOString();
  }
}

export function eventLog(): { events: LayerEvent[]; sink: { emit(e: LayerEvent): Promise<void> } } {
  const events: LayerEvent[] = [];
  return { events, sink: { emit: async (e) => void events.push(e) } };
}
