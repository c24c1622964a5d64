// What a local emulator launcher (dynalite, fauxqs) gives back.
import type { Server } from 'node:http';

export interface RunningService {
  endpoint: string;
  port: number;
  /** The HTTP server, for request counters (benchmarks). */
  server: Server;
  close(): Promise<void>;
}
