// dynalite writes an item in up to three rounds, one after another: its old index entries deleted,
// its new ones put, then the item itself, each a LevelDB write that waits for a thread-pool thread
// and then for the event loop. On a busy machine each round took milliseconds, and every write of
// the layer's tables (they have indexes) paid them in turn. Here the three rounds become one LevelDB
// batch: the index entries are computed as dynalite computes them (its getIndexActions), held until
// the item's own put or delete (which dynalite always issues next, under the item's lock), and
// written with it. A batch is atomic, so a query never sees an index entry without its item: closer
// to DynamoDB than the rounds were. Reads are unchanged (dynalite-reads.ts).
//
// Written against dynalite 4.0.0 (db/index.js: updateIndexes, getIndexActions, the prefixed
// sub-databases "item-<table>~" and "index-<local|global>~<table>~<index>~"); re-check on upgrade.
import { dynaliteDbModule, onEveryDynaliteStore } from './dynalite-stores.ts';

type Callback = (err?: Error | null) => void;
type Item = Record<string, unknown>;
interface Op {
  type: 'put' | 'del';
  key: string;
  value?: unknown;
}
interface Table {
  TableName: string;
  LocalSecondaryIndexes?: unknown[];
  GlobalSecondaryIndexes?: unknown[];
}
interface SubDb {
  put(key: string, value: unknown, callback: Callback): void;
  del(key: string, callback: Callback): void;
  xlOneBatch?: true;
}
interface Store {
  db: { batch(ops: Op[], callback: Callback): void };
  getItemDb(name: string): SubDb;
  /** Index entries waiting for their item's write, by the item's key in the main database. */
  xlPendingIndexOps?: Map<string, Op[]>;
}
interface DbModule {
  updateIndexes(store: Store, table: Table, existingItem: Item | null | undefined, item: Item | null | undefined, cb: Callback): void;
  getIndexActions(
    indexes: unknown[],
    existingItem: Item | null | undefined,
    item: Item | null | undefined,
    table: Table,
  ): { puts: { index: string; key: string; item: unknown }[]; deletes: { index: string; key: string }[] };
  createKey(item: Item, table: Table): string;
}

const itemPrefix = (tableName: string) => `item-${tableName}~`;
const indexPrefix = (indexType: 'Local' | 'Global', tableName: string, indexName: string) => `index-${indexType.toLowerCase()}~${tableName}~${indexName}~`;

/** Makes every dynalite store created from now on write an item and its index entries in one batch (once per process). */
export function writeDynaliteInOneBatch(): void {
  if (!onEveryDynaliteStore<Store>('xlOneBatch', batchItemWrites)) return;
  const mod = dynaliteDbModule<DbModule>();
  const updateIndexes = mod.updateIndexes;
  mod.updateIndexes = (store, table, existingItem, item, cb) => {
    // A store made before the patch (or by another copy of dynalite) writes as dynalite does.
    if (!store.xlPendingIndexOps) return updateIndexes(store, table, existingItem, item, cb);
    const ops: Op[] = [];
    // The deletes first, as dynalite orders them: an entry whose key did not change is put again.
    const puts: Op[] = [];
    for (const indexType of ['Local', 'Global'] as const) {
      const indexes = table[`${indexType}SecondaryIndexes`] ?? [];
      const actions = mod.getIndexActions(indexes, existingItem, item, table);
      for (const d of actions.deletes) ops.push({ type: 'del', key: indexPrefix(indexType, table.TableName, d.index) + d.key });
      for (const p of actions.puts) puts.push({ type: 'put', key: indexPrefix(indexType, table.TableName, p.index) + p.key, value: p.item });
    }
    ops.push(...puts);

    if (ops.length) store.xlPendingIndexOps.set(itemPrefix(table.TableName) + mod.createKey((item ?? existingItem)!, table), ops);
    process.nextTick(cb);
  };
}

function batchItemWrites(store: Store): void {
  if (store.xlPendingIndexOps) return;
  store.xlPendingIndexOps = new Map();
  const pending = store.xlPendingIndexOps;
  const getItemDb = store.getItemDb;
  store.getItemDb = (name: string) => {
    const itemDb = getItemDb(name);
    if (itemDb.xlOneBatch) return itemDb;
    itemDb.xlOneBatch = true;
    const put = itemDb.put;
    const del = itemDb.del;
    const prefix = itemPrefix(name);
    // The item's write takes the index entries held for it, if any, into one batch.
    const take = (key: string) => {
      const ops = pending.get(prefix + key);
      if (ops) pending.delete(prefix + key);
      return ops;
    };
    itemDb.put = (key, value, callback) => {
      const ops = take(key);
      if (!ops) return put(key, value, callback);
      store.db.batch([...ops, { type: 'put', key: prefix + key, value }], callback);
    };
    itemDb.del = (key, callback) => {
      const ops = take(key);
      if (!ops) return del(key, callback);
      store.db.batch([...ops, { type: 'del', key: prefix + key }], callback);
    };
    return itemDb;
  };
}
