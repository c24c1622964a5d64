// The embedded local layer: the synthesized template brought up on one machine with no AWS account,
// no Docker and no network. dynalite and fauxqs stand in for DynamoDB, SQS and S3; the local Step
// Functions service runs the template's own ASL; the template's Lambda handler modules run in this
// process; agents are worker processes with their task definition's environment.
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';
import type { AgentType } from '#core/agent-types.ts';
import { API_GROUPS, API_GROUP_ENTRIES, type ApiGroup, apiGroupOf } from '#core/api-groups.ts';
import { workflowRunName } from '#core/records.ts';
import { handleRequestsWith, requestHandlerOf, sqsClient } from '#core/aws/clients.ts';
import { heartbeatIntervalMs } from '#core/config.ts';
import { registerLogSource } from '#core/logs.ts';
import { registerRuntime } from '#core/runtime.ts';
import { fanOut, registerEventSink } from '#core/events.ts';
import { WebhookSink, webhookFromEnv } from '#core/webhook.ts';
import { type ContainerSpec, agentTypeOf, containerSpec } from '#core/container-spec.ts';
import { resolveDefinition } from '../infra/asl.ts';
import { startDynalite } from './services/dynalite.ts';
import { startFauxqs127 } from './services/fauxqs.ts';
import { InProcessHandler } from './services/in-process.ts';
import { EventRing, serveEvents } from './events.ts';
import { serveConsole } from './console.ts';
import { artifactRoute, serveArtifact } from './artifacts.ts';
import { type ExecutionStatusChangeEvent, LocalStepFunctions } from './stepfunctions/index.ts';
import { killLeftoverWorkers, reapLeftoverGroups } from './leftovers.ts';
import { pidState } from './processes.ts';
import { FileLogSource, LayerLogFile } from './logs.ts';
import { DEFAULT_AGENT_IMAGE, DockerRuntime, LAYER_LABEL, layerIdOf } from './docker-runtime.ts';
import { ContainerdRuntime } from './containerd-runtime.ts';
// Type only: @kubernetes/client-node costs about 100 MB of the process's memory and a second to
// load, so prepareKubernetes imports it, with XL_RUNTIME=kubernetes only.
import type { KubernetesRuntime } from '#core/kubernetes-runtime.ts';
import { ProcessRuntime } from './process-runtime.ts';
import { type AgentCommand, bundleAgent, tsxAgentCommand } from './agent-bundle.ts';
import { agentBundleEnabled, inProcessEnabled } from './switches.ts';
import { provisionBuckets, provisionQueues, provisionTables } from './provision.ts';
import { cachedTemplate } from './synth-cache.ts';
import { type CfnTemplate, LOCAL_REGION, localNames, resolveValue, resourcesOfType } from './template.ts';

export const PROJECT_ROOT = resolve(import.meta.dirname, '..');
const STACK_NAME = 'xl';
const MAX_REQUEST_BYTES = 2 * 1024 * 1024; // the API itself answers 413 above 1 MiB

export interface LayerOptions {
  port: number;
  stateDir: string;
  heartbeatSeconds: number;
  pool?: string;
  apiToken?: string;
  /** What an agent is: a worker process (default) or a container of the agent image (XL_RUNTIME). */
  runtime?: LocalRuntimeKind;
  /** The agent image for the docker runtime (XL_AGENT_IMAGE; default xl-agent:latest, `npm run image`). */
  agentImage?: string;
  /** Quieter logs for tests and benchmarks. */
  quiet?: boolean;
  /**
   * Tests only (local/main.ts never sets it): wraps each template function's handler, named by its
   * entry module, so that a test can put a stand-in that fails around the real handler.
   */
  wrapHandler?: (entry: string, handler: Handler) => Handler;
}

export type Handler = (event: unknown, context?: unknown) => Promise<unknown>;

export const LOCAL_RUNTIMES = ['process', 'docker', 'containerd', 'kubernetes'] as const;
export type LocalRuntimeKind = (typeof LOCAL_RUNTIMES)[number];

/** XL_RUNTIME: `process` (the default), `docker`, `containerd` or `kubernetes`; anything else stops the layer before it starts. */
export function parseRuntimeKind(value: string | undefined): LocalRuntimeKind {
  if (!value) return 'process';
  if ((LOCAL_RUNTIMES as readonly string[]).includes(value)) return value as LocalRuntimeKind;
  throw new Error(`XL_RUNTIME must be one of ${LOCAL_RUNTIMES.join(', ')}, got "${value}" (docker, containerd: agents in containers of \`npm run image\`; kubernetes: agents as Jobs in the kubeconfig's cluster)`);
}

/**
 * XL_AGENT_MEMORY_MIB: every agent container's memory limit, over its task definition's (tests that
 * run a task out of memory set a small one). Docker refuses less than 6 MiB; the worker needs far more.
 */
export function parseAgentMemory(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 64) throw new Error(`XL_AGENT_MEMORY_MIB must be a whole number of MiB, at least 64, got "${value}"`);
  return n;
}

const lambdaContext = (name: string) => ({
  functionName: name,
  functionVersion: '$LATEST',
  invokedFunctionArn: `arn:aws:lambda:${LOCAL_REGION}:000000000000:function:${name}`,
  memoryLimitInMB: '1024',
  awsRequestId: crypto.randomUUID(),
  logGroupName: `/aws/lambda/${name}`,
  logStreamName: 'local',
  callbackWaitsForEmptyEventLoop: false,
  getRemainingTimeInMillis: () => 60_000,
});

export class LocalLayer {
  private closers: (() => Promise<void>)[] = [];
  private timers: NodeJS.Timeout[] = [];
  private server?: Server;
  runtime?: ProcessRuntime | DockerRuntime | ContainerdRuntime | KubernetesRuntime;
  sfn?: LocalStepFunctions;
  url = '';
  /** Requests served per `service:Operation` (DynamoDB, SQS, S3, Step Functions over HTTP). */
  readonly requests = new Map<string, number>();
  /** Of those, the ones the layer's own clients made in process (XL_LOCAL_INPROCESS), not over HTTP. */
  requestsInProcess = 0;
  /** How long start() took, in ms. */
  bootMs = 0;
  /** Whether this start read the template from the cache (local/synth-cache.ts) instead of synthesizing. */
  templateCached = false;
  /** The layer's recent events, for GET /events. */
  readonly events = new EventRing();
  private webhook?: WebhookSink;

  constructor(private readonly opts: LayerOptions) {}

  private log(message: string): void {
    if (!this.opts.quiet) process.stderr.write(`xl: ${message}\n`);
  }

  async start(): Promise<void> {
    const began = performance.now();
    const { stateDir } = this.opts;
    await mkdir(stateDir, { recursive: true });
    // Private: the queues' database holds task tokens, which agents' commands must never read.
    await chmod(stateDir, 0o700);
    await this.refuseSecondInstance();
    // An earlier layer on this state dir that was killed may have left workers (for the second they
    // take to notice) and their commands: they go before anything can claim or re-dispatch a task.
    const runDir = join(stateDir, 'run');
    const workers = await killLeftoverWorkers(runDir);
    const groups = await reapLeftoverGroups(runDir);
    if (workers.length || groups) this.log(`killed ${workers.length} worker(s) and ${groups} command group(s) of the earlier run`);

    // The handlers' events (functions/lib/deps.ts) go to GET /events and, with XL_WEBHOOK_URL, to the
    // webhook; a bad URL or a missing secret fails the start, naming the variable.
    const hook = webhookFromEnv(process.env);
    if (hook) this.webhook = new WebhookSink({ ...hook, log: { warn: (message) => this.log(message) } });
    registerEventSink(fanOut([this.events, this.webhook]));

    const template = await this.synthesize();
    // Containers: the engine, the image and the settings are checked, and what a killed layer on
    // this state dir left is removed, before anything starts (no layer comes up that has no agents).
    const containers = this.opts.runtime === 'docker' || this.opts.runtime === 'containerd' ? await this.prepareContainers(template, this.opts.runtime) : undefined;
    const kubernetes = this.opts.runtime === 'kubernetes' ? await this.prepareKubernetes(template) : undefined;
    const dynamo = await startDynalite({ path: join(stateDir, 'dynamodb') });
    this.closers.push(() => dynamo.close());
    const fauxqs = await startFauxqs127({ dataDir: join(stateDir, 'sqs') });
    this.closers.push(() => fauxqs.close());
    this.countRequests(dynamo.server, () => 'dynamodb');
    this.countRequests(fauxqs.server, (target) => (target.startsWith('AmazonSQS') ? 'sqs' : 's3'));

    // The real SDK clients everywhere, pointed at the emulators through the standard variables.
    Object.assign(process.env, {
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_SQS: fauxqs.endpoint,
      AWS_ENDPOINT_URL_S3: fauxqs.endpoint,
      ...localPowertools(process.env),
    });
    // This process's own clients (the in-process Lambda handlers', the state machines', provisioning)
    // call the emulators without a socket (XL_LOCAL_INPROCESS=0: over HTTP); everything else keeps
    // the endpoints above. Set before any client is built: each is built once, with its handler.
    if (inProcessEnabled(process.env)) {
      const sqsAndS3 = new InProcessHandler(fauxqs.server);
      handleRequestsWith({ dynamodb: new InProcessHandler(dynamo.server), sqs: sqsAndS3, s3: sqsAndS3 });
      this.closers.push(async () => handleRequestsWith({}));
    }
    const names = localNames(template, STACK_NAME, fauxqs.endpoint);
    await provisionTables(new DynamoDBClient(requestHandlerOf('dynamodb')), template, names);
    const sqs = sqsClient();
    await provisionQueues(sqs, template, names);
    await provisionBuckets(new S3Client({ forcePathStyle: true, ...requestHandlerOf('s3') }), template, names);

    // Lambda functions: the module each one bundles, with the environment the template gives it.
    // Loaded now, after the Powertools settings above (read once, as the modules load).
    const { asService, tapLogs } = await import('../functions/lib/observability.ts');
    // The layer's log (`xl logs`): the functions' lines and the agents', in one file.
    const layerLog = new LayerLogFile(join(stateDir, 'logs', 'layer.jsonl'));
    await layerLog.open();
    const untap = tapLogs((line) => layerLog.write(line));
    this.closers.push(async () => {
      untap();
      registerLogSource(undefined);
      await layerLog.close();
    });
    registerLogSource(new FileLogSource(layerLog.path));
    const lambdas: Record<string, Handler> = {};
    const byEntry = new Map<string, Handler>();
    for (const [id, fn] of resourcesOfType(template, 'AWS::Lambda::Function')) {
      const entry = fn.Metadata?.['xl:entry'] as string | undefined;
      if (!entry) continue; // CDK's own helper functions (log retention, custom resources)
      const env = resolveValue((fn.Properties?.Environment as { Variables?: object })?.Variables ?? {}, names) as Record<string, string>;
      Object.assign(process.env, env);
      const module = (await import(join(PROJECT_ROOT, entry))) as { handler: (e: unknown, c: unknown) => Promise<unknown> };
      // Each function's lines name its own service, as on AWS where each is its own process.
      const service = env.POWERTOOLS_SERVICE_NAME ?? id;
      const real: Handler = (event) => asService(service, () => module.handler(event, lambdaContext(id)));
      const handler = this.opts.wrapHandler?.(entry, real) ?? real;
      lambdas[names.attrs.get(id)!.Arn!] = handler;
      byEntry.set(entry, handler);
    }
    if (this.opts.pool !== undefined) process.env.XL_POOL = this.opts.pool;
    if (this.opts.apiToken) process.env.XL_API_TOKEN = this.opts.apiToken;
    process.env.XL_START_ALLOWANCE_SECONDS = String(Math.max(30, this.opts.heartbeatSeconds));
    // Agents start in about 2 s here, and a pool round comes each heartbeat interval (core/config.ts).
    process.env.XL_POOL_START_SECONDS ??= '2';
    process.env.XL_POOL_REACTION_SECONDS ??= String(Math.ceil(2.5 * (2 + this.opts.heartbeatSeconds / 3)));

    // EventBridge rules on Step Functions status changes, routed to their target functions. An event
    // whose handler throws goes to the target's dead-letter queue, as on AWS once Lambda's retries
    // are spent, for the execution-events reconcile to drain.
    const queueUrlByArn = new Map(resourcesOfType(template, 'AWS::SQS::Queue').map(([id]) => [names.attrs.get(id)!.Arn!, names.attrs.get(id)!.QueueUrl!]));
    const statusTargets = resourcesOfType(template, 'AWS::Events::Rule')
      .filter(([, r]) => JSON.stringify(r.Properties?.EventPattern ?? {}).includes('aws.states'))
      .flatMap(([, r]) => (r.Properties?.Targets as { Arn: unknown; DeadLetterConfig?: { Arn: unknown } }[]) ?? [])
      .map((t) => ({
        handler: lambdas[resolveValue(t.Arn, names) as string],
        deadLetters: t.DeadLetterConfig ? queueUrlByArn.get(resolveValue(t.DeadLetterConfig.Arn, names) as string) : undefined,
      }))
      .filter((t): t is { handler: Handler; deadLetters: string | undefined } => t.handler !== undefined);
    const deliverStatus = async (event: ExecutionStatusChangeEvent) => {
      for (const target of statusTargets) {
        try {
          await target.handler(event);
        } catch (err) {
          this.log(`status event failed: ${(err as Error).message}`);
          if (target.deadLetters) {
            await sqs
              .send(new SendMessageCommand({ QueueUrl: target.deadLetters, MessageBody: JSON.stringify(event) }))
              .catch((e) => this.log(`status event lost: ${(e as Error).message}`));
          }
        }
      }
    };

    const stateMachines = resourcesOfType(template, 'AWS::StepFunctions::StateMachine').map(([id]) => ({
      arn: names.ref.get(id)!,
      name: names.attrs.get(id)!.Name!,
      definition: resolveDefinition(template as never, id, (token) => String(resolveValue(token, names))) as object,
    }));
    this.sfn = new LocalStepFunctions({
      stateMachines,
      lambdas,
      sqs,
      stateDir: join(stateDir, 'stepfunctions'),
      // Sent once the executions they belong to are resumed (recoverFromEarlierRun).
      holdRecoveredNotices: true,
      onStatusChange: deliverStatus,
    });
    const sfn = await this.sfn.start();
    this.countRequests(this.sfn.httpServer, () => 'states');
    process.env.AWS_ENDPOINT_URL_SFN = sfn.endpoint;
    this.closers.push(() => this.sfn!.close());

    // Agents: worker processes, or containers, with the environment of their type's task definition.
    const agentEnv = this.agentEnvironments(template, names);
    await mkdir(runDir, { recursive: true });
    const workerLog = this.opts.quiet ? createWriteStream(join(stateDir, 'agents.log'), { flags: 'a' }) : undefined;
    const onLogLine = (line: string) => layerLog.writeAgentLine(line);
    const onExit = (agentId: string) => {
      this.log(`agent ${agentId} exited`);
      void this.reconcileSoon();
    };
    // What the layer adds to every agent's environment, worker process or container.
    const localEnv = (agentId: string) => ({
      // How Claude Code reaches the model is the host's choice here, not the template's (Bedrock or a key secret on AWS).
      XL_MODEL_ACCESS: process.env.XL_MODEL_ACCESS ?? '',
      ...pick(process.env, ['AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_ENDPOINT_URL_DYNAMODB', 'AWS_ENDPOINT_URL_SQS', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_SFN']),
      // A container credentials endpoint, as ECS gives one to the agent's container (when the
      // layer itself runs in such a container): the worker holds it, its agents' processes never.
      ...pick(process.env, ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI']),
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
      XL_HEARTBEAT_SECONDS: String(this.opts.heartbeatSeconds),
      // How long a drained agent lets its task finish before handing it back (checkpointed).
      XL_GRACE_SECONDS: process.env.XL_GRACE_SECONDS ?? '10',
      XL_AGENT_ID: agentId,
    });
    // A container agent's environment, whatever runs it: the image's PATH, HOME, user to run agents
    // as and Claude Code CLI stay (the host's are not its), and the task definition's
    // XL_REAP_USER_PROCESSES=1 holds (one agent per container); its resources are its cgroup's.
    const containerEnv = (kind: string, agentId: string, containerId: string) => ({
      ...pick(process.env, ['XL_AGENT_SLOTS', 'XL_MAX_CONCURRENT_TASKS', 'XL_LOG_LEVEL', 'XL_CLAUDE_MODEL', 'ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL', 'XL_ANTHROPIC_API_KEY_SECRET', 'XL_BREAKER_POLICY', 'XL_BATCH', 'XL_MIRROR_MAX_MB']),
      ...localEnv(agentId),
      XL_CONTAINER_RUNTIME: kind,
      XL_CONTAINER_ID: containerId,
      XL_RESOURCE_SOURCE: 'cgroup',
    });
    const resolve = (value: unknown) => resolveValue(value, names);
    if (containers) {
      const kind = containers.runtime instanceof DockerRuntime ? 'docker' : 'containerd';
      const specFor = (type: AgentType, agentId: string, containerName: string) => containers.specFor(type, agentId, resolve, containerEnv(kind, agentId, containerName));
      this.runtime =
        containers.runtime instanceof DockerRuntime
          ? new DockerRuntime({ docker: containers.runtime.docker, layerId: containers.layerId, logStream: workerLog, onLogLine, specFor, onExit })
          : new ContainerdRuntime({ ...containers.runtime.options, logStream: workerLog, onLogLine, specFor, onExit });
    } else if (kubernetes) {
      this.runtime = new kubernetes.KubernetesRuntime({
        ...kubernetes.settings,
        kubeConfig: kubernetes.probe.kc,
        ownerLabels: kubernetes.ownerLabels,
        // Secret variables become references to the Secret (XL_K8S_SECRET), and loopback endpoints
        // the service host (XL_K8S_SERVICE_HOST), in core/kubernetes-runtime.ts.
        specFor: (type, agentId, jobName) => kubernetes.specFor(type, agentId, resolve, containerEnv('kubernetes', agentId, jobName)),
        onExit,
      });
    } else {
      this.runtime = new ProcessRuntime({
        projectRoot: PROJECT_ROOT,
        command: await this.agentCommand(),
        runDir,
        logStream: workerLog,
        onLogLine,
        envFor: (type, agentId) => ({
          ...pick(process.env, ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR', 'USER', 'SHELL', 'NODE_OPTIONS', 'XL_AGENT_SLOTS', 'XL_MAX_CONCURRENT_TASKS', 'XL_LOG_LEVEL', 'XL_AGENT_RUN_AS', 'XL_CLAUDE_BIN', 'XL_CLAUDE_MODEL', 'ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL', 'XL_ANTHROPIC_API_KEY_SECRET', 'XL_LOCAL_SECRETS_FILE', 'XL_BREAKER_POLICY', 'XL_BATCH', 'XL_MIRROR_DIR', 'XL_MIRROR_MAX_MB']),
          ...(agentEnv.get(type) ?? {}),
          // Local agents share one user (`nobody`): killing all of its processes would kill each other's runs.
          XL_REAP_USER_PROCESSES: '',
          ...localEnv(agentId),
        }),
        onExit,
      });
    }
    registerRuntime(this.runtime);
    process.env.XL_HEARTBEAT_SECONDS = String(this.opts.heartbeatSeconds);

    const pool = byEntry.get('functions/pool-manager.ts');
    const health = byEntry.get('functions/health-monitor.ts');
    const executionEvents = byEntry.get('functions/execution-events.ts');
    if (!pool || !health || !executionEvents) throw new Error('the template lacks the pool-manager, health-monitor or execution-events function');
    // The API's functions, one per route group: each request goes to its group's, as API Gateway sends it.
    const api = Object.fromEntries(
      API_GROUPS.map((group) => {
        const handler = byEntry.get(API_GROUP_ENTRIES[group]);
        if (!handler) throw new Error(`the template lacks the API's ${group} function (${API_GROUP_ENTRIES[group]})`);
        return [group, handler];
      }),
    ) as Record<ApiGroup, Handler>;
    // One round at a time: the timer, agent exits and submissions all ask for one. The execution
    // reconcile (every few minutes on AWS) rides on the same round here.
    let round: Promise<void> | undefined;
    this.reconcile = () =>
      (round ??= (async () => {
        await health({ source: 'aws.scheduler' });
        await pool({ source: 'aws.scheduler' });
        await executionEvents({ reconcile: true }).catch((e) => this.log(`execution reconcile: ${(e as Error).message}`));
      })().finally(() => (round = undefined)));

    await this.recoverFromEarlierRun();
    await this.reconcile();
    // The schedules: each heartbeat interval locally (a minute on AWS).
    const every = heartbeatIntervalMs(this.opts);
    this.timers.push(setInterval(() => void this.reconcile().catch((e) => this.log(`pool: ${(e as Error).message}`)), every));

    this.server = createServer((req, res) => void this.serve(api, req, res));
    await new Promise<void>((ok, fail) => {
      this.server!.once('error', fail);
      this.server!.listen(this.opts.port, '127.0.0.1', () => ok());
    });
    const address = this.server.address();
    const port = typeof address === 'object' && address ? address.port : this.opts.port;
    this.url = `http://127.0.0.1:${port}`;
    // The contract's { url, pid }, plus the emulators' endpoints for the AWS CLI and SDKs.
    const services = { dynamodb: dynamo.endpoint, sqs: fauxqs.endpoint, s3: fauxqs.endpoint, stepfunctions: sfn.endpoint };
    await writeFile(join(stateDir, 'endpoint.json'), JSON.stringify({ url: this.url, pid: process.pid, services }) + '\n');
    this.bootMs = performance.now() - began;
  }

  private countRequests(server: Server | undefined, service: (target: string) => string): void {
    server?.on('request', (req: IncomingMessage) => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target ? target.slice(target.lastIndexOf('.') + 1) : (req.method ?? '?');
      const key = `${service(target)}:${op}`;
      this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
      if ((req as { isLightMyRequest?: boolean }).isLightMyRequest) this.requestsInProcess++;
    });
  }

  /**
   * XL_RUNTIME=docker or containerd: checks the engine, the image and an agent's settings (a probe
   * container), and removes the containers a killed layer on this state dir left.
   */
  private async prepareContainers(template: CfnTemplate, kind: 'docker' | 'containerd') {
    const image = this.opts.agentImage || DEFAULT_AGENT_IMAGE;
    // One layer per state dir: its containers carry this id, and only its own are removed.
    const layerId = layerIdOf(this.opts.stateDir);
    const { specFor, types } = agentSpecs(template, image, parseAgentMemory(process.env.XL_AGENT_MEMORY_MIB));
    const unused = () => {
      throw new Error('unused');
    };
    const runtime =
      kind === 'docker'
        ? new DockerRuntime({ layerId, specFor: unused })
        : // The containers' volumes and logs: under the state dir, removed with their containers.
          new ContainerdRuntime({ layerId, volumesDir: join(this.opts.stateDir, 'containerd'), specFor: unused });
    const [first] = types;
    await runtime.preflight(image, first ? specFor(first, 'probe', () => '', {}) : undefined);
    const removed = await runtime.removeLeftovers();
    if (removed.length) this.log(`removed ${removed.length} container(s) of the earlier run: ${removed.join(', ')}`);
    return { runtime, layerId, specFor };
  }

  /**
   * XL_RUNTIME=kubernetes: checks the cluster (kubeconfig, API server, namespace, RBAC, a dry run of
   * an agent's pod) and removes the Jobs and pods a killed layer on this state dir left.
   */
  private async prepareKubernetes(template: CfnTemplate) {
    const { specFor, types } = agentSpecs(template, this.opts.agentImage || DEFAULT_AGENT_IMAGE, parseAgentMemory(process.env.XL_AGENT_MEMORY_MIB));
    const { KubernetesRuntime, kubernetesSettingsFromEnv } = await import('#core/kubernetes-runtime.ts');
    const settings = kubernetesSettingsFromEnv(process.env);
    const ownerLabels = { [LAYER_LABEL]: layerIdOf(this.opts.stateDir) };
    const probe = new KubernetesRuntime({ ...settings, ownerLabels, specFor: () => { throw new Error('unused'); } });
    const [first] = types;
    await probe.preflight(first ? specFor(first, 'probe', () => '', {}) : undefined);
    const removed = await probe.removeLeftovers();
    if (removed.length) this.log(`removed ${removed.length} job(s) of the earlier run in namespace ${probe.namespace}: ${removed.join(', ')}`);
    this.log(`agents are Jobs in namespace ${probe.namespace} of ${probe.kc.getCurrentCluster()?.server}`);
    return { KubernetesRuntime, probe, settings, ownerLabels, specFor };
  }

  private reconcile: () => Promise<void> = async () => undefined;
  private reconcileTimer?: NodeJS.Timeout;
  private reconcileSoon(delayMs = 200): void {
    if (this.reconcileTimer) return;
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = undefined;
      void this.reconcile().catch((e) => this.log(`pool: ${(e as Error).message}`));
    }, delayMs);
  }

  private async refuseSecondInstance(): Promise<void> {
    const file = join(this.opts.stateDir, 'endpoint.json');
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (!text) return;
    const { pid } = JSON.parse(text) as { pid: number };
    // Gone, or reused by another user's process: a leftover of a layer that died.
    if (pidState(pid) !== 'ours') return;
    if (pid !== process.pid) throw new Error(`a local layer (pid ${pid}) already runs on ${this.opts.stateDir}`);
  }

  /** How worker processes start: the agent bundled (local/agent-bundle.ts), else through tsx. */
  private async agentCommand(): Promise<AgentCommand> {
    if (!agentBundleEnabled(process.env)) return tsxAgentCommand(PROJECT_ROOT);
    try {
      return await bundleAgent(PROJECT_ROOT);
    } catch (err) {
      this.log(`the agent was not bundled (its workers run agent/main.ts through tsx): ${(err as Error).message}`);
      return tsxAgentCommand(PROJECT_ROOT);
    }
  }

  /** The stack's template: kept between starts until the code that builds it changes (local/synth-cache.ts). */
  private async synthesize(): Promise<CfnTemplate> {
    const { text, cached } = await cachedTemplate(PROJECT_ROOT, async () => {
      const outdir = join(this.opts.stateDir, 'cdk.out');
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'local/synth.ts'), outdir], {
        cwd: PROJECT_ROOT,
        maxBuffer: 16 * 1024 * 1024,
      });
      return readFile(stdout.trim(), 'utf8');
    });
    this.templateCached = cached;
    if (cached) this.log('template unchanged since it was last synthesized: not synthesized again');
    return JSON.parse(text) as CfnTemplate;
  }

  /** The container environment of each agent type's task definition, resolved locally. */
  private agentEnvironments(template: CfnTemplate, names: ReturnType<typeof localNames>): Map<AgentType, Record<string, string>> {
    const out = new Map<AgentType, Record<string, string>>();
    for (const [, td] of resourcesOfType(template, 'AWS::ECS::TaskDefinition')) {
      const type = td.Metadata?.['xl:agentType'] as AgentType | undefined;
      if (!type) continue;
      const containers = (td.Properties?.ContainerDefinitions as { Environment?: { Name: string; Value: unknown }[] }[]) ?? [];
      const env: Record<string, string> = {};
      for (const c of containers) for (const e of c.Environment ?? []) env[e.Name] = String(resolveValue(e.Value, names));
      out.set(type, env);
    }
    return out;
  }

  /**
   * Executions that were running when the layer last stopped go on: each gets a new workflow run
   * over its task records (ExecutionService.resume), which re-runs only what had not finished. The
   * local Step Functions service ended the dead runs FAILED with Local.LayerStopped; their notices
   * are sent after the resumes, so the execution-events handler sees them as superseded runs. The
   * earlier run's agents are gone (killed at start if they were not).
   */
  private async recoverFromEarlierRun(): Promise<void> {
    const { agentStore, executionService, executionStore } = await import('../functions/lib/deps.ts');
    const agents = agentStore();
    for (const agent of await agents.list()) {
      if (agent.status !== 'terminated' && !(await this.runtime!.isAlive(agent.runtime))) {
        await agents.setStatus(agent.agentId, 'terminated');
      }
    }
    for (const execution of await executionStore().listByStatus(['PENDING', 'RUNNING'])) {
      const { executionId } = execution;
      if (this.sfn!.isRunning(workflowRunName(executionId, execution.workflowRun ?? 0))) continue;
      try {
        if (await executionService().resume(executionId)) this.log(`resumed execution ${executionId}`);
      } catch (err) {
        this.log(`could not resume execution ${executionId}: ${(err as Error).message}`);
      }
    }
    await this.sfn!.flushRecovered();
  }

  private async serve(api: Record<ApiGroup, Handler>, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (await serveConsole(req, res)) return;
    // An artifact's bytes: streamed here, where the Lambda's route would redirect (local/artifacts.ts).
    const artifact = artifactRoute(req);
    if (artifact) return serveArtifact(req, res, artifact);
    // GET /events streams, which a Lambda handler cannot: the layer serves it from its ring (on AWS
    // the API's route answers 501 and points at the stack's event bus).
    if (req.method === 'GET' && /^(\/v1)?\/events\/?$/.test(new URL(req.url ?? '/', 'http://127.0.0.1').pathname)) {
      const { bearerAllowed } = await import('../functions/lib/http.ts');
      if (!bearerAllowed(req.headers.authorization)) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { type: 'permanent', message: 'missing or wrong bearer token' } }));
        return;
      }
      return serveEvents(this.events, req, res);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_REQUEST_BYTES) tooLarge = true;
      else chunks.push(chunk as Buffer);
    }
    const reply = (r: APIGatewayProxyResult) => {
      res.writeHead(r.statusCode, { 'content-type': 'application/json', ...(r.headers as Record<string, string>) });
      res.end(r.body);
    };
    if (tooLarge) {
      return reply({ statusCode: 413, body: JSON.stringify({ error: { type: 'validation', message: `request body is over ${MAX_REQUEST_BYTES} bytes` } }) });
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const event = {
      httpMethod: req.method ?? 'GET',
      path: url.pathname,
      resource: '/{proxy+}',
      headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')])),
      multiValueHeaders: {},
      queryStringParameters: url.searchParams.size ? Object.fromEntries(url.searchParams) : null,
      multiValueQueryStringParameters: null,
      pathParameters: { proxy: url.pathname.slice(1) },
      stageVariables: null,
      body: chunks.length ? Buffer.concat(chunks).toString('utf8') : null,
      isBase64Encoded: false,
      requestContext: { requestId: crypto.randomUUID(), stage: 'local' },
    } as unknown as APIGatewayProxyEvent;
    try {
      const result = (await api[apiGroupOf(url.pathname)](event)) as APIGatewayProxyResult;
      reply(result);
      // New work (a submission or a redrive): size the pool to it once its first tasks are queued, not at the next round.
      const newWork = url.pathname === '/executions' || url.pathname.endsWith('/redrive');
      if (event.httpMethod === 'POST' && newWork && result.statusCode === 202) this.reconcileSoon(1000);
    } catch (err) {
      this.log(`api: ${(err as Error).stack}`);
      reply({ statusCode: 500, body: JSON.stringify({ error: { type: 'transient', message: 'internal error' } }) });
    }
  }

  /** Drains agents (they finish or hand back their tasks), then closes everything within the budget. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    this.server?.closeAllConnections?.();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
    await this.runtime?.stopAll(11_000);
    registerRuntime(undefined);
    registerEventSink(undefined);
    // Webhook deliveries still in their backoff get a moment, not the whole of it.
    if (this.webhook) await Promise.race([this.webhook.idle(), new Promise((ok) => setTimeout(ok, 2000).unref())]);
    for (const close of this.closers.reverse()) await close().catch(() => undefined);
    await rm(join(this.opts.stateDir, 'endpoint.json'), { force: true });
  }
}

/**
 * Powertools in the embedded layer, whose handlers share one process: no CloudWatch, so the
 * template's metric namespace stays and the EMF lines are not written (unless asked for).
 */
export function localPowertools(env: NodeJS.ProcessEnv): Record<string, string> {
  return { POWERTOOLS_METRICS_DISABLED: env.POWERTOOLS_METRICS_DISABLED ?? 'true' };
}

/**
 * An agent's ContainerSpec by type, from the template's task definitions (every container runtime's),
 * and the types that have one. `memoryMiB` overrides every type's memory (XL_AGENT_MEMORY_MIB).
 */
function agentSpecs(template: CfnTemplate, image: string, memoryMiB?: number) {
  const taskDefinitions = new Map(
    resourcesOfType(template, 'AWS::ECS::TaskDefinition')
      .filter(([, td]) => agentTypeOf(td))
      .map(([, td]) => [agentTypeOf(td) as AgentType, td]),
  );
  const specFor = (type: AgentType, agentId: string, resolveToken: (value: unknown) => unknown, environment: Record<string, string>): ContainerSpec => {
    const td = taskDefinitions.get(type);
    if (!td) throw new Error(`the template has no task definition for agent type ${type}`);
    return containerSpec(td, { image, stack: STACK_NAME, agentId, environment, resolve: resolveToken, memoryMiB });
  };
  return { specFor, types: [...taskDefinitions.keys()] };
}

function pick(env: NodeJS.ProcessEnv, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (env[k] !== undefined) out[k] = env[k]!;
  return out;
}
