// The pattern machines as the CDK app synthesizes them, run by the local Step Functions service with
// the real steps and execution-events handlers over dynalite and fauxqs, and plans submitted through
// the real ExecutionService, but with fake agents in this process instead of worker processes: they
// long-poll the task queues, claim and record exactly as agent/worker.ts does, and "run" a task by
// following a script (complete with an output or fail with an error, after a small delay), keeping a
// timeline of what ran when. A plan runs in a fraction of a second, so properties can run many.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient, SendTaskFailureCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { DeleteMessageCommand, type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parseDispatch } from '#core/dispatch.ts';
import { sqsClient } from '#core/aws/clients.ts';
import { ExecutionStore } from '#core/aws/execution-store.ts';
import { PayloadStore } from '#core/aws/payload-store.ts';
import { StepFunctionsWorkflows } from '#core/aws/workflows.ts';
import type { TaskError } from '#core/errors.ts';
import { ExecutionService } from '#core/executions.ts';
import { mergeOutputs } from '#core/patterns.ts';
import type { DispatchMessage, ExecutionRecord, TaskOutcome, TaskRecord } from '#core/records.ts';
import { type CfnTemplate, localNames, resolveValue, resourcesOfType } from '../../local/template.ts';
import { provisionBuckets, provisionQueues, provisionTables } from '../../local/provision.ts';
import { startDynalite } from '../../local/services/dynalite.ts';
import { startFauxqs127 } from '../../local/services/fauxqs.ts';
import { type ExecutionStatusChangeEvent, LocalStepFunctions } from '../../local/stepfunctions/index.ts';
import { resolveDefinition } from '../../infra/asl.ts';
import { LOCAL_CLIENT } from './emulators.ts';

const ROOT = join(import.meta.dirname, '../..');
const STACK_NAME = 'xl';

/**
 * What one attempt of a task does: complete with an output, or fail, after `delayMs` and, with
 * `afterStopping`, once its execution is stopping (a condition, so tests of the order need no race).
 */
export type AttemptScript = { delayMs: number; afterStopping?: boolean } & ({ complete: Record<string, unknown> } | { fail: TaskError });

/** One claim of a task by a fake agent, with process-clock times (performance.now()). */
export interface Run {
  executionId: string;
  taskId: string;
  index: number;
  /** The task's attempts count after the claim (1 for the first). */
  attempt: number;
  dispatchSeq: number;
  /** What the agent received as the task's input (the plan's input, or a pipeline stage's `data`). */
  input: Record<string, unknown>;
  claimCalledAt: number;
  claimedAt: number;
  finishCalledAt?: number;
  finishedAt?: number;
  /** completed / failed: its finishClaim landed; lost: the layer had ended the task meanwhile. */
  result?: 'completed' | 'failed' | 'lost';
}

/** A Recover call that answered `done` (the task settled): when it was called and when it returned. */
export interface RecoverDone {
  executionId: string;
  taskIndex: number;
  calledAt: number;
  at: number;
}

/** Resolves after `ms`: the scripted work of a task (the subject of the test, not a wait for a condition). */
const work = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function untilStopping(executions: ExecutionStore, executionId: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await executions.getExecution(executionId))?.stopping) {
    if (Date.now() > deadline) throw new Error(`execution ${executionId} never began stopping`);
    await work(20);
  }
}

/**
 * Fake agents of every type the rig polls: any number of tasks at once (so the machines, not the
 * agents, are what bounds concurrency), each message handled as agent/worker.ts handles it.
 */
export class FakeAgents {
  readonly runs: Run[] = [];
  /** Things a correct layer never makes an agent see (an unscripted attempt, a foreign message). */
  readonly anomalies: string[] = [];
  private readonly scripts = new Map<string, AttemptScript[]>();
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly handling = new Set<Promise<void>>();

  constructor(
    private readonly deps: {
      executions: ExecutionStore;
      payloads: PayloadStore;
      sqs: SQSClient;
      sfn: SFNClient;
      queueUrls: string[];
    },
  ) {}

  /** The attempts of a task, by its id (ids are unique across the rig's plans). */
  script(taskId: string, attempts: AttemptScript[]): void {
    this.scripts.set(taskId, attempts);
  }

  start(): void {
    this.loops = this.deps.queueUrls.map((url) => this.poll(url));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.handling]);
  }

  private async poll(url: string): Promise<void> {
    while (!this.abort.signal.aborted) {
      let messages: Message[] = [];
      try {
        const res = await this.deps.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 300 }),
          { abortSignal: this.abort.signal },
        );
        messages = res.Messages ?? [];
      } catch (err) {
        if (this.abort.signal.aborted) return;
        this.anomalies.push(`receive from ${url} failed: ${(err as Error).message}`);
      }
      for (const m of messages) {
        const p = this.handle(url, m).catch((err: unknown) => void this.anomalies.push(`handling a message failed: ${(err as Error).stack}`));
        this.handling.add(p);
        void p.finally(() => this.handling.delete(p));
      }
    }
  }

  private async handle(queueUrl: string, m: Message): Promise<void> {
    const msg = parseDispatch(m.Body);
    if (!msg) {
      this.anomalies.push(`a message that is not a dispatch: ${m.Body}`);
      return this.delete(queueUrl, m);
    }
    const { executions, payloads } = this.deps;
    const claimId = randomUUID();
    const claimCalledAt = performance.now();
    const claim = await executions.claimTask({ executionId: msg.executionId, index: msg.taskIndex, dispatchSeq: msg.dispatchSeq, agentId: 'fake', claimId, leaseMs: 300_000 });
    const claimedAt = performance.now();
    if (!claim.claimed) return this.notClaimed(queueUrl, m, msg, claim.reason, claim.task);

    const task = claim.task;
    const run: Run = { executionId: msg.executionId, taskId: task.taskId, index: task.index, attempt: task.attempts, dispatchSeq: msg.dispatchSeq, input: {}, claimCalledAt, claimedAt };
    this.runs.push(run);
    const execution = await executions.getExecution(msg.executionId);
    if (!execution) throw new Error(`task ${task.taskId} claimed for an execution without a record`);
    run.input = await this.inputFor(execution, task);
    const script = this.scripts.get(task.taskId)?.[task.attempts - 1];
    if (!script) this.anomalies.push(`attempt ${task.attempts} of ${task.taskId} is not in its script`);
    await work(script?.delayMs ?? 0);
    if (script?.afterStopping) await untilStopping(executions, msg.executionId);

    run.finishCalledAt = performance.now();
    const finishedAt = new Date().toISOString();
    let outcome: { status: 'completed' } | { status: 'failed'; error: TaskError };
    let finished: boolean;
    if (script && 'complete' in script) {
      outcome = { status: 'completed' };
      const output = await payloads.store(`outputs/${msg.executionId}/${msg.taskIndex}-${task.attempts}.json`, script.complete);
      finished = await executions.finishClaim(msg.executionId, msg.taskIndex, claimId, { status: 'completed', output, finishedAt, durationMs: 1 });
    } else {
      const error = script && 'fail' in script ? script.fail : { type: 'permanent' as const, source: 'command' as const, message: 'unscripted attempt' };
      outcome = { status: 'failed', error };
      finished = await executions.finishClaim(msg.executionId, msg.taskIndex, claimId, { status: 'failed', error, finishedAt, durationMs: 1 });
    }
    run.finishedAt = performance.now();
    run.result = finished ? outcome.status : 'lost';
    if (finished) {
      if (outcome.status === 'completed') await this.success(msg.taskToken, { status: 'completed', attempts: task.attempts });
      else await this.failure(msg.taskToken, outcome.error);
      return this.delete(queueUrl, m);
    }
    // The layer ended the task (a fail-execution escalation cancels running ones): as the worker's
    // lost-claim path, report the recorded outcome now rather than at the message's next delivery.
    const current = await executions.getTask(msg.executionId, msg.taskIndex);
    if (current && current.dispatchSeq === msg.dispatchSeq && (current.status === 'failed' || current.status === 'skipped')) {
      return this.notClaimed(queueUrl, m, msg, 'finished', current);
    }
  }

  /** agent/worker.ts notClaimed: drop unknown and stale dispatches, leave held ones, re-report finished ones. */
  private async notClaimed(queueUrl: string, m: Message, msg: DispatchMessage, reason: string, task?: TaskRecord): Promise<void> {
    if (reason === 'held') return;
    if (reason === 'finished' && task) {
      if (task.status === 'completed' || task.status === 'skipped') await this.success(msg.taskToken, { status: task.status, attempts: task.attempts });
      else if (task.status === 'failed' && task.error) await this.failure(msg.taskToken, task.error);
    }
    if (reason === 'unknown') this.anomalies.push(`a dispatch of a task that does not exist: ${m.Body}`);
    await this.delete(queueUrl, m);
  }

  /** agent/worker.ts inputFor, uncached: the plan's input, or for a later pipeline stage `data`. */
  private async inputFor(execution: ExecutionRecord, task: TaskRecord): Promise<Record<string, unknown>> {
    const input = await this.deps.payloads.load(execution.input);
    if (execution.pattern !== 'pipeline' || task.stage === 0) return input;
    const earlier = (await this.deps.executions.listTasks(execution.executionId))
      .filter((t) => t.stage < task.stage && t.status === 'completed')
      .sort((a, b) => a.index - b.index);
    return mergeOutputs(input, await Promise.all(earlier.map((t) => (t.output ? this.deps.payloads.load(t.output) : undefined))));
  }

  private async success(taskToken: string, outcome: TaskOutcome): Promise<void> {
    await this.callback(() => this.deps.sfn.send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(outcome) })));
  }

  private async failure(taskToken: string, error: TaskError): Promise<void> {
    await this.callback(() => this.deps.sfn.send(new SendTaskFailureCommand({ taskToken, error: error.type, cause: error.message })));
  }

  /** A closed token (the workflow no longer waits) is fine, as for the worker; anything else is not. */
  private async callback(send: () => Promise<unknown>): Promise<void> {
    try {
      await send();
    } catch (err) {
      const name = (err as Error).name;
      if (name !== 'TaskTimedOut' && name !== 'InvalidToken') this.anomalies.push(`callback failed: ${name}: ${(err as Error).message}`);
    }
  }

  private async delete(queueUrl: string, m: Message): Promise<void> {
    await this.deps.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle! }));
  }
}

export interface PatternRig {
  service: ExecutionService;
  executions: ExecutionStore;
  agents: FakeAgents;
  sfn: LocalStepFunctions;
  /** Recover calls that answered `done` (the task settled), in the order they returned. */
  recovered: RecoverDone[];
  /** Resolves when the pattern execution named `executionId` ends in the local service. */
  ended(executionId: string): Promise<ExecutionStatusChangeEvent>;
  /** Milliseconds spent synthesizing the CDK app. */
  synthMs: number;
  close(): Promise<void>;
}

/**
 * Synthesizes the CDK app (a child process, as the local layer does), provisions what its template
 * declares in fresh emulators, and runs its state machines with the template's steps and
 * execution-events functions, whose environment is the template's. Fake agents poll the queues of
 * `agentTypes`.
 */
export async function startPatternRig(opts: { agentTypes: readonly string[] }): Promise<PatternRig> {
  const dir = await mkdtemp(join(tmpdir(), 'xl-pattern-rig-'));
  const synthStarted = performance.now();
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'local/synth.ts'), join(dir, 'cdk.out')], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  const template = JSON.parse(await readFile(stdout.trim(), 'utf8')) as CfnTemplate;
  const synthMs = performance.now() - synthStarted;

  const [dynamo, fauxqs] = await Promise.all([startDynalite(), startFauxqs127()]);
  // The handlers build their clients from the environment, as in Lambda and in the local layer.
  Object.assign(process.env, {
    AWS_REGION: LOCAL_CLIENT.region,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SQS: fauxqs.endpoint,
    AWS_ENDPOINT_URL_S3: fauxqs.endpoint,
  });
  const names = localNames(template, STACK_NAME, fauxqs.endpoint);
  const ddbRaw = new DynamoDBClient({ ...LOCAL_CLIENT, endpoint: dynamo.endpoint });
  const sqs = sqsClient();
  const s3 = new S3Client({ ...LOCAL_CLIENT, endpoint: fauxqs.endpoint, forcePathStyle: true });
  await provisionTables(ddbRaw, template, names);
  await provisionQueues(sqs, template, names);
  await provisionBuckets(s3, template, names);

  // Only the two functions the machines need: Steps (their Lambda states) and ExecutionEvents (the
  // status-change rule's target). The pool manager, health monitor and API are not involved.
  let env: Record<string, string> = {};
  let stepsArn = '';
  for (const [id, fn] of resourcesOfType(template, 'AWS::Lambda::Function')) {
    const entry = fn.Metadata?.['xl:entry'];
    if (entry !== 'functions/steps.ts' && entry !== 'functions/execution-events.ts') continue;
    env = resolveValue((fn.Properties?.Environment as { Variables?: object })?.Variables ?? {}, names) as Record<string, string>;
    Object.assign(process.env, env);
    if (entry === 'functions/steps.ts') stepsArn = names.attrs.get(id)!.Arn!;
  }
  if (!stepsArn) throw new Error('the template has no steps function');
  // Breakers would open under the runs' many transient failures (5 in 60 s) and turn later runs'
  // tasks into dependency failures: the subject here is the patterns, so they never open.
  process.env.XL_BREAKER_POLICY = JSON.stringify({ '*': { failureThreshold: 1_000_000 } });
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  const context = { functionName: 'local', awsRequestId: 'local', getRemainingTimeInMillis: () => 60_000 };
  const steps = ((await import('../../functions/steps.ts')) as { handler: (e: unknown, c: unknown) => Promise<unknown> }).handler;
  const events = ((await import('../../functions/execution-events.ts')) as { handler: (e: unknown, c: unknown) => Promise<unknown> }).handler;

  const recovered: RecoverDone[] = [];
  const waiting = new Map<string, (e: ExecutionStatusChangeEvent) => void>();
  const endedEvents = new Map<string, ExecutionStatusChangeEvent>();
  const sfn = new LocalStepFunctions({
    stateMachines: resourcesOfType(template, 'AWS::StepFunctions::StateMachine').map(([id]) => ({
      arn: names.ref.get(id)!,
      name: names.attrs.get(id)!.Name!,
      definition: resolveDefinition(template as never, id, (token) => String(resolveValue(token, names))) as object,
    })),
    lambdas: {
      [stepsArn]: async (event) => {
        const calledAt = performance.now();
        const result = (await steps(event, context)) as { action?: string };
        const e = event as { step: string; executionId: string; taskIndex: number };
        if (e.step === 'recover' && result?.action === 'done') recovered.push({ executionId: e.executionId, taskIndex: e.taskIndex, calledAt, at: performance.now() });
        return result;
      },
    },
    sqs,
    onStatusChange: async (event) => {
      await events(event, context);
      const { name, status } = event.detail;
      if (status === 'RUNNING') return;
      endedEvents.set(name, event);
      waiting.get(name)?.(event);
    },
  });
  const { endpoint } = await sfn.start();
  const sfnClient = new SFNClient({ ...LOCAL_CLIENT, endpoint });

  const ddb = DynamoDBDocumentClient.from(ddbRaw, { marshallOptions: { removeUndefinedValues: true } });
  const executions = new ExecutionStore(ddb, env.XL_TABLE_EXECUTIONS!);
  const payloads = new PayloadStore(s3, env.XL_BUCKET!);
  const machine = (id: string) => names.ref.get(id)!;
  const service = new ExecutionService({
    executions,
    payloads,
    workflows: new StepFunctionsWorkflows(sfnClient, { sequential: machine('SequentialExecution'), parallel: machine('ParallelExecution'), pipeline: machine('PipelineExecution') }),
  });

  const queueUrls = opts.agentTypes.flatMap((type) => ['high', 'normal', 'low'].map((p) => `${env.XL_QUEUE_URL_PREFIX}${type}-${p}`));
  const agents = new FakeAgents({ executions, payloads, sqs, sfn: sfnClient, queueUrls });
  agents.start();

  return {
    service,
    executions,
    agents,
    sfn,
    recovered,
    synthMs,
    ended: (executionId) =>
      new Promise((resolve) => {
        const done = endedEvents.get(executionId);
        if (done) return resolve(done);
        waiting.set(executionId, resolve);
      }),
    close: async () => {
      await agents.stop();
      sfnClient.destroy();
      await sfn.close();
      sqs.destroy();
      s3.destroy();
      ddbRaw.destroy();
      await Promise.all([dynamo.close(), fauxqs.close()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
