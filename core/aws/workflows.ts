// Workflows over Step Functions: one state machine per pattern, execution name = executionId.
import { ExecutionAlreadyExists, ExecutionDoesNotExist, type SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import type { Workflows } from '../executions.ts';
import type { Pattern } from '../plan.ts';

export class StepFunctionsWorkflows implements Workflows {
  constructor(
    private readonly sfn: SFNClient,
    private readonly stateMachines: Record<Pattern, string>,
  ) {}

  static fromEnv(sfn: SFNClient): StepFunctionsWorkflows {
    const arn = (name: string) => {
      const value = process.env[name];
      if (!value) throw new Error(`environment variable ${name} is not set`);
      return value;
    };
    return new StepFunctionsWorkflows(sfn, {
      sequential: arn('XL_SFN_SEQUENTIAL'),
      parallel: arn('XL_SFN_PARALLEL'),
      pipeline: arn('XL_SFN_PIPELINE'),
    });
  }

  async start(pattern: Pattern, executionId: string): Promise<void> {
    try {
      await this.sfn.send(
        new StartExecutionCommand({
          stateMachineArn: this.stateMachines[pattern],
          name: executionId,
          input: JSON.stringify({ executionId }),
        }),
      );
    } catch (err) {
      // Same name and same input is idempotent while open; once closed AWS says it exists, which
      // for us means it was started before.
      if (!(err instanceof ExecutionAlreadyExists)) throw err;
    }
  }

  async stop(pattern: Pattern, executionId: string, cause: string): Promise<void> {
    const executionArn = this.stateMachines[pattern].replace(':stateMachine:', ':execution:') + ':' + executionId;
    try {
      await this.sfn.send(new StopExecutionCommand({ executionArn, cause }));
    } catch (err) {
      if (!(err instanceof ExecutionDoesNotExist)) throw err;
    }
  }
}
