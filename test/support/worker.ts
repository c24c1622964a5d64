// One agent worker on fresh emulators, for tests of what a task run produces: tasks are dispatched
// as the state machine does, and Step Functions is only the receiver of the worker's callbacks.
import { SendTaskFailureCommand, SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { DriverRegistry } from '../../agent/drivers/types.ts';
import { Worker } from '../../agent/worker.ts';
import { Workspaces } from '../../agent/workspace.ts';
import type { AgentType } from '../../core/agent-types.ts';
import { AgentStore } from '../../core/aws/agent-store.ts';
import { DynamoBreakerStore } from '../../core/aws/breaker-store.ts';
import { ExecutionStore } from '../../core/aws/execution-store.ts';
import { PayloadStore } from '../../core/aws/payload-store.ts';
import { CircuitBreaker } from '../../core/breakers.ts';
import type { Task } from '../../core/plan.ts';
import type { TaskRecord } from '../../core/records.ts';
import { type Emulators, startEmulators } from './emulators.ts';
import { recordExecution } from './records.ts';

/** What the worker sent for one task token: its output, or its error and cause. */
export interface TaskCallback {
  success?: unknown;
  error?: string;
  cause?: string;
}

export interface TestWorker {
  emulators: Emulators;
  /** Records a one-task execution, dispatches it as the state machine does, and waits for the callback. */
  run(task: Task, timeoutMs: number): Promise<{ task: TaskRecord; callback: TaskCallback }>;
  close(): Promise<void>;
}

export async function startTestWorker(opts: {
  prefix: string;
  agentType: AgentType;
  agentId: string;
  slots: number;
  drivers: DriverRegistry;
  workspaceRoot: string;
}): Promise<TestWorker> {
  const emulators = await startEmulators({ prefix: opts.prefix, queues: [opts.agentType] });
  const stores = workerStores(emulators);
  const callbacks = new Map<string, TaskCallback>();
  const sfn = {
    send: async (cmd: unknown) => {
      if (cmd instanceof SendTaskSuccessCommand) callbacks.set(cmd.input.taskToken!, { success: JSON.parse(cmd.input.output!) });
      if (cmd instanceof SendTaskFailureCommand) callbacks.set(cmd.input.taskToken!, { error: cmd.input.error, cause: cmd.input.cause });
      return {};
    },
  } as unknown as SFNClient;
  const worker = new Worker(
    {
      agentId: opts.agentId,
      agentType: opts.agentType,
      slots: opts.slots,
      queueUrlPrefix: emulators.queuePrefix,
      heartbeatIntervalMs: 1000,
      graceMs: 1000,
      runtime: { kind: 'process', pid: process.pid },
    },
    { ...stores, sfn, drivers: opts.drivers, workspaces: new Workspaces(opts.workspaceRoot) },
  );
  await worker.start();

  const { executions } = stores;
  return {
    emulators,
    async run(task, timeoutMs) {
      const executionId = await recordExecution(executions, [task], { agentType: opts.agentType });
      const taskToken = `token-${executionId}`;
      await emulators.sqs.send(
        new SendMessageCommand({
          QueueUrl: `${emulators.queuePrefix}${opts.agentType}-normal`,
          MessageBody: JSON.stringify({ executionId, taskIndex: 0, dispatchSeq: 1, dispatchTimeoutSeconds: 120, taskToken }),
        }),
      );
      const end = Date.now() + timeoutMs;
      while (!callbacks.has(taskToken)) {
        if (Date.now() > end) throw new Error(`the worker did not report the task within ${timeoutMs / 1000} s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return { task: (await executions.getTask(executionId, 0))!, callback: callbacks.get(taskToken)! };
    },
    async close() {
      await worker.stop({ graceful: false });
      await emulators.close();
    },
  };
}

/** What a worker keeps its state in and reads its queues from, on these emulators. */
function workerStores(e: Emulators) {
  return {
    executions: new ExecutionStore(e.ddb, e.tables.executions),
    payloads: new PayloadStore(e.s3, e.bucket),
    agents: new AgentStore(e.ddb, e.tables.agents),
    breaker: new CircuitBreaker(new DynamoBreakerStore(e.ddb, e.tables.breakers)),
    sqs: e.sqs,
  };
}
