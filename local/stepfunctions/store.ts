// Execution records on disk: one JSON file per execution (written when it starts and when it
// ends) and its history beside it (written once, when it ends). Nothing is written per event.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredEvent } from './history.ts';
import type { ExecutionRecord } from './types.ts';

const RECORD = '.json';
const HISTORY = '.history.json';

export class ExecutionStore {
  private readonly dir: string;
  private seq = 0;

  constructor(stateDir: string) {
    this.dir = join(stateDir, 'executions');
    mkdirSync(this.dir, { recursive: true });
  }

  /** Every record on disk; files that cannot be read are skipped. */
  loadAll(): ExecutionRecord[] {
    const records: ExecutionRecord[] = [];
    for (const file of readdirSync(this.dir)) {
      if (!file.endsWith(RECORD) || file.endsWith(HISTORY)) continue;
      try {
        records.push(JSON.parse(readFileSync(join(this.dir, file), 'utf8')) as ExecutionRecord);
      } catch {
        // a torn or foreign file: not an execution this layer can describe
      }
    }
    return records;
  }

  writeRecord(rec: ExecutionRecord): Promise<void> {
    return this.write(this.base(rec.executionArn) + RECORD, JSON.stringify(rec));
  }

  /** History first, then the record that says the execution ended: a closed record has its history. */
  async writeEnd(rec: ExecutionRecord, events: StoredEvent[]): Promise<void> {
    await this.write(this.base(rec.executionArn) + HISTORY, JSON.stringify(events));
    await this.writeRecord(rec);
  }

  writeEndSync(rec: ExecutionRecord, events: StoredEvent[]): void {
    const base = this.base(rec.executionArn);
    this.writeSync(base + HISTORY, JSON.stringify(events));
    this.writeSync(base + RECORD, JSON.stringify(rec));
  }

  async readHistory(executionArn: string): Promise<StoredEvent[] | undefined> {
    try {
      return JSON.parse(await readFile(this.base(executionArn) + HISTORY, 'utf8')) as StoredEvent[];
    } catch {
      return undefined;
    }
  }

  private base(executionArn: string): string {
    return join(this.dir, createHash('sha256').update(executionArn).digest('hex').slice(0, 40));
  }

  private async write(file: string, text: string): Promise<void> {
    const tmp = `${file}.${process.pid}.${++this.seq}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, file);
  }

  private writeSync(file: string, text: string): void {
    const tmp = `${file}.${process.pid}.${++this.seq}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  }
}
