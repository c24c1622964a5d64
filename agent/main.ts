// The agent worker process: `node --import tsx agent/main.ts` locally, the same in the container.
//
// Environment: XL_AGENT_TYPE (required), XL_AGENT_ID (else `<type>-<random>`), XL_AGENT_SLOTS
// (task slots; else XL_MAX_CONCURRENT_TASKS for the type, e.g. `tester=2`; default 1),
// XL_GRACE_SECONDS (default 10), XL_VISIBILITY_CAP_SECONDS (when a running task's message is
// relayed, counted from its receipt: default just under SQS's 12-hour cap; agent/custody.ts),
// XL_WORKSPACE_ROOT (default
// <tmpdir>/xl-workspaces), XL_MIRROR_DIR (default <tmpdir>/xl-mirrors; the agent's warm mirrors are
// in <dir>/<agentId>) and XL_MIRROR_MAX_MB (their total size, default 2048; 0: no mirrors), XL_RUN_DIR (optional: where `<agentId>.pgids` lists the process groups
// of running commands, for a supervisor to reap), XL_LOG_LEVEL (debug|info|warn|error, default
// info), plus the layer's settings (core/config.ts) and AWS_ENDPOINT_URL_* for emulators.
// Model access (README, "Model credentials and isolation"): XL_MODEL_ACCESS (api-key | bedrock |
// none; default api-key when a key is configured, else bedrock with CLAUDE_CODE_USE_BEDROCK=1),
// ANTHROPIC_API_KEY or XL_ANTHROPIC_API_KEY_SECRET (a secret's name or ARN), ANTHROPIC_BASE_URL
// (api-key upstream), AWS_REGION and AWS_ENDPOINT_URL_BEDROCK_RUNTIME (bedrock). Secrets by name
// (`credentialsSecret`, the key's secret): Secrets Manager, or XL_LOCAL_SECRETS_FILE when set.
// Logs are JSON lines on stderr; stdout stays unused.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { AGENT_TYPES, type AgentType } from '../core/agent-types.ts';
import { AgentStore } from '../core/aws/agent-store.ts';
import { DynamoBreakerStore } from '../core/aws/breaker-store.ts';
import { ddbClient, s3Client, secretsManagerClient, sfnClient, sharedSqsClient } from '../core/aws/clients.ts';
import { ExecutionStore } from '../core/aws/execution-store.ts';
import { PayloadStore } from '../core/aws/payload-store.ts';
import { SecretsManagerSource } from '../core/aws/secrets.ts';
import { cloudWatchMetricsSink } from '../core/aws/cloudwatch-metrics.ts';
import { BreakerPolicies, CircuitBreaker } from '../core/breakers.ts';
import { logEventSink } from '../core/events.ts';
import { heartbeatIntervalMs, loadConfig } from '../core/config.ts';
import { DEFAULT_VISIBILITY_CAP_SECONDS } from './custody.ts';
import { newAgentId, parseConcurrencySpec } from '../core/pool.ts';
import type { AgentRuntimeRef } from '../core/records.ts';
import { CachedSecretSource, LocalSecretsFile, type SecretSource, secretValue } from '../core/secrets.ts';
import { ModelProxy } from './model-proxy.ts';
import { killAllProcessesOf, resolveRunAs } from './run-as.ts';
import { Checkpoints } from './checkpoint.ts';
import { checkCapabilities } from './capabilities.ts';
import { RepositoryMirrors, mirrorMaxBytes } from './engines/repository-mirrors.ts';
import { WorkspaceGit } from './engines/workspace-git.ts';
import { batchingEnabled } from './sqs-batcher.ts';
import { ClaudeCodeDriver } from './drivers/claude-code.ts';
import { CommandDriver } from './drivers/command.ts';
import { type Logger, Worker } from './worker.ts';
import { Workspaces } from './workspace.ts';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof LEVELS;

/** JSON lines on stderr, one per event, with the agent's id on each. */
function jsonLogger(base: Record<string, unknown>, level: Level = 'info', out: NodeJS.WritableStream = process.stderr): Logger {
  const min = LEVELS[level];
  const write = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < min) return;
    out.write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...fields }) + '\n');
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}

function positive(name: string, fallback: number, integer = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || (integer && (!Number.isInteger(value) || value < 1))) {
    throw new Error(`${name} must be a ${integer ? 'positive integer' : 'non-negative number'}, got "${raw}"`);
  }
  return value;
}

/** ECS tasks say who they are through the task metadata endpoint; anything else is a process. */
async function runtimeRef(): Promise<AgentRuntimeRef> {
  // A container the local layer started (local/docker-runtime.ts): it is known by its name.
  const kind = process.env.XL_CONTAINER_RUNTIME;
  if ((kind === 'docker' || kind === 'containerd') && process.env.XL_CONTAINER_ID) return { kind, containerId: process.env.XL_CONTAINER_ID };
  const uri = process.env.ECS_CONTAINER_METADATA_URI_V4;
  if (uri) {
    try {
      const res = await fetch(`${uri}/task`, { signal: AbortSignal.timeout(3000) });
      const body = (await res.json()) as { TaskARN?: string };
      if (body.TaskARN) return { kind: 'ecs', taskArn: body.TaskARN };
    } catch {
      // fall through: still a process
    }
  }
  return { kind: 'process', pid: process.pid };
}

/** The loopback model-credential proxy for this worker's Claude Code runs, or none (see the header). */
async function modelProxy(env: NodeJS.ProcessEnv, secrets: SecretSource, log: Logger): Promise<ModelProxy | undefined> {
  const key = env.ANTHROPIC_API_KEY;
  const keySecret = env.XL_ANTHROPIC_API_KEY_SECRET;
  const mode = env.XL_MODEL_ACCESS || (key || keySecret ? 'api-key' : env.CLAUDE_CODE_USE_BEDROCK === '1' ? 'bedrock' : 'none');
  const onRefused = (why: string, fields: Record<string, unknown>) => log.warn(`model proxy refused a request: ${why}`, fields);
  let proxy: ModelProxy;
  if (mode === 'none') return undefined;
  if (mode === 'api-key') {
    if (!key && !keySecret) throw new Error('XL_MODEL_ACCESS=api-key needs ANTHROPIC_API_KEY or XL_ANTHROPIC_API_KEY_SECRET');
    // An ECS secret arrives as the secret's whole text: a JSON secret's `apiKey` is read out of it.
    // Read once (an environment value does not rotate), so a malformed one stops the agent now.
    const fixed = key ? secretValue('ANTHROPIC_API_KEY', key) : undefined;
    const apiKey = fixed ? async () => fixed : () => secrets.get(keySecret!);
    proxy = new ModelProxy({ mode, apiKey, upstream: env.ANTHROPIC_BASE_URL || undefined, onRefused });
  } else if (mode === 'bedrock') {
    const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
    if (!region) throw new Error('XL_MODEL_ACCESS=bedrock needs AWS_REGION');
    proxy = new ModelProxy({ mode, region, credentials: defaultProvider(), upstream: env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME || undefined, onRefused });
  } else {
    throw new Error(`XL_MODEL_ACCESS must be api-key, bedrock or none, got "${mode}"`);
  }
  await proxy.listen();
  log.info('model access through the loopback proxy', { mode, url: proxy.url, key: key ? 'ANTHROPIC_API_KEY' : keySecret });
  return proxy;
}

async function main(): Promise<void> {
  const type = process.env.XL_AGENT_TYPE as AgentType | undefined;
  if (!type || !AGENT_TYPES.includes(type)) {
    throw new Error(`XL_AGENT_TYPE must be one of ${AGENT_TYPES.join(', ')}, got "${type ?? ''}"`);
  }
  const runtime = await runtimeRef();
  // On ECS the pool manager knows an agent by its task id (RunTask's answer), so the agent takes it.
  const agentId =
    process.env.XL_AGENT_ID ||
    (runtime.kind === 'ecs' ? runtime.taskArn.split('/').pop()! : newAgentId(type));
  const level = (process.env.XL_LOG_LEVEL ?? 'info') as Level;
  const log = jsonLogger({ agentId }, level in LEVELS ? level : 'info');

  const config = loadConfig();
  const runAs = resolveRunAs(process.env.XL_AGENT_RUN_AS);
  log.info('commands run as', { user: runAs?.name ?? 'the agent\'s own user (no switch: isolation is weaker)' });
  const clients = { ddb: ddbClient(), s3: s3Client(), sqs: sharedSqsClient(), sfn: sfnClient() };
  const secrets = new CachedSecretSource(
    process.env.XL_LOCAL_SECRETS_FILE ? new LocalSecretsFile(process.env.XL_LOCAL_SECRETS_FILE) : new SecretsManagerSource(secretsManagerClient()),
  );
  const models = await modelProxy(process.env, secrets, log);
  // Kept in the proxy only: nothing the worker starts (git, the drivers' processes) inherits it.
  delete process.env.ANTHROPIC_API_KEY;
  // XL_AGENT_SLOTS (this process) over XL_MAX_CONCURRENT_TASKS (per type), else one at a time.
  const slots = positive('XL_AGENT_SLOTS', parseConcurrencySpec(process.env.XL_MAX_CONCURRENT_TASKS)[type] ?? 1, true);
  // In the container the agent's user is this agent's alone (XL_REAP_USER_PROCESSES, set by the task
  // definition): with one task at a time, nothing of that user outlives a run of it.
  const reap = runAs && slots === 1 && process.env.XL_REAP_USER_PROCESSES === '1' ? () => killAllProcessesOf(runAs) : undefined;
  const claude = new ClaudeCodeDriver({
    ...(reap ? { reap } : {}),
    runAs,
    ...(models ? { modelAccess: models } : {}),
    silenceSeconds: positive('XL_CLAUDE_SILENCE_SECONDS', 300),
  });
  const capabilityIssues = await checkCapabilities({ claudeBin: claude.bin, modelAccess: models !== undefined });
  for (const issue of capabilityIssues) log.warn('capability check', { ...issue });
  const runDir = process.env.XL_RUN_DIR;
  const payloads = new PayloadStore(clients.s3, config.bucket);
  // `credentialsSecret` names a secret the worker reads (Secrets Manager, or the local secrets file).
  // The agent's warm mirrors: its own directory (0700), under XL_MIRROR_DIR or the temporary one.
  const mirrorBytes = mirrorMaxBytes(process.env.XL_MIRROR_MAX_MB);
  const mirrors = mirrorBytes
    ? new RepositoryMirrors({
        root: join(process.env.XL_MIRROR_DIR || join(tmpdir(), 'xl-mirrors'), agentId),
        maxBytes: mirrorBytes,
        onTrouble: (repository, error) => log.warn('a repository mirror could not be used; cloning from the origin', { repository, error }),
      })
    : undefined;
  const git = new WorkspaceGit({ payloads, owner: runAs, resolveSecret: (name) => secrets.get(name), ...(mirrors ? { mirrors } : {}) });
  const worker = new Worker(
    {
      agentId,
      agentType: type,
      slots,
      queueUrlPrefix: config.queueUrlPrefix,
      heartbeatIntervalMs: heartbeatIntervalMs(config),
      graceMs: positive('XL_GRACE_SECONDS', 10) * 1000,
      capabilityIssues,
      runtime,
      pgidFile: runDir ? join(runDir, `${agentId}.pgids`) : undefined,
      visibilityCapSeconds: positive('XL_VISIBILITY_CAP_SECONDS', DEFAULT_VISIBILITY_CAP_SECONDS),
      // XL_BATCH=0: one SQS call per delete and visibility change (the benchmark's comparison).
      batch: batchingEnabled(process.env.XL_BATCH),
    },
    {
      executions: new ExecutionStore(clients.ddb, config.tables.executions),
      payloads,
      agents: new AgentStore(clients.ddb, config.tables.agents),
      breaker: new CircuitBreaker(new DynamoBreakerStore(clients.ddb, config.tables.breakers), { policy: BreakerPolicies.parse(process.env.XL_BREAKER_POLICY), events: logEventSink(log) }),
      sqs: clients.sqs,
      sfn: clients.sfn,
      drivers: {
        command: new CommandDriver({ runAs, ...(reap ? { reap } : {}) }),
        'claude-code': claude,
      },
      workspaces: new Workspaces(process.env.XL_WORKSPACE_ROOT || undefined),
      git,
      checkpoints: new Checkpoints({ payloads, git, owner: runAs }),
      // EMF on stdout, which the container's log driver carries to CloudWatch (off locally).
      metrics: cloudWatchMetricsSink(`xl-agent-${type}`, (err) => log.warn('could not write a metric', { error: (err as Error).message })),
      log,
    },
  );

  // First SIGTERM/SIGINT: drain (finish within the grace period, then hand back). Second: hand
  // back at once. Either way the process exits 0 once the agent is marked terminated. SIGTERM is
  // ECS's StopTask and the pool's drain: the queues stay, so the agent's long polls are answered
  // and released first. SIGINT is the local layer stopping with its queues: nothing to wait for.
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    log.info('signal received', { signal, graceful: signals === 1 });
    void worker.stop({ graceful: signals === 1, awaitPolls: signal === 'SIGTERM' });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A log stream whose reader is gone (the local layer died) must not turn every write into an
  // uncaught error that is logged again: that loop once spun an orphaned agent at 100% CPU.
  process.stderr.on('error', () => undefined);
  // An unexpected error leaves the worker in an unknown state: hand the tasks back and exit, and
  // the pool manager starts a fresh agent.
  const fail = (what: string) => (err: unknown) => {
    log.error(what, { error: (err as Error)?.stack ?? String(err) });
    exitAfter(worker.stop({ graceful: false }), 1);
  };
  process.on('uncaughtException', fail('uncaught exception'));
  process.on('unhandledRejection', fail('unhandled rejection'));
  // Locally the layer's process supervises its agents: when it is gone, so are the emulators, and
  // an agent left behind would only poll nothing forever.
  const supervisor = Number(process.env.XL_SUPERVISOR_PID);
  if (supervisor > 0) {
    setInterval(() => {
      if (process.ppid !== supervisor) {
        log.warn('the local layer is gone; exiting', { supervisor });
        exitAfter(worker.stop({ graceful: false }), 0);
      }
    }, 1000).unref();
  }

  await worker.start();
  await worker.done;
  await mirrors?.clear().catch(() => undefined);
  process.exit(0);
}

/** Exits once `work` settles, or after 5 s whatever happens. */
function exitAfter(work: Promise<unknown>, code: number): void {
  setTimeout(() => process.exit(code), 5000).unref();
  void work.finally(() => process.exit(code));
}

main().catch((err: unknown) => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'agent failed to start', error: String((err as Error)?.message ?? err) }) + '\n');
  process.exit(1);
});
