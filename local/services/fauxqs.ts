// SQS (and S3) for the embedded local layer: fauxqs in this process, on 127.0.0.1 only.
//
// fauxqs' own startFauxqs() binds 0.0.0.0, so this builds the app with its exported buildApp()
// and repeats the store and persistence wiring startFauxqs() does (node_modules/fauxqs/dist/app.js,
// version 2.4.1). The stores and the persistence manager are internal modules, outside the
// package's exports: they are imported by file path next to the resolved entry point. That
// knowledge stays in this file; re-check it when fauxqs is upgraded.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildApp } from 'fauxqs';
import type { RunningService } from './running.ts';

export interface StartFauxqsOptions {
  /** Directory for fauxqs' SQLite file (queues, messages, buckets, objects); memory when absent. */
  dataDir?: string;
  /** 0 or absent: any free port. */
  port?: number;
}

export type RunningFauxqs = RunningService;

// The internal surface used here (fauxqs/dist/*.d.ts, 2.4.1).
interface Persistence {
  load(sqs: unknown, sns: unknown, s3: unknown): void;
  close(): void;
  db?: { exec(sql: string): void; prepare(sql: string): { run(...values: unknown[]): unknown } };
  updateMessageReady?(messageId: string): void;
}
interface SqsStoreLike {
  persistence?: Persistence;
  allQueues(): Iterable<{ persistence?: Persistence }>;
}
interface Internals {
  SqsStore: new () => SqsStoreLike;
  SnsStore: new () => { persistence?: Persistence };
  S3Store: new () => { persistence?: Persistence };
  PersistenceManager: new (dataDir: string) => Persistence;
}

let internals: Promise<Internals> | undefined;

/** The file URL of fauxqs' entry point (dist/app.js). */
function fauxqsEntry(): string {
  try {
    return import.meta.resolve('fauxqs');
  } catch {
    // Runners without import.meta.resolve: find the package directory on the module paths.
    const dirs = createRequire(import.meta.url).resolve.paths('fauxqs') ?? [];
    for (const dir of dirs) {
      const entry = join(dir, 'fauxqs', 'dist', 'app.js');
      if (existsSync(entry)) return pathToFileURL(entry).href;
    }
    throw new Error('fauxqs is not installed');
  }
}

function loadInternals(): Promise<Internals> {
  internals ??= (async () => {
    const entry = fauxqsEntry();
    const load = (rel: string) => import(new URL(rel, entry).href) as Promise<Record<string, unknown>>;
    const [sqs, sns, s3, persistence] = await Promise.all([
      load('./sqs/sqsStore.js'),
      load('./sns/snsStore.js'),
      load('./s3/s3Store.js'),
      load('./persistence.js'),
    ]);
    return {
      SqsStore: sqs.SqsStore,
      SnsStore: sns.SnsStore,
      S3Store: s3.S3Store,
      PersistenceManager: persistence.PersistenceManager,
    } as Internals;
  })();
  return internals;
}

export async function startFauxqs127(opts: StartFauxqsOptions = {}): Promise<RunningFauxqs> {
  const { SqsStore, SnsStore, S3Store, PersistenceManager } = await loadInternals();
  const sqsStore = new SqsStore();
  const snsStore = new SnsStore();
  const s3Store = new S3Store();

  let persistence: Persistence | undefined;
  if (opts.dataDir) {
    await mkdir(opts.dataDir, { recursive: true });
    persistence = new PersistenceManager(opts.dataDir);
    // fauxqs keeps SQLite's default synchronous=FULL: an fsync per message sent, received and
    // deleted, which was the largest cost of a task locally. In WAL mode NORMAL still survives a
    // crash of this process; only an OS crash may lose the last messages.
    persistence.db?.exec('PRAGMA synchronous = NORMAL');
    // fauxqs 2.4.1 makes an in-flight message ready again (ChangeMessageVisibility 0, or its
    // visibility running out) with an UPDATE that also sets approximate_receive_count to NULL, a
    // NOT NULL column: the update throws after the message has left the in-flight set and before it
    // is back in the queue, so the message is lost. Clear only the in-flight columns instead.
    if (persistence.db && persistence.updateMessageReady) {
      const ready = persistence.db.prepare('UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?');
      persistence.updateMessageReady = (messageId: string) => void ready.run(messageId);
    }
    // As startFauxqs does: load before the stores get the manager, so that loading does not
    // write back (INSERT OR REPLACE would cascade-delete the loaded messages).
    persistence.load(sqsStore, snsStore, s3Store);
    sqsStore.persistence = persistence;
    snsStore.persistence = persistence;
    s3Store.persistence = persistence;
    for (const queue of sqsStore.allQueues()) queue.persistence = persistence;
  }

  const app = buildApp({
    logger: false,
    stores: { sqsStore, snsStore, s3Store } as unknown as NonNullable<Parameters<typeof buildApp>[0]>['stores'],
  });
  if (persistence) {
    const p = persistence;
    app.addHook('preClose', () => p.close());
  }
  try {
    await app.listen({ port: opts.port ?? 0, host: '127.0.0.1' });
  } catch (err) {
    persistence?.close();
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : Number(opts.port);
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    server: app.server,
    close() {
      closing ??= app.close().then(() => undefined);
      return closing;
    },
  };
}
