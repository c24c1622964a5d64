// Workflows over Step Functions: one state machine per pattern. An execution's first workflow run is
// named after its executionId; a resume or a redrive starts run n as `<executionId>-r<n>` (names:
// 1..80 characters, no whitespace, brackets, wildcards or `" # % \ ^ | ~ ` $ & , ; : /`, unique per
// state machine for 90 days; executionIds are `ex-<base36>-<base64url>`, so ids and suffixes fit).
import { ExecutionAlreadyExists, ExecutionDoesNotExist, type SFNClient, StartExecutionCommand, StopExecutionCommand } from '@aws-sdk/client-sfn';
import type { Workflows } from '../executions.ts';
import type { Pattern } from '../plan.ts';
import { workflowRunName } from '../records.ts';

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

  /**
   * A redrive is a new run of the pattern machine over the same records, not RedriveExecution:
   * a plan that FAILED because a "stop" task failed ends with its workflow SUCCEEDED (Finalize
   * wrote FAILED), which RedriveExecution refuses, and it also refuses executions older than 14
   * days or past the history limit. The task records are the memo that makes a new run re-run only
   * what did not complete (docs/design.md, "Resume and redrive").
   */
  async start(pattern: Pattern, executionId: string, run = 0): Promise<void> {
    try {
      await this.sfn.send(
        new StartExecutionCommand({
          stateMachineArn: this.stateMachines[pattern],
          name: workflowRunName(executionId, run),
          input: JSON.stringify({ executionId }),
        }),
      );
    } catch (err) {
      // Same name and same input is idempotent while open; once closed AWS says it exists, which
      // for us means it was started before.
      if (!(err instanceof ExecutionAlreadyExists)) throw err;
    }
  }

  async stop(pattern: Pattern, executionId: string, cause: string, run = 0): Promise<void> {
    const executionArn = this.stateMachines[pattern].replace(':stateMachine:', ':execution:') + ':' + workflowRunName(executionId, run);
    try {
      await this.sfn.send(new StopExecutionCommand({ executionArn, cause }));
    } catch (err) {
      if (!(err instanceof ExecutionDoesNotExist)) throw err;
    }
  }
}
