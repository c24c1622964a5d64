// dynalite makes each store (its LevelDB and the sub-databases over it) in db/index.js's create().
// The local layer changes how a store reads (dynalite-reads.ts) and writes (dynalite-writes.ts) by
// wrapping create() once per process for each change; each wrapper keeps the others' flags, so a
// second start in the same process wraps nothing again.
import { createRequire } from 'node:module';

type Create<S> = ((options: unknown) => S) & Record<string, unknown>;

/** dynalite's db module (dynalite 4.0.0), as loaded by dynalite itself. */
export function dynaliteDbModule<M>(): M {
  return createRequire(import.meta.url)('dynalite/db/index.js') as M;
}

/** Runs `apply` on every dynalite store made from now on; false if `flag` was applied before. */
export function onEveryDynaliteStore<S>(flag: string, apply: (store: S) => void): boolean {
  const mod = dynaliteDbModule<{ create: Create<S> }>();
  if (mod.create[flag]) return false;
  const create = mod.create;
  mod.create = Object.assign(
    (options: unknown) => {
      const store = create(options);
      apply(store);
      return store;
    },
    create,
    { [flag]: true },
  );
  return true;
}
