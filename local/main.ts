// `npm start` / `xl up`: the embedded local layer, until SIGINT, SIGTERM or SIGHUP, or until the npm
// that launched it is gone.
import { join } from 'node:path';
import { parseConcurrencySpec } from '../core/pool.ts';
import { LocalLayer, PROJECT_ROOT, parseRuntimeKind } from './layer.ts';
import { agentBundleEnabled, inProcessEnabled, synthCacheEnabled } from './switches.ts';

const env = process.env;
const port = Number(env.XL_PORT ?? 7700);
const heartbeatSeconds = Number(env.XL_HEARTBEAT_SECONDS ?? 60);
if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`XL_PORT must be a port number, got "${env.XL_PORT}"`);
if (!(heartbeatSeconds > 0)) throw new Error(`XL_HEARTBEAT_SECONDS must be a positive number, got "${env.XL_HEARTBEAT_SECONDS}"`);
parseConcurrencySpec(env.XL_MAX_CONCURRENT_TASKS); // a bad value stops the layer now, not each agent later
const runtime = parseRuntimeKind(env.XL_RUNTIME);
// A bad value of a switch stops the layer before anything starts.
inProcessEnabled(env);
synthCacheEnabled(env);
agentBundleEnabled(env);

const layer = new LocalLayer({
  port,
  stateDir: env.XL_STATE_DIR ?? join(PROJECT_ROOT, '.local'),
  heartbeatSeconds,
  pool: env.XL_POOL,
  apiToken: env.XL_API_TOKEN,
  runtime,
  agentImage: env.XL_AGENT_IMAGE,
  quiet: env.XL_QUIET === '1',
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`xl: ${signal}: draining agents and stopping\n`);
  // The contract promises an exit within 15 s whatever happens.
  setTimeout(() => process.exit(1), 14_500).unref();
  await layer.stop();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGHUP', () => void shutdown('SIGHUP'));

// Under npm (`npm start`, `npm run xl up`) a supervisor signals npm, which passes SIGINT and SIGTERM
// to its script's process only (the script `exec`s node so that this is the layer, not a shell that
// dies without passing them on), and can pass nothing when it is SIGKILLed: the layer then finds
// itself re-parented and stops as if signalled, rather than run on orphaned with its agents.
// Started otherwise (a service manager, `nohup xl up &`) its parent's exit is none of its business.
const launcher = env.npm_lifecycle_event ? process.ppid : undefined;
if (launcher !== undefined) {
  setInterval(() => {
    if (process.ppid !== launcher) void shutdown(`npm (pid ${launcher}) is gone`);
  }, 500).unref();
}

try {
  await layer.start();
  process.stdout.write(`xl: ready at ${layer.url}\n`);
  process.stdout.write(`xl: console at ${layer.url}/console\n`);
} catch (err) {
  process.stderr.write(`xl: could not start: ${(err as Error).message}\n`);
  await layer.stop().catch(() => undefined);
  process.exit(1);
}
