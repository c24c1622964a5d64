export { LocalStepFunctions } from './service.ts';
export { DefinitionError } from './definition.ts';
export type {
  ExecutionRecord,
  ExecutionStatus,
  ExecutionStatusChangeEvent,
  LambdaHandler,
  LocalStateMachine,
  LocalStepFunctionsOptions,
} from './types.ts';
