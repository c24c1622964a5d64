// The worker's list of the process groups its runs started (WorkerConfig.pgidFile): what a layer
// that restarts after a crash kills (local/leftovers.ts).
import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The pgid file (format: WorkerConfig.pgidFile). Writes are serialised and asynchronous. */
export class PgidFile {
  private readonly live = new Set<number>();
  private chain: Promise<void> = Promise.resolve();
  constructor(
    private readonly path: string,
    private readonly onError: (err: unknown) => void,
  ) {}

  private enqueue(op: () => Promise<unknown>): Promise<void> {
    this.chain = this.chain.then(op).then(
      () => undefined,
      (err) => this.onError(err),
    );
    return this.chain;
  }

  reset(): Promise<void> {
    return this.enqueue(async () => {
      await mkdir(dirname(this.path), { recursive: true });
      await writeFile(this.path, '');
    });
  }

  add(pgid: number): void {
    this.live.add(pgid);
    void this.enqueue(() => appendFile(this.path, `${pgid}\n`));
  }

  remove(pgid: number): void {
    if (!this.live.delete(pgid)) return;
    const text = [...this.live].map((p) => `${p}\n`).join('');
    void this.enqueue(() => writeFile(this.path, text));
  }

  close(): Promise<void> {
    return this.enqueue(() => rm(this.path, { force: true }));
  }
}
