// A local Step Functions service: executions of ASL state machines run by aws-local-stepfunctions,
// with the Task integrations this project uses (Lambda in process, SQS with task tokens, child
// executions), AWS's API semantics, and an AWS JSON 1.0 endpoint on 127.0.0.1 (http.ts).
//
// The 256 KiB payload limit (States.DataLimitExceeded, not catchable, as on AWS):
//   covered:  StartExecution input (ValidationException, as AWS's length constraint), every Task
//             result (Lambda, lambda:invoke, sqs, child executions), the event a Lambda receives
//             (the state input after Parameters), SendTaskSuccess output (InvalidOutput, the token
//             stays valid), every state's output as the event log shows it (so Pass, Choice, Map,
//             Parallel and ResultPath/OutputPath results too), the execution output.
//   not covered: inputs after Parameters of SQS and child-execution Tasks (SQS and StartExecution
//             apply their own limits), intermediate values (ResultSelector, Map ItemSelector items
//             before their iteration starts), and the limit on a Map's aggregate in a Distributed Map.
// State output checks happen as the log is read, a few microtasks after the library has moved on:
// the execution fails with the right error, though the next state may already have been entered.
//
// Known departures from AWS, from the library: JSONata and Distributed Map are rejected at
// construction; inside a Map iteration $$.Execution.Input is the item and $$.Map is not set
// (ItemSelector does see $$.Map.Item); a Task timeout or heartbeat above ~24.8 days (Node's timer
// limit) is capped or rejected; States.TaskFailed in Retry/Catch also matches
// States.HeartbeatTimeout; when one Map iteration fails, the tokens of its aborted sibling
// iterations stay valid until the execution ends.
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  InvalidArn,
  InvalidExecutionInput,
  InvalidName,
  InvalidToken,
  StateMachineDoesNotExist,
  ValidationException,
  type DescribeExecutionInput,
  type DescribeExecutionOutput,
  type GetExecutionHistoryInput,
  type GetExecutionHistoryOutput,
  type ListExecutionsInput,
  type ExecutionListItem,
  type ListExecutionsOutput,
  type SendTaskFailureInput,
  type SendTaskFailureOutput,
  type SendTaskHeartbeatInput,
  type SendTaskHeartbeatOutput,
  type SendTaskSuccessInput,
  type SendTaskSuccessOutput,
  type StartExecutionInput,
  type StartExecutionOutput,
  type StopExecutionInput,
  type StopExecutionOutput,
  type DescribeStateMachineInput,
  type DescribeStateMachineOutput,
  type ListStateMachinesOutput,
} from '@aws-sdk/client-sfn';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { ExecutionAbortedError, ExecutionError, ExecutionTimeoutError } from 'aws-local-stepfunctions';
import {
  compileMachine,
  DefinitionError,
  lambdaFunctionName,
  MAX_TIMER_SECONDS,
  readReferencePath,
  type CompiledMachine,
  type TaskSpec,
} from './definition.ts';
import { apiError, dataLimitError, lambdaErrorOf, overPayloadLimit, TaskError, TerminalError } from './errors.ts';
import { HISTORY_EVENT_LIMIT, HistoryRecorder, toHistoryEvents, type LibraryEvent, type StoredEvent } from './history.ts';
import { createSfnHttpServer } from './http.ts';
import { ExecutionStore } from './store.ts';
import { TaskTokens } from './tokens.ts';
import type {
  ExecutionRecord,
  ExecutionStatus,
  ExecutionStatusChangeEvent,
  LambdaHandler,
  LocalStepFunctionsOptions,
} from './types.ts';

/** What $$.Task.Token resolves to while Parameters are evaluated; the Task swaps in a real token. */
const TOKEN_PLACEHOLDER = 'xl-local-task-token-placeholder-2f9c';

const LAYER_STOPPED = { error: 'Local.LayerStopped', cause: 'the local layer stopped while this execution was running' };
const EXECUTION_ARN = /^arn:aws[\w-]*:states:([^:]*):([^:]*):execution:([^:]+):([^:]+)$/;
const STATE_MACHINE_ARN = /^arn:aws[\w-]*:states:([^:]*):([^:]*):stateMachine:([^:]+)$/;
// AWS: no whitespace, brackets, wildcards, special characters or control characters.
const BAD_NAME = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\p{Cc}]/u;

interface Execution {
  rec: ExecutionRecord;
  machine: CompiledMachine | undefined;
  /** In memory while the execution runs (and always without a stateDir); else read from disk. */
  history: HistoryRecorder | null;
  abort: () => void;
  /** Children started with .sync / .sync:2, stopped when this execution stops. */
  syncChildren: Set<Execution>;
  /** Settles when the library's event log has been read to its end. */
  logsDone: Promise<void>;
  /** Settles when the execution has ended and its history is complete. */
  done: PromiseWithResolvers<void>;
  /** Disk writes and status-change notifications, in order. */
  chain: Promise<void>;
  /** The state output that exceeded the data limit was seen: record no further events. */
  truncated: boolean;
}

type Json = unknown;

export class LocalStepFunctions {
  private readonly region: string;
  private readonly accountId: string;
  private readonly machines = new Map<string, CompiledMachine>();
  private readonly lambdas = new Map<string, LambdaHandler>();
  private readonly lambdasByName = new Map<string, LambdaHandler>();
  private readonly sqs: SQSClient;
  private readonly onStatusChange?: LocalStepFunctionsOptions['onStatusChange'];
  private readonly store?: ExecutionStore;
  private readonly executions = new Map<string, Execution>();
  /** Executions per state machine ARN, in start order. */
  private readonly byMachine = new Map<string, Execution[]>();
  private readonly tokens: TaskTokens;
  private recoveredNotices: ExecutionRecord[] = [];
  private readonly holdRecoveredNotices: boolean;
  private server?: Server;
  private closed = false;
  private readonly createdAt = new Date();

  constructor(opts: LocalStepFunctionsOptions) {
    this.region = opts.region ?? 'us-east-1';
    this.accountId = opts.accountId ?? '000000000000';
    this.sqs = opts.sqs;
    this.onStatusChange = opts.onStatusChange;
    this.holdRecoveredNotices = opts.holdRecoveredNotices ?? false;
    for (const [arn, handler] of Object.entries(opts.lambdas)) {
      this.lambdas.set(arn, handler);
      this.lambdasByName.set(lambdaFunctionName(arn), handler);
    }
    const hasLambda = (fn: string) => this.lambdaFor(fn) !== undefined;
    for (const sm of opts.stateMachines) {
      if (!STATE_MACHINE_ARN.test(sm.arn)) throw new DefinitionError(`state machine ${sm.name}: ${sm.arn} is not a state machine ARN`);
      this.machines.set(sm.arn, compileMachine(sm, hasLambda));
    }
    for (const m of this.machines.values()) {
      for (const child of m.childMachineArns) {
        if (!this.machines.has(child.arn)) {
          throw new DefinitionError(`state machine ${m.name}: state ${child.state} starts ${child.arn}, which is not defined`);
        }
      }
    }
    this.tokens = new TaskTokens((arn) => this.executions.has(arn));
    if (opts.stateDir) {
      this.store = new ExecutionStore(opts.stateDir);
      this.recover(this.store);
    }
  }

  /** Serves the AWS JSON 1.0 API on 127.0.0.1, then reports executions a previous process left running. */
  async start(opts: { port?: number } = {}): Promise<{ endpoint: string }> {
    this.assertOpen();
    if (!this.server) {
      const server = createSfnHttpServer(this);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port ?? 0, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.server = server;
    }
    if (!this.holdRecoveredNotices) await this.flushRecovered();
    return { endpoint: `http://127.0.0.1:${(this.server.address() as AddressInfo).port}` };
  }

  /**
   * Reports (once) the executions a previous process left running, which this service ended
   * FAILED with Local.LayerStopped when it was constructed. start() calls it, unless told to hold them.
   */
  async flushRecovered(): Promise<void> {
    const notices = this.recoveredNotices;
    this.recoveredNotices = [];
    for (const rec of notices) await this.deliver(this.statusEvent(rec));
  }

  /** Whether an execution, by ARN or by name (in any state machine), is RUNNING. */
  isRunning(executionArnOrName: string): boolean {
    const exec = this.executions.get(executionArnOrName);
    if (exec) return exec.rec.status === 'RUNNING';
    for (const e of this.executions.values()) {
      if (e.rec.name === executionArnOrName && e.rec.status === 'RUNNING') return true;
    }
    return false;
  }

  /**
   * Stops serving. Running executions are abandoned, not ended: on disk they stay RUNNING, and the
   * next service on the same stateDir ends them with Local.LayerStopped.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const server = this.server;
    const stopped = server
      ? new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        })
      : Promise.resolve();
    for (const exec of this.executions.values()) {
      if (exec.rec.status !== 'RUNNING') continue;
      this.tokens.endExecution(exec.rec.executionArn);
      exec.abort();
    }
    await Promise.all([stopped, ...[...this.executions.values()].map((e) => e.chain)]);
  }

  // ---- API operations (the same the HTTP endpoint serves) ----

  async startExecution(input: StartExecutionInput): Promise<StartExecutionOutput> {
    const exec = this.launch(input.stateMachineArn, input.name, input.input);
    return { executionArn: exec.rec.executionArn, startDate: new Date(exec.rec.startDate) };
  }

  async describeExecution(input: DescribeExecutionInput): Promise<DescribeExecutionOutput> {
    const r = this.find(input.executionArn).rec;
    return {
      ...executionSummary(r),
      input: r.input,
      inputDetails: { included: true },
      ...(r.status === 'SUCCEEDED' && { output: r.output ?? 'null', outputDetails: { included: true } }),
      ...(r.error !== null && { error: r.error }),
      ...(r.cause !== null && { cause: r.cause }),
    } as DescribeExecutionOutput;
  }

  async stopExecution(input: StopExecutionInput): Promise<StopExecutionOutput> {
    const exec = this.find(input.executionArn);
    if (input.error !== undefined && input.error.length > 256) throw apiError(ValidationException, 'error must be at most 256 characters');
    if (input.cause !== undefined && input.cause.length > 32768) throw apiError(ValidationException, 'cause must be at most 32768 characters');
    this.end(exec, 'ABORTED', { error: input.error ?? null, cause: input.cause ?? null });
    return { stopDate: new Date(exec.rec.stopDate ?? Date.now()) };
  }

  async sendTaskSuccess(input: SendTaskSuccessInput): Promise<SendTaskSuccessOutput> {
    this.tokens.succeed(requireToken(input.taskToken), typeof input.output === 'string' ? input.output : '');
    return {};
  }

  async sendTaskFailure(input: SendTaskFailureInput): Promise<SendTaskFailureOutput> {
    if (input.error !== undefined && input.error.length > 256) throw apiError(ValidationException, 'error must be at most 256 characters');
    if (input.cause !== undefined && input.cause.length > 32768) throw apiError(ValidationException, 'cause must be at most 32768 characters');
    this.tokens.fail(requireToken(input.taskToken), input.error, input.cause);
    return {};
  }

  async sendTaskHeartbeat(input: SendTaskHeartbeatInput): Promise<SendTaskHeartbeatOutput> {
    this.tokens.heartbeat(requireToken(input.taskToken));
    return {};
  }

  async getExecutionHistory(input: GetExecutionHistoryInput): Promise<GetExecutionHistoryOutput> {
    const exec = this.find(input.executionArn);
    const max = pageSize(input.maxResults);
    const reverse = input.reverseOrder === true;
    const cursor = `h:${reverse ? 1 : 0}:${exec.rec.executionArn}`;
    const offset = input.nextToken ? readPageToken(input.nextToken, cursor) : 0;
    const events = await this.historyOf(exec);
    const ordered = reverse ? events.slice().reverse() : events;
    const page = ordered.slice(offset, offset + max);
    return {
      events: toHistoryEvents(page, input.includeExecutionData !== false),
      ...(offset + max < ordered.length && { nextToken: pageToken(offset + max, cursor) }),
    };
  }

  /** The HTTP server once started (benchmarks count its requests). */
  get httpServer(): Server | undefined {
    return this.server;
  }

  async listStateMachines(): Promise<ListStateMachinesOutput> {
    return {
      stateMachines: [...this.machines.values()].map((m) => ({
        stateMachineArn: m.arn,
        name: m.name,
        type: 'STANDARD' as const,
        creationDate: this.createdAt,
      })),
    };
  }

  /** The definition as given, before this service adapts it for aws-local-stepfunctions. */
  async describeStateMachine(input: DescribeStateMachineInput): Promise<DescribeStateMachineOutput> {
    const m = input.stateMachineArn ? this.machines.get(input.stateMachineArn) : undefined;
    if (!m) throw apiError(StateMachineDoesNotExist, `State Machine Does Not Exist: '${input.stateMachineArn}'`);
    return {
      stateMachineArn: m.arn,
      name: m.name,
      status: 'ACTIVE',
      definition: JSON.stringify(m.definition),
      roleArn: `arn:aws:iam::${this.accountId}:role/local`,
      type: 'STANDARD',
      creationDate: this.createdAt,
    };
  }

  async listExecutions(input: ListExecutionsInput): Promise<ListExecutionsOutput> {
    const smArn = input.stateMachineArn;
    if (!smArn) throw apiError(ValidationException, 'stateMachineArn is required locally (map runs are not supported)');
    if (!STATE_MACHINE_ARN.test(smArn)) throw apiError(InvalidArn, `Invalid Arn: '${smArn}'`);
    if (!this.machines.has(smArn) && !this.byMachine.has(smArn)) {
      throw apiError(StateMachineDoesNotExist, `State Machine Does Not Exist: '${smArn}'`);
    }
    const max = pageSize(input.maxResults);
    const cursor = `l:${input.statusFilter ?? ''}:${smArn}`;
    const all = this.byMachine.get(smArn) ?? [];
    // Newest first; the token is a position in the start-ordered list, which only grows at its end.
    let i = input.nextToken ? readPageToken(input.nextToken, cursor) : all.length - 1;
    const executions: NonNullable<ListExecutionsOutput['executions']> = [];
    for (; i >= 0 && executions.length < max; i--) {
      const r = all[i]!.rec;
      if (input.statusFilter && r.status !== input.statusFilter) continue;
      executions.push(executionSummary(r));
    }
    return { executions, ...(i >= 0 && { nextToken: pageToken(i, cursor) }) };
  }

  // ---- executions ----

  private launch(stateMachineArn: string | undefined, name: string | undefined, input: string | undefined, parent?: Execution): Execution {
    this.assertOpen();
    if (!stateMachineArn) throw apiError(ValidationException, 'stateMachineArn is required');
    const arnParts = STATE_MACHINE_ARN.exec(stateMachineArn);
    if (!arnParts) throw apiError(InvalidArn, `Invalid Arn: '${stateMachineArn}'`);
    const machine = this.machines.get(stateMachineArn);
    if (!machine) throw apiError(StateMachineDoesNotExist, `State Machine Does Not Exist: '${stateMachineArn}'`);
    const execName = name ?? randomUUID();
    if (execName.length < 1 || execName.length > 80) {
      throw apiError(ValidationException, `1 validation error detected: Value '${execName}' at 'name' failed to satisfy constraint: Member must have length less than or equal to 80`);
    }
    if (BAD_NAME.test(execName)) throw apiError(InvalidName, `Invalid Name: '${execName}'`);
    const inputText = input ?? '{}';
    if (overPayloadLimit(inputText)) {
      throw apiError(ValidationException, "1 validation error detected: Value at 'input' failed to satisfy constraint: Member must have length less than or equal to 262144");
    }
    let value: Json;
    try {
      value = JSON.parse(inputText);
    } catch (err) {
      throw apiError(InvalidExecutionInput, `Invalid State Machine Execution Input: '${(err as Error).message}'`);
    }

    const executionArn = `arn:aws:states:${arnParts[1]}:${arnParts[2]}:execution:${machine.name}:${execName}`;
    const existing = this.executions.get(executionArn);
    if (existing) {
      // AWS: the same name and input while the execution is open is the same start.
      if (existing.rec.status === 'RUNNING' && existing.rec.input === inputText) return existing;
      throw apiError(ExecutionAlreadyExists, `Execution Already Exists: '${executionArn}'`);
    }

    const rec: ExecutionRecord = {
      executionArn,
      stateMachineArn,
      name: execName,
      status: 'RUNNING',
      input: inputText,
      output: null,
      error: null,
      cause: null,
      startDate: Date.now(),
      stopDate: null,
      ...(parent && { parentArn: parent.rec.executionArn }),
    };
    const exec = this.register(rec, machine, new HistoryRecorder(machine, this.region));
    exec.history!.started(rec);
    this.persist(exec, false);
    this.notify(exec);
    // The run starts after this call returns, as on AWS: a handler never runs inside StartExecution.
    queueMicrotask(() => this.run(exec, value));
    return exec;
  }

  private register(rec: ExecutionRecord, machine: CompiledMachine | undefined, history: HistoryRecorder | null): Execution {
    const exec: Execution = {
      rec,
      machine,
      history,
      abort: () => {},
      syncChildren: new Set(),
      logsDone: Promise.resolve(),
      done: Promise.withResolvers<void>(),
      chain: Promise.resolve(),
      truncated: false,
    };
    this.executions.set(rec.executionArn, exec);
    let list = this.byMachine.get(rec.stateMachineArn);
    if (!list) this.byMachine.set(rec.stateMachineArn, (list = []));
    list.push(exec);
    return exec;
  }

  private run(exec: Execution, input: Json): void {
    if (exec.rec.status !== 'RUNNING' || this.closed) return;
    const machine = exec.machine!;
    const { rec } = exec;
    const context = {
      Execution: { Id: rec.executionArn, Name: rec.name, Input: input, StartTime: new Date(rec.startDate).toISOString() },
      StateMachine: { Id: rec.stateMachineArn, Name: machine.name },
      Task: { Token: TOKEN_PLACEHOLDER },
    };
    const handlers: Record<string, (input: Json) => Promise<Json>> = {};
    for (const spec of machine.tasks.values()) handlers[spec.name] = (taskInput) => this.taskOverride(exec, spec, taskInput, context);
    let run: ReturnType<CompiledMachine['runner']['run']>;
    try {
      run = machine.runner.run(input as never, {
        overrides: { taskResourceLocalHandlers: handlers as never },
        context: context as never,
      });
    } catch (err) {
      this.end(exec, 'FAILED', { error: 'States.Runtime', cause: (err as Error).message });
      return;
    }
    exec.abort = run.abort;
    exec.logsDone = this.readLog(exec, run.eventLogs);
    run.result.then(
      // After the log: a state output over the limit is reported there, naming its state.
      (output) => exec.logsDone.then(() => this.succeeded(exec, output)),
      (err: unknown) => this.failed(exec, err),
    );
  }

  private async readLog(exec: Execution, log: AsyncGenerator<LibraryEvent>): Promise<void> {
    try {
      for await (const e of log) {
        if (!exec.truncated) this.recordEvent(exec, e);
      }
    } catch (err) {
      // A history that cannot be kept must not keep the execution from ending.
      console.error(`local Step Functions: history of ${exec.rec.executionArn} is incomplete:`, err);
    }
  }

  private recordEvent(exec: Execution, e: LibraryEvent): void {
    const history = exec.history!;
    if (e.type === 'StateExited') {
      // The 256 KiB limit on every state output (Pass, Map, Parallel, Task after ResultPath...):
      // the log is the one place the library shows them. The execution fails as on AWS; the
      // library may have started the next state by then, which ends with the run's abort.
      const json = JSON.stringify(e.state.output) ?? 'null';
      if (overPayloadLimit(json) && exec.rec.status === 'RUNNING') {
        exec.truncated = true;
        const err = dataLimitError(e.state.name);
        this.end(exec, 'FAILED', { error: err.name, cause: err.message });
        return;
      }
      history.record(e, json);
    } else {
      history.record(e);
    }
    if (history.full) this.historyFull(exec);
  }

  /** As on AWS: event 25,000 is the ExecutionFailed that ends it. */
  private historyFull(exec: Execution): void {
    if (exec.rec.status !== 'RUNNING') return;
    exec.truncated = true;
    this.end(exec, 'FAILED', { error: 'States.Runtime', cause: `The execution reached the maximum number of history events (${HISTORY_EVENT_LIMIT}).` });
  }

  private succeeded(exec: Execution, output: Json): void {
    const json = JSON.stringify(output) ?? 'null';
    if (overPayloadLimit(json)) {
      const err = dataLimitError(exec.rec.name);
      this.end(exec, 'FAILED', { error: err.name, cause: err.message });
      return;
    }
    this.end(exec, 'SUCCEEDED', { output: json });
  }

  private failed(exec: Execution, err: unknown): void {
    if (err instanceof ExecutionAbortedError) {
      this.end(exec, 'ABORTED', {});
    } else if (err instanceof ExecutionTimeoutError) {
      this.end(exec, 'TIMED_OUT', { error: 'States.Timeout', cause: null });
    } else if (err instanceof ExecutionError && err.cause instanceof Error) {
      const c = err.cause as Error & { cause?: unknown };
      const cause = c.cause ?? c.message;
      this.end(exec, 'FAILED', { error: c.name, cause: typeof cause === 'string' ? cause : (JSON.stringify(cause) ?? null) });
    } else {
      this.end(exec, 'FAILED', { error: 'States.Runtime', cause: err instanceof Error ? err.message : String(err) });
    }
  }

  /**
   * Ends an execution once (later calls are ignored): its pending tokens die, its .sync children
   * stop, and, once the event log has been read to its end, its history gets the closing event,
   * the record is written and the status change is reported.
   */
  private end(exec: Execution, status: Exclude<ExecutionStatus, 'RUNNING'>, fields: Partial<Pick<ExecutionRecord, 'output' | 'error' | 'cause'>>): void {
    const rec = exec.rec;
    if (rec.status !== 'RUNNING' || this.closed) return;
    rec.status = status;
    rec.stopDate = Date.now();
    rec.output = fields.output ?? null;
    rec.error = fields.error ?? null;
    rec.cause = fields.cause ?? null;
    this.tokens.endExecution(rec.executionArn);
    if (status !== 'SUCCEEDED') {
      for (const child of exec.syncChildren) {
        this.end(child, 'ABORTED', { cause: `the parent execution ${rec.executionArn} ended ${status}` });
      }
      exec.abort();
    }
    exec.syncChildren.clear();
    void exec.logsDone.then(() => {
      if (this.closed) return;
      exec.history?.ended(rec);
      exec.done.resolve();
      this.persist(exec, true);
      this.notify(exec);
    });
  }

  private find(executionArn: string | undefined): Execution {
    if (!executionArn) throw apiError(ValidationException, 'executionArn is required');
    if (!EXECUTION_ARN.test(executionArn)) throw apiError(InvalidArn, `Invalid Arn: '${executionArn}'`);
    const exec = this.executions.get(executionArn);
    if (!exec) throw apiError(ExecutionDoesNotExist, `Execution Does Not Exist: '${executionArn}'`);
    return exec;
  }

  private async historyOf(exec: Execution): Promise<StoredEvent[]> {
    if (exec.history) return exec.history.events;
    return (await this.store?.readHistory(exec.rec.executionArn)) ?? [];
  }

  // ---- Task states ----

  /**
   * The override the library calls for a Task state, with the state's effective input (after
   * InputPath and Parameters). It runs synchronously up to its first await, just before the
   * library arms its TimeoutSeconds timer; see tokens.ts for why that order matters.
   */
  private taskOverride(exec: Execution, spec: TaskSpec, input: Json, context: object): Promise<Json> {
    // An ended execution (the library may still retry a state after an abort): throwing here,
    // before the library arms its timer, ends that state at once and leaves no timer behind.
    if (exec.rec.status !== 'RUNNING' || this.closed) throw new TerminalError('States.Runtime', 'the execution has ended');
    let promise: Promise<Json>;
    if (spec.pattern === 'callback') {
      const timeoutSeconds = taskTimeoutSeconds(spec, input, context);
      // Not a positive integer: the library fails the state with its own States.Runtime error
      // right after this returns; nothing is sent.
      if (timeoutSeconds === undefined) return new Promise(() => {});
      const heartbeatSeconds = taskHeartbeatSeconds(spec, input, context);
      const { token, result } = this.tokens.mint(exec.rec.executionArn, timeoutSeconds * 1000, heartbeatSeconds && heartbeatSeconds * 1000);
      promise = this.submit(spec, withToken(input, token)).then(
        () => result,
        (err: unknown) => {
          this.tokens.cancel(token);
          throw err;
        },
      );
    } else {
      promise = this.invoke(exec, spec, input);
    }
    // The library may stop listening (its timeout won, or the execution was aborted): a later
    // rejection must not surface as an unhandled one.
    promise.catch(() => {});
    return promise;
  }

  /** Request-response and .sync integrations. */
  private async invoke(exec: Execution, spec: TaskSpec, input: Json): Promise<Json> {
    switch (spec.integration) {
      case 'lambda-function':
        return taskResult(spec.state.Resource, await this.callLambda(spec.state.Resource, input));
      case 'lambda:invoke': {
        const p = input as { FunctionName?: string; Payload?: Json };
        const payload = await this.callLambda(String(p.FunctionName), p.Payload ?? {});
        return taskResult(spec.name, { ExecutedVersion: '$LATEST', Payload: payload, StatusCode: 200 });
      }
      case 'sqs:sendMessage':
        return this.sendMessage(input);
      case 'states:startExecution':
        return this.startChild(exec, spec, input);
    }
  }

  /** Callback integrations: deliver the token, then the Task waits for SendTask*. */
  private async submit(spec: TaskSpec, input: Json): Promise<void> {
    if (spec.integration === 'sqs:sendMessage') {
      await this.sendMessage(input);
    } else {
      const p = input as { FunctionName?: string; Payload?: Json };
      await this.callLambda(String(p.FunctionName), p.Payload ?? {});
    }
  }

  private async callLambda(functionArnOrName: string, payload: Json): Promise<Json> {
    const handler = this.lambdaFor(functionArnOrName);
    if (!handler) throw new TaskError('Lambda.ResourceNotFoundException', `Function not found: ${functionArnOrName}`);
    const event = JSON.stringify(payload) ?? 'null';
    if (overPayloadLimit(event)) throw dataLimitError(functionArnOrName);
    try {
      // A Lambda gets its event as parsed JSON, never the interpreter's own objects.
      return await handler(JSON.parse(event));
    } catch (err) {
      throw lambdaErrorOf(err);
    }
  }

  private async sendMessage(input: Json): Promise<Json> {
    const p = input as {
      QueueUrl?: string;
      MessageBody?: Json;
      MessageAttributes?: Record<string, never>;
      DelaySeconds?: number;
      MessageGroupId?: string;
      MessageDeduplicationId?: string;
    };
    const body = typeof p.MessageBody === 'string' ? p.MessageBody : (JSON.stringify(p.MessageBody) ?? 'null');
    try {
      const out = await this.sqs.send(
        new SendMessageCommand({
          QueueUrl: p.QueueUrl,
          MessageBody: body,
          MessageAttributes: p.MessageAttributes,
          DelaySeconds: p.DelaySeconds,
          MessageGroupId: p.MessageGroupId,
          MessageDeduplicationId: p.MessageDeduplicationId,
        }),
      );
      return {
        MD5OfMessageBody: out.MD5OfMessageBody,
        MessageId: out.MessageId,
        ...(out.SequenceNumber && { SequenceNumber: out.SequenceNumber }),
      };
    } catch (err) {
      const e = err as Error;
      throw new TaskError(`SQS.${e.name || 'SdkClientException'}`, e.message);
    }
  }

  private async startChild(parent: Execution, spec: TaskSpec, input: Json): Promise<Json> {
    const p = input as { StateMachineArn?: string; Input?: Json; Name?: string };
    const inputText = p.Input === undefined ? '{}' : typeof p.Input === 'string' ? p.Input : JSON.stringify(p.Input);
    let child: Execution;
    try {
      child = this.launch(p.StateMachineArn, p.Name, inputText, parent);
    } catch (err) {
      const e = err as Error;
      throw new TaskError(`StepFunctions.${e.name}${e.name.endsWith('Exception') ? '' : 'Exception'}`, e.message);
    }
    if (spec.pattern === 'request-response') {
      return { ExecutionArn: child.rec.executionArn, StartDate: child.rec.startDate };
    }
    // AWS stops a .sync child when its parent stops.
    parent.syncChildren.add(child);
    await child.done.promise;
    parent.syncChildren.delete(child);
    const r = child.rec;
    const v2 = spec.pattern === 'sync:2';
    const description = {
      ExecutionArn: r.executionArn,
      Input: v2 ? JSON.parse(r.input) : r.input,
      InputDetails: { Included: true },
      Name: r.name,
      StartDate: r.startDate,
      StateMachineArn: r.stateMachineArn,
      Status: r.status,
      StopDate: r.stopDate,
    };
    if (r.status === 'SUCCEEDED') {
      const output = r.output ?? 'null';
      return { ...description, Output: v2 ? JSON.parse(output) : output, OutputDetails: { Included: true } };
    }
    throw new TaskError('States.TaskFailed', JSON.stringify({ ...description, Error: r.error, Cause: r.cause }));
  }

  private lambdaFor(functionArnOrName: string): LambdaHandler | undefined {
    return this.lambdas.get(functionArnOrName) ?? this.lambdasByName.get(lambdaFunctionName(functionArnOrName));
  }

  // ---- persistence and notifications ----

  private persist(exec: Execution, ended: boolean): void {
    const store = this.store;
    if (!store) return;
    const rec = { ...exec.rec };
    exec.chain = exec.chain
      .then(async () => {
        if (!ended) return store.writeRecord(rec);
        await store.writeEnd(rec, exec.history?.events ?? []);
        exec.history = null; // on disk now; read back on demand
      })
      .catch((err: unknown) => console.error(`local Step Functions: cannot write ${rec.executionArn}:`, err));
  }

  private notify(exec: Execution): void {
    if (!this.onStatusChange) return;
    const event = this.statusEvent(exec.rec);
    exec.chain = exec.chain.then(() => this.deliver(event));
  }

  private async deliver(event: ExecutionStatusChangeEvent): Promise<void> {
    try {
      await this.onStatusChange?.(event);
    } catch (err) {
      console.error(`local Step Functions: onStatusChange failed for ${event.detail.executionArn}:`, err);
    }
  }

  private statusEvent(r: ExecutionRecord): ExecutionStatusChangeEvent {
    const parts = EXECUTION_ARN.exec(r.executionArn);
    return {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Step Functions Execution Status Change',
      source: 'aws.states',
      account: parts?.[2] || this.accountId,
      time: new Date(r.stopDate ?? r.startDate).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      region: parts?.[1] || this.region,
      resources: [r.executionArn],
      detail: {
        executionArn: r.executionArn,
        stateMachineArn: r.stateMachineArn,
        name: r.name,
        status: r.status,
        startDate: r.startDate,
        stopDate: r.stopDate,
        input: r.input,
        output: r.output,
        error: r.error,
        cause: r.cause,
      },
    };
  }

  /** Executions a previous process left RUNNING end FAILED; all stay describable. */
  private recover(store: ExecutionStore): void {
    const records = store.loadAll().sort((a, b) => a.startDate - b.startDate);
    for (const rec of records) {
      const machine = this.machines.get(rec.stateMachineArn);
      const exec = this.register(rec, machine, null);
      exec.done.resolve();
      if (rec.status !== 'RUNNING') continue;
      Object.assign(rec, { status: 'FAILED', stopDate: Date.now(), output: null, ...LAYER_STOPPED });
      // Its events were in the stopped process's memory: only the start and this end are known.
      const history = new HistoryRecorder(machine, this.region);
      history.started(rec);
      history.ended(rec);
      store.writeEndSync(rec, history.events);
      this.recoveredNotices.push(rec);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('the local Step Functions service is closed');
  }
}

// ---- helpers ----

/** What ListExecutions says of an execution; DescribeExecution says this and more. */
function executionSummary(r: ExecutionRecord): ExecutionListItem {
  return {
    executionArn: r.executionArn,
    stateMachineArn: r.stateMachineArn,
    name: r.name,
    status: r.status,
    startDate: new Date(r.startDate),
    ...(r.stopDate !== null && { stopDate: new Date(r.stopDate) }),
  };
}

function taskTimeoutSeconds(spec: TaskSpec, input: Json, context: object): number | undefined {
  const s = spec.state;
  // Mirrors the library: TimeoutSeconds when truthy, else TimeoutSecondsPath on the effective input.
  if (s.TimeoutSeconds) return s.TimeoutSeconds;
  if (!s.TimeoutSecondsPath) return undefined;
  const v = readReferencePath(s.TimeoutSecondsPath, input, context);
  if (!Number.isInteger(v) || (v as number) < 1) return undefined;
  if ((v as number) > MAX_TIMER_SECONDS) {
    throw new TerminalError('States.Runtime', `TimeoutSecondsPath gave ${String(v)}; more than ${MAX_TIMER_SECONDS} s is not supported locally`);
  }
  return v as number;
}

function taskHeartbeatSeconds(spec: TaskSpec, input: Json, context: object): number | undefined {
  const s = spec.state;
  if (s.HeartbeatSeconds !== undefined) return s.HeartbeatSeconds;
  if (!s.HeartbeatSecondsPath) return undefined;
  const v = readReferencePath(s.HeartbeatSecondsPath, input, context);
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > MAX_TIMER_SECONDS) {
    throw new TerminalError('States.Runtime', `HeartbeatSecondsPath '${s.HeartbeatSecondsPath}' gave ${JSON.stringify(v)}, not a positive integer`);
  }
  return v as number;
}

/** A task result as AWS sees it: JSON, within the payload limit. */
function taskResult(what: string, result: Json): Json {
  const json = JSON.stringify(result) ?? 'null';
  if (overPayloadLimit(json)) throw dataLimitError(what);
  return JSON.parse(json);
}

function withToken(value: Json, token: string): Json {
  if (typeof value === 'string') return value.includes(TOKEN_PLACEHOLDER) ? value.replaceAll(TOKEN_PLACEHOLDER, token) : value;
  if (Array.isArray(value)) return value.map((v) => withToken(v, token));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(value)) out[k] = withToken(v, token);
    return out;
  }
  return value;
}

function requireToken(token: string | undefined): string {
  if (typeof token !== 'string' || token.length < 1 || token.length > 1024) throw apiError(InvalidToken, 'Invalid Token');
  return token;
}

function pageSize(maxResults: number | undefined): number {
  if (maxResults === undefined || maxResults === 0) return 100;
  if (!Number.isInteger(maxResults) || maxResults < 0 || maxResults > 1000) {
    throw apiError(ValidationException, 'maxResults must be between 0 and 1000');
  }
  return maxResults;
}

function pageToken(position: number, cursor: string): string {
  return Buffer.from(`${position}\n${cursor}`).toString('base64url');
}

function readPageToken(token: string, cursor: string): number {
  const [position, ...rest] = Buffer.from(token, 'base64url').toString().split('\n');
  const n = Number(position);
  if (rest.join('\n') !== cursor || !Number.isInteger(n) || n < 0) throw apiError(InvalidToken, 'Invalid Token');
  return n;
}
