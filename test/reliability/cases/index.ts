// The fault suite's cases, in the order they run. A new case is a module beside this one.
import type { ReliabilityCase } from '../suite.ts';
import { agentFrozen } from './agent-frozen.ts';
import { batchHistory } from './batch-history.ts';
import { agentKilled } from './agent-killed.ts';
import { duplicateDelivery } from './duplicate-delivery.ts';
import { layerKilled } from './layer-killed.ts';
import { stepFault } from './step-fault.ts';
import { taskTimeout } from './task-timeout.ts';
import { transientRetry } from './transient-retry.ts';

export const CASES: ReliabilityCase[] = [agentKilled, agentFrozen, duplicateDelivery, taskTimeout, transientRetry, layerKilled, stepFault, batchHistory];
