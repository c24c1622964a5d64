// Powertools' logger for every handler (one per handler's service), and the middy handler they run as.
//
// On AWS each function is its own process, so its service is POWERTOOLS_SERVICE_NAME. The local
// layer runs every handler in one process: it runs each invocation under its function's service
// (asService), so that a line says which handler wrote it.
//
// Traces carry no SDK in the bundle: Lambda's active tracing gives each invocation its segment, and
// spans per AWS SDK call come, when wanted, from the OpenTelemetry layer the `otelLayerArn` context key
// adds (infra/constructs/functions.ts; README "Observability"). The X-Ray SDKs (and Powertools' Tracer
// over them) are in maintenance mode since 2026-02-25, end of support 2027-02-25.
import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import type { LogItem } from '@aws-lambda-powertools/logger';
import type { LogItemExtraInput, LogItemMessage } from '@aws-lambda-powertools/logger/types';
import middy from '@middy/core';

/** A structured log line as written (Powertools' keys: level, message, timestamp, service, ...). */
export type LogRecord = Record<string, unknown>;

const taps = new Set<(line: LogRecord) => void>();

/** Powertools' logger, whose lines can also be handed to taps (the local layer's log file). */
class TappedLogger extends Logger {
  protected override printLog(logLevel: number, log: LogItem): void {
    super.printLog(logLevel, log);
    if (!taps.size) return; // on AWS: nothing more than Powertools does
    const line = JSON.parse(JSON.stringify(log.getAttributes(), this.getJsonReplacer())) as LogRecord;
    for (const tap of taps) tap(line);
  }

  protected override createLogger(options?: ConstructorParameters<typeof Logger>[0]): Logger {
    return new TappedLogger(options);
  }
}

/** Every handler log line, as written, also goes to `tap` until the returned function is called. */
export function tapLogs(tap: (line: LogRecord) => void): () => void {
  taps.add(tap);
  return () => taps.delete(tap);
}

const root = new TappedLogger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'xl' });
const services = new Map<string, Logger>();
const current = new AsyncLocalStorage<Logger>();

/** Runs `work` (an invocation and all it awaits) with `serviceName` on its log lines. */
export function asService<T>(serviceName: string, work: () => T): T {
  let logger = services.get(serviceName);
  if (!logger) services.set(serviceName, (logger = root.createChild({ serviceName })));
  return current.run(logger, work);
}

const active = () => current.getStore() ?? root;

/** The handlers' logger: the invocation's service's (asService), else this function's. */
export const logger: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'> = {
  debug: (input: LogItemMessage, ...extra: LogItemExtraInput) => active().debug(input, ...extra),
  info: (input: LogItemMessage, ...extra: LogItemExtraInput) => active().info(input, ...extra),
  warn: (input: LogItemMessage, ...extra: LogItemExtraInput) => active().warn(input, ...extra),
  error: (input: LogItemMessage, ...extra: LogItemExtraInput) => active().error(input, ...extra),
};

/** A handler as middy runs it (the API's functions add their middlewares to it). */
export function lambdaHandler<E, R>(handler: (event: E) => Promise<R>) {
  return middy(handler);
}
