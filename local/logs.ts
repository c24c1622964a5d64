// The local layer's log: every structured line its functions (in this process) and its agents
// (worker processes, on their stderr) write, appended to one JSON-lines file in the state dir, and
// read back for GET /executions/{executionId}/logs. CloudWatch Logs plays this part on AWS.
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type LogLine, type LogPage, type LogQuery, type LogSource, decodeToken, encodeToken, matchesQuery, toLogLine } from '#core/logs.ts';

const CHUNK_BYTES = 1 << 20;

/** Appends structured lines to the layer's log file. */
export class LayerLogFile {
  private stream?: WriteStream;

  constructor(readonly path: string) {}

  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    this.stream = createWriteStream(this.path, { flags: 'a', mode: 0o600 });
  }

  /** A line written by a function (a Powertools record). */
  write(record: Record<string, unknown>): void {
    this.stream?.write(JSON.stringify(record) + '\n');
  }

  /** A line an agent wrote on its stderr: kept when it is a JSON object (a stack trace is not). */
  writeAgentLine(line: string): void {
    if (!line.startsWith('{')) return;
    try {
      const record = JSON.parse(line) as unknown;
      if (record && typeof record === 'object' && !Array.isArray(record)) this.stream?.write(line + '\n');
    } catch {
      // not one of the worker's structured lines
    }
  }

  async close(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    if (stream) await new Promise<void>((done) => stream.end(() => done()));
  }
}

const isPosition = (value: unknown): value is { offset: number } =>
  typeof value === 'object' && value !== null && Number.isSafeInteger((value as { offset?: unknown }).offset) && (value as { offset: number }).offset >= 0;

/** Reads the layer's log file: a token is a byte offset into it (the file is only appended to). */
export class FileLogSource implements LogSource {
  constructor(private readonly path: string) {}

  async read(query: LogQuery): Promise<LogPage> {
    let offset = query.nextToken ? decodeToken(query.nextToken, isPosition).offset : 0;
    const items: LogLine[] = [];
    const file = await open(this.path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined; // nothing written yet
      throw err;
    });
    if (!file) return { items, followToken: encodeToken({ offset }) };
    try {
      const { size } = await file.stat();
      let carry = Buffer.alloc(0);
      let at = offset; // where the next read starts
      while (at < size) {
        const chunk = Buffer.alloc(Math.min(CHUNK_BYTES, size - at));
        const { bytesRead } = await file.read(chunk, 0, chunk.length, at);
        if (!bytesRead) break;
        at += bytesRead;
        const text = Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
        const textAt = at - text.length; // the file offset of text[0]
        let start = 0;
        for (let nl = text.indexOf(10); nl !== -1; nl = text.indexOf(10, start)) {
          const raw = text.subarray(start, nl).toString('utf8');
          start = nl + 1;
          offset = textAt + start; // past this whole line
          const line = parse(raw);
          if (line && matchesQuery(line, query)) {
            items.push(line);
            if (items.length === query.limit) return { items, nextToken: encodeToken({ offset }), followToken: encodeToken({ offset }) };
          }
        }
        carry = text.subarray(start); // a line still being written
      }
      return { items, followToken: encodeToken({ offset }) };
    } finally {
      await file.close();
    }
  }
}

function parse(raw: string): LogLine | undefined {
  if (!raw.startsWith('{')) return undefined;
  try {
    return toLogLine(JSON.parse(raw));
  } catch {
    return undefined;
  }
}
