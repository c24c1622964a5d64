// dynalite.d.ts shares this file's base name, so TypeScript only reads it when referenced.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- no import form reaches an ambient module file
/// <reference path="./dynalite.d.ts" />
// DynamoDB for the embedded local layer: dynalite in this process, on 127.0.0.1 only.
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { cacheDynaliteExpressions } from './dynalite-expressions.ts';
import { readDynaliteSynchronously } from './dynalite-reads.ts';
import { writeDynaliteInOneBatch } from './dynalite-writes.ts';
import type { RunningService } from './running.ts';

export interface StartDynaliteOptions {
  /** LevelDB directory (created if missing); in memory when absent. */
  path?: string;
  /** 0 or absent: any free port. */
  port?: number;
}

export type RunningDynalite = RunningService;

export async function startDynalite(opts: StartDynaliteOptions = {}): Promise<RunningDynalite> {
  if (opts.path) await mkdir(opts.path, { recursive: true });
  cacheDynaliteExpressions();
  readDynaliteSynchronously();
  writeDynaliteInOneBatch();
  // Tables turn ACTIVE as soon as dynalite can (no simulated delay); waitForActiveTables waits for it.
  const server = dynalite({ path: opts.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    server,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        // dynalite's close waits for the HTTP server, then closes LevelDB; idle keep-alive
        // sockets of SDK clients would otherwise hold the HTTP server open.
        server.close((err?: Error) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

/**
 * dynalite answers CreateTable while the table is still CREATING and turns it ACTIVE a moment later
 * (a timer, then a LevelDB write); an item written in between is refused as "not found". Waits for
 * the tables to be ACTIVE, polling every 10 ms (the SDK's waiter sleeps whole seconds).
 */
export async function waitForActiveTables(ddb: DynamoDBClient, tableNames: readonly string[], timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (const TableName of tableNames) {
    for (;;) {
      const { Table } = await ddb.send(new DescribeTableCommand({ TableName }));
      if (Table?.TableStatus === 'ACTIVE') break;
      if (Date.now() > until) throw new Error(`table ${TableName} is still ${Table?.TableStatus ?? 'missing'} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
