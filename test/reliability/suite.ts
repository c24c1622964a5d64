// What a fault case is, and what the runner hands it. A case is one module under cases/ exporting
// a ReliabilityCase; cases/index.ts lists them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BreakerPolicy } from '../../core/breakers.ts';
import type { AgentType } from '#core/agent-types.ts';
import { type Layer, waitFor } from '../e2e/harness.ts';
import { type Expectation, type Finish, type Tally, account, addTally, emptyTally, parseFinishes } from './account.ts';
import type { Ledger } from './ledger.ts';

export type Mode = 'full' | 'quick';

export interface CaseResult extends Tally {
  /** A short line for the table: what the trials showed beyond the counts. */
  notes: string;
}

export interface ReliabilityCase {
  name: string;
  /** Cheap cases run at least 100 trials in full mode (many tasks of one plan), the others at least 20. */
  cheap: boolean;
  /**
   * On the suite's shared layer, the agent type this case has to itself, and task slots per agent of
   * it. A case that brings its own layer (ctx.startLayer) needs none.
   */
  agentType?: AgentType;
  slots?: number;
  /**
   * Its agent type's circuit breaker, on the shared layer. A case about retries or lost agents fails
   * tasks (or kills agents) on purpose, many within a minute, which would open the type's breaker
   * (core/breakers.ts: 5 in 60 s); `{ failureThreshold: 1_000_000 }` keeps it out of the way, and the
   * breaker cases test breakers.
   */
  breaker?: Partial<BreakerPolicy>;
  trials(mode: Mode): number;
  run(ctx: CaseContext): Promise<CaseResult>;
}

export interface CaseContext {
  mode: Mode;
  trials: number;
  /** The suite's layer, shared by the cases (each on its own agent type). */
  layer: Layer;
  /** A fresh ledger folder for this case. */
  ledger: Ledger;
  /** Bounds the case's agent type to exactly `count` agents and waits until that many are idle. */
  agents(count: number): Promise<void>;
  /**
   * A layer of the case's own (for faults to the layer itself); the runner stops it after the case.
   * `stateDir` starts it on an earlier layer's state (a restart).
   */
  startLayer(env?: Record<string, string>, opts?: { stateDir?: string }): Promise<Layer>;
  log(message: string): void;
}

/** Runs per `<executionId>/<taskId>` that agents of `layer` recorded as finished (its agents.log, XL_QUIET=1). */
export function finishesOf(layer: Layer): Map<string, Finish[]> {
  let text = '';
  try {
    text = readFileSync(join(layer.stateDir, 'agents.log'), 'utf8');
  } catch {
    // no agent has written yet
  }
  return parseFinishes(text);
}

export async function submit(layer: Layer, plan: object): Promise<string> {
  const res = await layer.request('POST', '/executions', plan);
  if (res.status !== 202) throw new Error(`the plan was refused: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.executionId;
}

/** Polls the execution until it is no longer RUNNING or `timeoutMs` passed; the last record either way. */
export async function settle(layer: Layer, executionId: string, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await layer.request('GET', `/executions/${executionId}`);
    if (res.status === 200 && !['RUNNING', 'PENDING'].includes(res.body.status)) return res.body;
    if (Date.now() > deadline) return res.body;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Settles an execution and tallies it against its expectations, the ledger and the agents' log. */
export async function tallyExecution(
  ctx: Pick<CaseContext, 'layer' | 'ledger'>,
  executionId: string,
  expectedStatus: string,
  expectations: Expectation[],
  timeoutMs: number,
): Promise<Tally & { execution: any }> {
  const execution = await settle(ctx.layer, executionId, timeoutMs);
  const tally = account({ execution, expectedStatus, expectations, ledger: (id) => ctx.ledger.entry(id), finishes: finishesOf(ctx.layer) });
  return { ...tally, execution };
}

/** The record of one task of an execution, once `ready` holds for it. */
export async function taskWhen(layer: Layer, executionId: string, taskId: string, what: string, ready: (task: any) => boolean, timeoutMs = 30_000): Promise<any> {
  return waitFor(what, async () => {
    const ex = (await layer.request('GET', `/executions/${executionId}`)).body;
    const task = ex?.tasks?.find((t: any) => t.taskId === taskId);
    return task && ready(task) ? task : undefined;
  }, timeoutMs);
}

/** A unique task id per trial: ledgers are per case, executions per trial. */
export const trialTaskId = (trial: number, i = 0) => `t${trial}-${i}`;

/**
 * Bounds another agent type's pool to exactly `count` agents and waits until that many are idle: for
 * a case that borrows a type of another case's (which runs before or after it, never beside it) and
 * gives it back at 0..0.
 */
export async function sizePool(layer: Layer, type: AgentType, count: number): Promise<void> {
  const res = await layer.request('PUT', `/pool/${type}`, { min: count, max: count });
  if (res.status !== 200) throw new Error(`PUT /pool/${type}: ${res.status} ${JSON.stringify(res.body)}`);
  if (count === 0) return;
  await waitFor(`${count} idle ${type} agents`, async () => {
    const agents = (await layer.request('GET', '/agents')).body.items.filter((a: any) => a.agentType === type);
    return agents.filter((a: any) => a.status === 'idle').length >= count || undefined;
  }, 60_000);
}

/** The agent record (GET /agents) of `agentId`. */
export async function agentRecord(layer: Layer, agentId: string): Promise<any> {
  const agents = (await layer.request('GET', '/agents')).body.items;
  const agent = agents.find((a: any) => a.agentId === agentId);
  if (!agent) throw new Error(`GET /agents has no ${agentId}`);
  return agent;
}

/** The shell pid of a task's attempt, once its command has written its start line. */
export async function startedShell(ledger: Ledger, taskId: string, attempt: number, timeoutMs = 30_000): Promise<number> {
  return waitFor(`${taskId}'s attempt ${attempt} to start`, async () => ledger.entry(taskId).starts.find((s) => s.attempt === attempt)?.pid, timeoutMs);
}

/**
 * Runs the case's trials one after another and adds up their tallies. A trial that throws (a wait
 * that timed out) is a failed expectation with what it said; the next trial still runs.
 */
export async function eachTrial(ctx: Pick<CaseContext, 'trials' | 'log'>, trial: (index: number) => Promise<Tally>): Promise<Tally> {
  const total = emptyTally();
  for (let i = 0; i < ctx.trials; i++) {
    try {
      addTally(total, await trial(i));
    } catch (err) {
      ctx.log(`trial ${i} stopped: ${(err as Error).message}`);
      total.failures.push(`trial ${i} stopped: ${(err as Error).message}`);
    }
  }
  return total;
}
