// A step's Lambda failing once in the middle of a 250-task batch (issue 8 scope 6: the steps retry and
// catch what is transient). The layer runs in this process so that a stand-in can wrap the real steps
// handler (LayerOptions.wrapHandler, as test/e2e/step-faults.test.ts does) and throw once where the
// trial says: which step (Gate, Recover, Finalize, Prepare), at which task, with which error
// (`transient`, as the handler names a throttle; `Lambda.Unknown`, a crashed function; `permanent`,
// which goes past Gate's and Recover's Retry to their Catch). Finalize and Prepare end the execution
// FAILED on a permanent error by design, so they throw only the retried kinds. One task of each plan
// fails once (exit 75), so that Recover runs. Expected: the plan SUCCEEDS in one batch of 250, every
// task committed once, attempts 1 (2 for the task that failed once).
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_TYPES } from '#core/agent-types.ts';
import { type Handler, LocalLayer } from '../../../local/layer.ts';
import type { Layer } from '../../e2e/harness.ts';
import { type Expectation, type Tally, addTally, emptyTally } from '../account.ts';
import { between, runSeed, seededRandom } from '../random.ts';
import { type ReliabilityCase, eachTrial, submit, tallyExecution, trialTaskId } from '../suite.ts';

const TYPE = 'coder';
const TASKS = 250;
type Step = 'gate' | 'recover' | 'finalize' | 'prepare';
type StepError = 'transient' | 'Lambda.Unknown' | 'permanent';

/** Every fault the steps must survive, by step and error. */
export const STEP_FAULTS: { step: Step; error: StepError }[] = [
  ...(['transient', 'Lambda.Unknown', 'permanent'] as const).flatMap((error) => [
    { step: 'gate' as const, error },
    { step: 'recover' as const, error },
  ]),
  ...(['transient', 'Lambda.Unknown'] as const).flatMap((error) => [
    { step: 'finalize' as const, error },
    { step: 'prepare' as const, error },
  ]),
];

/** Two transient retries and none of the other types: 250 such tasks fit one batch (core/patterns.ts). */
const TWO_RETRIES = { transient: { maxRetries: 2 }, timeout: { maxRetries: 0 }, resource: { maxRetries: 0 }, dependency: { maxRetries: 0 } };

interface Armed {
  step: Step;
  error: StepError;
  /** Gate: the task whose first Gate throws. Recover runs only for the task that fails once. */
  taskIndex?: number;
  fired: boolean;
}

let armed: Armed | undefined;

/** The stand-in around the real steps handler: throws the armed fault once, then passes through. */
function wrapHandler(entry: string, real: Handler): Handler {
  if (entry !== 'functions/steps.ts') return real;
  return async (event) => {
    const e = event as { step: string; taskIndex?: number };
    const fault = armed;
    if (fault && !fault.fired && e.step === fault.step && (fault.taskIndex === undefined || e.taskIndex === fault.taskIndex)) {
      fault.fired = true;
      throw Object.assign(new Error(`stand-in ${fault.error} failure of ${fault.step}`), { name: fault.error });
    }
    return real(event);
  };
}

/** What the suite's helpers need of a layer, for one run in this process. */
function asLayer(layer: LocalLayer, stateDir: string): Layer {
  const request = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(layer.url + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return { url: layer.url, stateDir, request } as unknown as Layer;
}

export const stepFault: ReliabilityCase = {
  name: 'step-fault',
  cheap: false,
  trials: (mode) => (mode === 'full' ? 20 : 2),
  async run(ctx) {
    const seed = runSeed();
    const random = seededRandom(seed);
    // The layer in this process writes its endpoints and its functions' settings into process.env
    // (and its agents inherit some): put it back as it was for the cases after this one.
    const savedEnv = { ...process.env };
    const stateDir = mkdtempSync(join(tmpdir(), 'xl-reliability-step-fault-'));
    Object.assign(process.env, {
      XL_MAX_CONCURRENT_TASKS: `${TYPE}=4`,
      XL_LOG_LEVEL: 'info', // the agents' "task finished" lines, for completions recorded twice
      XL_BREAKER_POLICY: JSON.stringify({ [`agent:${TYPE}`]: { failureThreshold: 1_000_000 } }),
    });
    delete process.env.XL_AGENT_SLOTS;
    const local = new LocalLayer({
      port: 0,
      stateDir,
      heartbeatSeconds: 6,
      pool: AGENT_TYPES.map((t) => `${t}=${t === TYPE ? '2..2' : '0..0'}`).join(','),
      quiet: true,
      wrapHandler,
    });
    const draws: string[] = [];
    const seconds: number[] = [];
    let failed = true;
    try {
      const booted = Date.now();
      await local.start();
      ctx.log(`in-process layer up in ${((Date.now() - booted) / 1000).toFixed(1)} s`);
      const layer = asLayer(local, stateDir);
      // Full mode goes round every fault twice; any mode starts at a seeded place in the round.
      const offset = between(random, 0, STEP_FAULTS.length - 1);
      const total = await eachTrial(ctx, async (trial) => {
        const began = Date.now();
        const { step, error } = STEP_FAULTS[(offset + trial) % STEP_FAULTS.length]!;
        const failsOnce = between(random, 0, TASKS - 1);
        let gateIndex = between(random, 0, TASKS - 2);
        if (gateIndex >= failsOnce) gateIndex++; // another task than the one that fails once
        const fault: Armed = { step, error, fired: false, ...(step === 'gate' ? { taskIndex: gateIndex } : step === 'recover' ? { taskIndex: failsOnce } : {}) };
        draws.push(`${step}:${error}${fault.taskIndex !== undefined ? `@${fault.taskIndex}` : ''}`);
        const ids = Array.from({ length: TASKS }, (_, i) => trialTaskId(trial, i));
        const failOnce = 'if [ ! -e "$L.marker" ]; then : > "$L.marker"; exit 75; fi';
        armed = fault;
        try {
          const executionId = await submit(layer, {
            pattern: 'parallel',
            maxConcurrency: 40,
            tasks: ids.map((id, i) => ({ id, agentType: TYPE, recovery: TWO_RETRIES, command: ctx.ledger.command(id, i === failsOnce ? failOnce : ':') })),
          });
          const expectations: Expectation[] = ids.map((taskId, i) => ({
            taskId,
            status: 'completed',
            commits: 1,
            attempts: i === failsOnce ? 2 : 1,
            checks: [(task, entry) => (task.attempts === entry.starts.length ? undefined : `${task.attempts} attempts recorded, ${entry.starts.length} started`)],
          }));
          const tally = await tallyExecution({ layer, ledger: ctx.ledger }, executionId, 'SUCCEEDED', expectations, 300_000);
          const checks: Tally = emptyTally();
          if (!fault.fired) checks.failures.push(`${executionId}: the planned ${step} ${error} fault never fired: the trial tested nothing`);
          // One TaskBatch child ran all 250: the fault was in the middle of one batch, not between two.
          const machines = await local.sfn!.listStateMachines();
          const taskBatch = machines.stateMachines!.find((m) => /TaskBatch/.test(m.name!))!;
          const children = (await local.sfn!.listExecutions({ stateMachineArn: taskBatch.stateMachineArn, maxResults: 1000 })).executions!.filter((e) => e.name!.startsWith(`${executionId}-`));
          if (children.length !== 1) checks.failures.push(`${executionId}: ${children.length} TaskBatch executions (${children.map((c) => c.name).join(', ')}), expected one of ${TASKS} tasks`);
          seconds.push((Date.now() - began) / 1000);
          return addTally(tally, checks);
        } finally {
          armed = undefined;
        }
      });
      failed = total.lost + total.doubled + total.failures.length > 0;
      const mean = seconds.length ? (seconds.reduce((a, b) => a + b, 0) / seconds.length).toFixed(1) : '-';
      return { ...total, notes: `seed ${seed}; ${TASKS} tasks a trial in one batch, faults: ${draws.join(' ')}; a trial ${mean} s` };
    } finally {
      await local.stop();
      for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
      Object.assign(process.env, savedEnv);
      if (failed) ctx.log(`kept the in-process layer's state for inspection: ${stateDir}`);
      else await rm(stateDir, { recursive: true, force: true });
    }
  },
};
