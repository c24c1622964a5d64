// dynalite reads LevelDB through classic-level's asynchronous get: each read of a request (the
// table's description, then the item, then its index entries) waits for a thread-pool thread and
// then for the event loop's next check phase (dynalite calls back through setImmediate). On a busy
// machine those waits, not the reads, made a DynamoDB call take several milliseconds in the local
// layer's process. classic-level also reads synchronously (getSync: the same LevelDB Get, from its
// cache or the page cache, in microseconds), so dynalite's store reads that way while the database
// is open, and calls back on the next tick: still after the caller's own code, as before. Writes
// stay as they are. Reads see every write whose callback has run, as before: dynalite calls a
// write back only once LevelDB has applied it, and serialises the writes and reads of one item.
import { onEveryDynaliteStore } from './dynalite-stores.ts';

type Callback = (err: Error | null, value?: unknown) => void;
interface Level {
  status: string;
  get(key: string, callback?: Callback): Promise<unknown> | void;
  getSync?(key: string): unknown;
  supports?: { getSync?: boolean };
  xlSyncReads?: true;
}
interface Store {
  db: Level;
  lifecycleManager?: { getState(): string };
}

/** Puts the synchronous reads into every dynalite store created from now on (once per process). */
export function readDynaliteSynchronously(): void {
  onEveryDynaliteStore<Store>('xlSyncReads', syncReads);
}

export function syncReads(store: Store): void {
  const db = store.db;
  if (db.xlSyncReads || db.supports?.getSync !== true) return;
  db.xlSyncReads = true;
  const get = db.get;
  db.get = function (this: Level, key: string, callback?: Callback) {
    // Opening, closing or closed, or asked for a promise: dynalite's own path (it defers, or
    // answers "Database is closed").
    if (typeof callback !== 'function' || db.status !== 'open' || store.lifecycleManager?.getState() === 'closed') {
      return get.call(db, key, callback);
    }
    let value: unknown;
    try {
      value = db.getSync!(key);
    } catch (err) {
      return void process.nextTick(callback, err as Error);
    }
    process.nextTick(callback, null, value);
  };
}
