import type { SQSClient } from '@aws-sdk/client-sqs';

export interface LocalStateMachine {
  arn: string;
  name: string;
  /** ASL JSON (JSONPath query language). */
  definition: object;
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

/** The EventBridge event Step Functions emits on every status change, same shape. */
export interface ExecutionStatusChangeEvent {
  version?: '0';
  id?: string;
  source: 'aws.states';
  'detail-type': 'Step Functions Execution Status Change';
  time: string;
  region: string;
  account: string;
  resources: string[];
  detail: {
    executionArn: string;
    stateMachineArn: string;
    name: string;
    status: ExecutionStatus;
    /** Epoch milliseconds, as in the AWS event. */
    startDate: number;
    stopDate: number | null;
    input: string | null;
    output: string | null;
    error?: string | null;
    cause?: string | null;
  };
}

export type LambdaHandler = (event: unknown) => Promise<unknown>;

export interface LocalStepFunctionsOptions {
  stateMachines: LocalStateMachine[];
  /** Lambda handlers run in process, keyed by function ARN. */
  lambdas: Record<string, LambdaHandler>;
  /** Used for sqs:sendMessage and sqs:sendMessage.waitForTaskToken. */
  sqs: SQSClient;
  onStatusChange?: (e: ExecutionStatusChangeEvent) => Promise<void> | void;
  /** Where execution records persist (JSON files); memory when absent. */
  stateDir?: string;
  /**
   * Keep the notices of executions an earlier process left running (ended Local.LayerStopped) until
   * flushRecovered() is called, instead of sending them from start(): the local layer first starts
   * their successors, so that the notices arrive as news of superseded runs.
   */
  holdRecoveredNotices?: boolean;
  region?: string;
  accountId?: string;
}

/** What is persisted per execution (its history is stored beside it). */
export interface ExecutionRecord {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  input: string;
  output: string | null;
  error: string | null;
  cause: string | null;
  /** Epoch milliseconds. */
  startDate: number;
  stopDate: number | null;
  /** The execution that started this one with states:startExecution, if any. */
  parentArn?: string;
}
