// A type's breaker (agent:performance; 3 failures within 60 s open it, a 5 s cooldown) through its
// whole cycle, each trial from closed:
//   open:      three commands exit 75 (transient, no retries): each failure counts, the third opens it;
//   fail fast: while open, a plan of that type's tasks is refused before any claim: each fails as
//              `dependency` naming the breaker, with no attempt, and no command starts (ledger);
//   probe:     once the cooldown is over, several tasks go at once: one takes the probe (the breaker is
//              half-open while its command blocks on a gate), the others are refused as `dependency`
//              ("half-open and its probe is out"); the gate opens, the probe completes, the breaker
//              closes. Exactly one of them ran.
// Refused tasks fail at once, with their recovery's defaults (an open breaker's refusal is final
// unless the recovery says onOpen "wait"). POST /breakers/{key}/reset ends a trial.
import { agentBreakerKey } from '#core/breakers.ts';
import { waitFor } from '../../e2e/harness.ts';
import { type Expectation, type Tally, addTally, emptyTally } from '../account.ts';
import { type CaseContext, type ReliabilityCase, eachTrial, submit, tallyExecution } from '../suite.ts';

const TYPE = 'performance';
const KEY = agentBreakerKey(TYPE);
const THRESHOLD = 3;
const COOLDOWN_SECONDS = 5;
/** Tasks refused while open, and tasks racing for the probe, per trial. */
const REFUSED = 4;
const CANDIDATES = 4;

async function breaker(ctx: Pick<CaseContext, 'layer'>): Promise<any> {
  const res = await ctx.layer.request('GET', '/breakers');
  if (res.status !== 200) throw new Error(`GET /breakers: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.items.find((b: any) => b.key === KEY) ?? { key: KEY, state: 'closed', failures: 0 };
}

async function reset(ctx: Pick<CaseContext, 'layer'>): Promise<void> {
  const res = await ctx.layer.request('POST', `/breakers/${KEY}/reset`);
  // 404: the key has no record yet (the first trial).
  if (res.status !== 200 && res.status !== 404) throw new Error(`POST /breakers/${KEY}/reset: ${res.status} ${JSON.stringify(res.body)}`);
}

const refusedFast = (why: RegExp) => [
  (task: any) => (why.test(task.error?.message ?? '') ? undefined : `error ${JSON.stringify(task.error)} does not name ${KEY} as ${why}`),
  (task: any) => (task.attempts === 0 && !task.agentId ? undefined : `refused, yet ${task.attempts} attempts${task.agentId ? ` on ${task.agentId}` : ''}`),
  (_task: any, entry: { starts: unknown[] }) => (entry.starts.length === 0 ? undefined : `refused, yet its command started ${entry.starts.length} times`),
];

export const typeBreaker: ReliabilityCase = {
  name: 'type-breaker',
  cheap: false,
  agentType: TYPE,
  slots: 4,
  breaker: { failureThreshold: THRESHOLD, failureWindowSeconds: 60, cooldownSeconds: COOLDOWN_SECONDS, maxCooldownSeconds: COOLDOWN_SECONDS },
  trials: (mode) => (mode === 'full' ? 20 : 3),
  async run(ctx) {
    await ctx.agents(1);
    let slowestRefusalMs = 0;
    /** Trials that saw the whole cycle: open, refusals, half-open with one probe, closed. */
    let cycles = 0;
    const total = await eachTrial(ctx, async (trial) => {
      await reset(ctx);
      const tally: Tally = emptyTally();
      const id = (phase: string, i: number) => `t${trial}-${phase}${i}`;

      // Open: THRESHOLD transient failures.
      const failing = Array.from({ length: THRESHOLD }, (_, i) => id('fail', i));
      const opening = await submit(ctx.layer, {
        pattern: 'parallel',
        maxConcurrency: THRESHOLD,
        tasks: failing.map((t) => ({ id: t, agentType: TYPE, failureStrategy: 'continue', recovery: { transient: { maxRetries: 0 } }, command: ctx.ledger.command(t, 'exit 75') })),
      });
      addTally(tally, await tallyExecution(ctx, opening, 'SUCCEEDED', failing.map((taskId) => ({ taskId, status: 'failed', errorType: 'transient', attempts: 1, commits: 0 })), 60_000));
      const opened = await breaker(ctx);
      if (opened.state !== 'open' || opened.failures !== THRESHOLD) tally.failures.push(`trial ${trial}: after ${THRESHOLD} transient failures GET /breakers shows ${JSON.stringify(opened)}, expected open with ${THRESHOLD} failures`);

      // Fail fast while open: refused before any claim, nothing runs.
      const refused = Array.from({ length: REFUSED }, (_, i) => id('refused', i));
      const submitted = Date.now();
      const refusing = await submit(ctx.layer, {
        pattern: 'parallel',
        maxConcurrency: REFUSED,
        tasks: refused.map((t) => ({ id: t, agentType: TYPE, failureStrategy: 'continue', command: ctx.ledger.command(t) })),
      });
      const open = new RegExp(`circuit breaker ${KEY} is open`);
      const refusal = await tallyExecution(ctx, refusing, 'SUCCEEDED', refused.map((taskId) => ({ taskId, status: 'failed', errorType: 'dependency', commits: 0, checks: refusedFast(open) })), 60_000);
      addTally(tally, refusal);
      slowestRefusalMs = Math.max(slowestRefusalMs, Date.parse(refusal.execution.stoppedAt) - submitted);
      const stillOpen = await breaker(ctx);
      if (stillOpen.state !== 'open') {
        tally.failures.push(`trial ${trial}: GET /breakers shows ${JSON.stringify(stillOpen)} after the refusals, expected still open (a refusal is no new failure, and no probe is due)`);
        return tally; // no cooldown to wait for, no probe to watch
      }

      // The probe: after the cooldown, CANDIDATES tasks at once; one probes (half-open while it blocks).
      await waitFor(`${KEY}'s cooldown to end`, async () => (Date.now() >= Date.parse(stillOpen.nextProbeAt) + 50 ? true : undefined), (COOLDOWN_SECONDS + 5) * 1000);
      const candidates = Array.from({ length: CANDIDATES }, (_, i) => id('probe', i));
      const probing = await submit(ctx.layer, {
        pattern: 'parallel',
        maxConcurrency: CANDIDATES,
        tasks: candidates.map((t) => ({ id: t, agentType: TYPE, failureStrategy: 'continue', command: ctx.ledger.command(t, ctx.ledger.waitForGate(`${trial}`)) })),
      });
      const halfOpen = await waitFor(`${KEY} to be half-open`, async () => {
        const b = await breaker(ctx);
        return b.state === 'half-open' ? b : undefined;
      }, 30_000);
      // Every other candidate is refused while the probe is out; only then does the probe finish.
      await waitFor(`${CANDIDATES - 1} candidates refused while the probe is out`, async () => {
        const tasks = (await ctx.layer.request('GET', `/executions/${probing}`)).body?.tasks ?? [];
        return tasks.filter((t: any) => t.status === 'failed').length >= CANDIDATES - 1 ? true : undefined;
      }, 30_000);
      ctx.ledger.openGate(`${trial}`);
      await waitFor(`the probe to end`, async () => {
        const ex = (await ctx.layer.request('GET', `/executions/${probing}`)).body;
        return ex?.status !== 'RUNNING' ? true : undefined;
      }, 60_000);
      const ran = candidates.filter((t) => ctx.ledger.entry(t).starts.length > 0);
      if (ran.length !== 1) tally.failures.push(`trial ${trial}: ${ran.length} candidates ran at half-open ([${ran.join(', ')}]), expected exactly one probe`);
      // The one that ran is the probe (with none, the first is expected to have, and counts as lost).
      const probe = ran.length ? ran : candidates.slice(0, 1);
      const expectations: Expectation[] = candidates.map((taskId) =>
        probe.includes(taskId)
          ? { taskId, status: 'completed', attempts: 1, commits: 1 }
          : { taskId, status: 'failed', errorType: 'dependency', commits: 0, checks: refusedFast(new RegExp(`circuit breaker ${KEY} is half-open and its probe is out`)) },
      );
      addTally(tally, await tallyExecution(ctx, probing, 'SUCCEEDED', expectations, 30_000));
      const closed = await breaker(ctx);
      const states = [opened.state, stillOpen.state, halfOpen.state, closed.state].join(' -> ');
      if (states === 'open -> open -> half-open -> closed' && closed.failures === 0 && ran.length === 1) cycles++;
      else tally.failures.push(`trial ${trial}: GET /breakers went ${states} (${closed.failures} failures at the end), expected open -> open -> half-open -> closed with 0`);
      return tally;
    });
    await reset(ctx);
    return { ...total, notes: `per trial: opened by ${THRESHOLD} exit-75 tasks, ${REFUSED} refused while open (slowest plan ${(slowestRefusalMs / 1000).toFixed(1)} s), ${CANDIDATES} at half-open; ${cycles}/${ctx.trials} went open -> half-open -> closed through one probe` };
  },
};
