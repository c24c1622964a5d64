// Executions recorded straight into the table, as POST /executions would record them, for tests that
// drive an agent or a step without the API: one definition per task, in one unnamed stage.
import { randomUUID } from 'node:crypto';
import type { ExecutionStore } from '../../core/aws/execution-store.ts';
import type { Task } from '../../core/plan.ts';
import type { TaskRecord } from '../../core/records.ts';

/** Records a sequential execution of `tasks`, each queued for dispatch 1 unless `task` says otherwise; answers its id. */
export async function recordExecution(executions: ExecutionStore, tasks: Task[], task: Partial<TaskRecord> = {}): Promise<string> {
  const executionId = `ex-${randomUUID().slice(0, 12)}`;
  await executions.createExecution(
    {
      executionId,
      name: executionId,
      pattern: 'sequential',
      status: 'RUNNING',
      planHash: 'test',
      planKey: `plans/${executionId}.json`,
      input: { inline: {} },
      maxConcurrency: 1,
      stages: [{ name: '', from: 0, to: tasks.length }],
      taskCount: tasks.length,
      startedAt: new Date().toISOString(),
    },
    tasks.map((definition, index) => ({
      executionId,
      index,
      taskId: definition.id,
      stage: 0,
      agentType: definition.agentType,
      // Tests hand in definitions without the defaults parsing would add.
      priority: definition.priority ?? 'normal',
      timeoutSeconds: definition.timeoutSeconds ?? 1800,
      failureStrategy: definition.failureStrategy ?? 'stop',
      ...(definition.recovery ? { recovery: definition.recovery } : {}),
      definition: { inline: definition },
      status: 'queued',
      attempts: 0,
      dispatchSeq: 1,
      retries: {},
      ...task,
    })),
  );
  return executionId;
}
