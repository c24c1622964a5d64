// The fault suite's cases, in the order they run. A new case is a module beside this one.
import type { ReliabilityCase } from '../suite.ts';
import { agentFrozen } from './agent-frozen.ts';
import { agentKilled } from './agent-killed.ts';
import { batchHistory } from './batch-history.ts';
import { breakerModel } from './breaker-model.ts';
import { defaultOutput } from './default-output.ts';
import { duplicateDelivery } from './duplicate-delivery.ts';
import { failExecution } from './fail-execution.ts';
import { fallbackAgentType } from './fallback-agent-type.ts';
import { halfOpenRace } from './half-open-race.ts';
import { layerKilled } from './layer-killed.ts';
import { modelApiBreaker } from './model-api-breaker.ts';
import { poisonMessage } from './poison-message.ts';
import { stepFault } from './step-fault.ts';
import { taskTimeout } from './task-timeout.ts';
import { transientRetry } from './transient-retry.ts';
import { typeBreaker } from './type-breaker.ts';

export const CASES: ReliabilityCase[] = [
  agentKilled,
  agentFrozen,
  duplicateDelivery,
  poisonMessage,
  taskTimeout,
  transientRetry,
  fallbackAgentType,
  defaultOutput,
  failExecution,
  typeBreaker,
  halfOpenRace,
  modelApiBreaker,
  breakerModel,
  layerKilled,
  stepFault,
  batchHistory,
];
