// A fresh directory per task run, under one root; removed when the run ends.
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export class Workspaces {
  private ready: Promise<void> | undefined;

  constructor(readonly root: string = join(tmpdir(), 'xl-workspaces')) {}

  /** A new empty directory; the prefix (a task id) only helps a person looking at the disk. */
  async create(prefix: string): Promise<string> {
    this.ready ??= mkdir(this.root, { recursive: true }).then(() => undefined);
    try {
      await this.ready;
    } catch (err) {
      this.ready = undefined; // try again next time (the root may have been removed meanwhile)
      throw err;
    }
    const template = join(this.root, `${prefix.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64)}-`);
    try {
      return await mkdtemp(template);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(this.root, { recursive: true }); // the root was removed under us
      return mkdtemp(template);
    }
  }

  async remove(dir: string): Promise<void> {
    try {
      await rmdir(dir); // most runs leave nothing behind: one syscall
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      await rm(dir, { recursive: true, force: true, maxRetries: 2 });
    }
  }
}
