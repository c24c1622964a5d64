// The ledger the fault suite counts by: every task's command appends a line to a file of its own
// when it starts and when it commits its side effect. The folder is outside any workspace and
// writable by the agent's user (commands run as `nobody` when the layer runs as root).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratchDir } from '../e2e/harness.ts';

/** What one task's commands wrote: the attempt (XL_ATTEMPT) and shell pid of each start, the attempt of each commit. */
export interface LedgerEntry {
  starts: { attempt: number; pid: number }[];
  commits: number[];
}

const TASK_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function parseLedger(text: string): LedgerEntry {
  const entry: LedgerEntry = { starts: [], commits: [] };
  for (const line of text.split('\n')) {
    const [kind, attempt, pid] = line.trim().split(' ');
    if (kind === 'start') entry.starts.push({ attempt: Number(attempt), pid: Number(pid) });
    else if (kind === 'commit') entry.commits.push(Number(attempt));
    else if (line.trim()) throw new Error(`a ledger line is neither a start nor a commit: "${line}"`);
  }
  return entry;
}

export class Ledger {
  readonly dir: string;

  constructor(prefix = 'xl-reliability-') {
    this.dir = scratchDir(prefix);
  }

  private file(taskId: string): string {
    if (!TASK_ID.test(taskId)) throw new Error(`ledger task ids must match ${TASK_ID}, got "${taskId}"`);
    return join(this.dir, taskId);
  }

  /**
   * A task's command: start line, `body` (which may exit early, or block), commit line, and the
   * output `{"task":<id>,"attempt":<n>}` that ties the recorded result to the run that committed.
   * `$L` is the ledger file in `body`, so a body can keep markers beside it.
   */
  command(taskId: string, body = ':'): string {
    const file = this.file(taskId);
    return [
      `L=${file}`,
      'echo "start $XL_ATTEMPT $$" >> "$L"',
      body,
      'echo "commit $XL_ATTEMPT" >> "$L"',
      `printf '{"task":"%s","attempt":%s}\\n' ${taskId} "$XL_ATTEMPT"`,
    ].join('; ');
  }

  entry(taskId: string): LedgerEntry {
    const file = this.file(taskId);
    return existsSync(file) ? parseLedger(readFileSync(file, 'utf8')) : { starts: [], commits: [] };
  }

  /** A shell loop that blocks until the harness opens gate `name`. */
  waitForGate(name: string): string {
    return `until [ -e ${this.gate(name)} ]; do sleep 0.05; done`;
  }

  openGate(name: string): void {
    writeFileSync(this.gate(name), '');
  }

  private gate(name: string): string {
    return join(this.dir, `.gate-${name}`);
  }
}
