// Powertools for every handler: the logger (one per handler's service), the X-Ray tracer with its
// middy middleware, and the AWS SDK clients captured for X-Ray as core/aws/clients.ts builds them.
//
// On AWS each function is its own process, so its service is POWERTOOLS_SERVICE_NAME and its
// tracer is on (the functions' tracing is Active). The local layer runs every handler in one
// process: it turns the tracer off (POWERTOOLS_TRACE_ENABLED=false, before this module loads), so
// neither the tracer nor its middleware is loaded and the clients are left as built; and it runs each
// invocation under its function's service (asService), so that a line says which handler wrote it.
import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@aws-lambda-powertools/logger';
import type { LogItem } from '@aws-lambda-powertools/logger';
import type { LogItemExtraInput, LogItemMessage } from '@aws-lambda-powertools/logger/types';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy from '@middy/core';
import { captureClientsWith } from '#core/aws/clients.ts';

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

/**
 * X-Ray's tracer, or none where tracing is off (POWERTOOLS_TRACE_ENABLED=false: the local layer):
 * then neither it nor the X-Ray SDK is even loaded (150 to 400 ms here), the handlers are plain
 * middy handlers and the clients are left as built. Elsewhere the tracer decides for itself (it is
 * off outside a Lambda execution environment).
 */
export const tracer: Tracer | undefined =
  process.env.POWERTOOLS_TRACE_ENABLED?.toLowerCase() === 'false' ? undefined : new (await import('@aws-lambda-powertools/tracer')).Tracer();

// Every AWS SDK client the handlers' services build gets a subsegment per call.
if (tracer) captureClientsWith((client) => tracer.captureAWSv3Client(client));

/** A handler as middy runs it, with the tracer's middleware first (its segment spans the rest). */
export function tracedHandler<E, R>(handler: (event: E) => Promise<R>) {
  const handled = middy(handler);
  return tracer ? handled.use(captureLambdaHandler(tracer)) : handled;
}
