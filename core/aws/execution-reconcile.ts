// The reconcile's AWS adapters (core/execution-events.ts): the execution-events function's
// dead-letter queue on SQS, and workflow runs as Step Functions describes them.
import { DescribeExecutionCommand, ExecutionDoesNotExist, type SFNClient } from '@aws-sdk/client-sfn';
import { DeleteMessageCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeadLetters, StatusChange, WorkflowRuns } from '../execution-events.ts';
import type { Pattern } from '../plan.ts';

/** How long a received dead letter stays hidden: past one reconcile round (the function's 30 s timeout). */
const DEAD_LETTER_VISIBILITY_SECONDS = 60;

export class SqsDeadLetters implements DeadLetters {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  static fromEnv(sqs: SQSClient): SqsDeadLetters {
    const url = process.env.XL_EXECUTION_EVENTS_DLQ_URL;
    if (!url) throw new Error('environment variable XL_EXECUTION_EVENTS_DLQ_URL is not set');
    return new SqsDeadLetters(sqs, url);
  }

  async receive(): Promise<{ body: string; receipt: string }[]> {
    const res = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        VisibilityTimeout: DEAD_LETTER_VISIBILITY_SECONDS,
      }),
    );
    return (res.Messages ?? []).map((m) => ({ body: m.Body ?? '', receipt: m.ReceiptHandle! }));
  }

  async delete(receipt: string): Promise<void> {
    await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receipt }));
  }
}

export class StepFunctionsRuns implements WorkflowRuns {
  constructor(
    private readonly sfn: SFNClient,
    private readonly stateMachines: Record<Pattern, string>,
  ) {}

  static fromEnv(sfn: SFNClient): StepFunctionsRuns {
    const arn = (name: string) => {
      const value = process.env[name];
      if (!value) throw new Error(`environment variable ${name} is not set`);
      return value;
    };
    return new StepFunctionsRuns(sfn, { sequential: arn('XL_SFN_SEQUENTIAL'), parallel: arn('XL_SFN_PARALLEL'), pipeline: arn('XL_SFN_PIPELINE') });
  }

  async describe(pattern: Pattern, runName: string): Promise<StatusChange | undefined> {
    const executionArn = `${this.stateMachines[pattern].replace(':stateMachine:', ':execution:')}:${runName}`;
    try {
      const r = await this.sfn.send(new DescribeExecutionCommand({ executionArn }));
      return {
        executionArn,
        name: r.name ?? runName,
        status: r.status as StatusChange['status'],
        stopDate: r.stopDate?.getTime() ?? null,
        error: r.error ?? null,
        cause: r.cause ?? null,
      };
    } catch (err) {
      if (err instanceof ExecutionDoesNotExist) return undefined;
      throw err;
    }
  }
}
