// End-to-end: the layer's own steps and its execution-events path under faults, on an embedded local
// layer run in this process so that a test can wrap the template's handlers (LayerOptions.wrapHandler,
// a test-only seam): a stand-in around the real steps handler throws where the test says, and one
// around the real execution-events handler fails or loses a status event.
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_TYPES } from '../../core/agent-types.ts';
import { type Handler, LocalLayer } from '../../local/layer.ts';
import { scratchDir, waitFor } from './harness.ts';

type StepEvent = { step: string; executionId: string; taskIndex?: number };
type StatusEvent = { detail: { name: string; status: string } };

/** What the stand-ins do; each planned fault fires once. */
const faults = {
  /** Gate calls (counted over the layer's life) at which Gate throws, with the error's name. */
  gateThrowsAt: new Map<number, string>(),
  gateCalls: 0,
  /** Throws of Recover and Finalize still to come, by error name. */
  recoverThrows: [] as string[],
  finalizeThrows: [] as string[],
  prepareThrows: [] as string[],
  /** Executions whose end event the events handler fails on, or never gets. */
  failEventsOf: new Set<string>(),
  dropEventsOf: new Set<string>(),
  /** What was thrown, by step. */
  thrown: [] as string[],
  eventsFailed: 0,
  eventsDropped: 0,
};

const fail = (step: string, name: string) => {
  faults.thrown.push(`${step}:${name}`);
  return Object.assign(new Error(`stand-in ${name} failure of ${step}`), { name });
};

function wrapHandler(entry: string, real: Handler): Handler {
  if (entry === 'functions/steps.ts') {
    return async (event) => {
      const e = event as StepEvent;
      if (e.step === 'gate') {
        const name = faults.gateThrowsAt.get(++faults.gateCalls);
        if (name) throw fail('gate', name);
      }
      if (e.step === 'recover' && faults.recoverThrows.length) throw fail('recover', faults.recoverThrows.shift()!);
      if (e.step === 'finalize' && faults.finalizeThrows.length) {
        const name = faults.finalizeThrows.shift()!;
        if (name === 'permanent') faults.dropEventsOf.add(e.executionId);
        throw fail('finalize', name);
      }
      if (e.step === 'prepare' && faults.prepareThrows.length) {
        faults.failEventsOf.add(e.executionId);
        throw fail('prepare', faults.prepareThrows.shift()!);
      }
      return real(event);
    };
  }
  if (entry === 'functions/execution-events.ts') {
    return async (event) => {
      const name = (event as Partial<StatusEvent>).detail?.name;
      if (name && faults.failEventsOf.has(name) && (event as StatusEvent).detail.status !== 'RUNNING') {
        faults.eventsFailed++;
        throw new Error('stand-in failure of the execution-events handler');
      }
      if (name && faults.dropEventsOf.has(name)) {
        faults.eventsDropped++;
        return undefined; // lost on the way: the handler never sees it
      }
      return real(event);
    };
  }
  return real;
}

let layer: LocalLayer;
let stateDir: string;

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'xl-step-faults-'));
  process.env.XL_AGENT_SLOTS = '4';
  process.env.XL_LOG_LEVEL = 'warn';
  const pool = AGENT_TYPES.map((t) => `${t}=${t === 'coder' ? '2..2' : '0..0'}`).join(',');
  layer = new LocalLayer({ port: 0, stateDir, heartbeatSeconds: 3, pool, quiet: true, wrapHandler });
  await layer.start();
}, 120_000);

afterAll(async () => {
  await layer?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

async function request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(layer.url + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function submit(plan: object): Promise<string> {
  const res = await request('POST', '/executions', plan);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.executionId as string;
}

const ended = (executionId: string, timeoutMs = 90_000) =>
  waitFor(
    `execution ${executionId} to end`,
    async () => {
      const res = await request('GET', `/executions/${executionId}`);
      return res.body.status !== 'RUNNING' && res.body.status !== 'PENDING' ? res.body : undefined;
    },
    timeoutMs,
  );

/** Two retries of transient failures and none of the rest: 250 such tasks fit one batch's history. */
const twoRetries = { transient: { maxRetries: 2 }, timeout: { maxRetries: 0 }, resource: { maxRetries: 0 }, dependency: { maxRetries: 0 } };

describe('the steps under AWS faults', () => {
  it('a plan of 250 tasks in one batch SUCCEEDS though its steps\' Lambda throws transiently in the middle of it', async () => {
    const dir = scratchDir('xl-step-faults-');
    faults.gateThrowsAt = new Map([
      [faults.gateCalls + 100, 'transient'], // a throttled DynamoDB call, named by the handler: retried
      [faults.gateCalls + 125, 'Lambda.Unknown'], // the function crashed: retried
      [faults.gateCalls + 150, 'permanent'], // past the Retry: caught, the task's own recovery retries it
    ]);
    faults.recoverThrows = ['transient'];
    faults.finalizeThrows = ['transient'];
    faults.thrown = [];
    const tasks = Array.from({ length: 250 }, (_, i) => ({
      id: `t${i}`,
      agentType: 'coder',
      // Task 200 fails once with EX_TEMPFAIL, so that Recover runs (and its first call throws).
      command: i === 200 ? `test -f ${dir}/again || { touch ${dir}/again; exit 75; }` : 'true',
      recovery: twoRetries,
    }));
    const executionId = await submit({ pattern: 'parallel', maxConcurrency: 40, tasks });
    const ex = await ended(executionId);

    expect(faults.thrown.sort()).toEqual(['finalize:transient', 'gate:Lambda.Unknown', 'gate:permanent', 'gate:transient', 'recover:transient']);
    expect(ex.status, ex.message).toBe('SUCCEEDED');
    expect(ex.tasks).toHaveLength(250);
    expect(ex.tasks.every((t: any) => t.status === 'completed')).toBe(true);
    // Task 200 ran twice (its own failure); every other task ran once, the one whose Gate was caught included.
    expect(ex.tasks.filter((t: any) => t.attempts !== 1).map((t: any) => [t.taskId, t.attempts])).toEqual([['t200', 2]]);

    // One TaskBatch child of 250 tasks ran it.
    const machines = await layer.sfn!.listStateMachines();
    const taskBatch = machines.stateMachines!.find((m) => /TaskBatch/.test(m.name!))!;
    const children = (await layer.sfn!.listExecutions({ stateMachineArn: taskBatch.stateMachineArn, maxResults: 1000 })).executions!.filter((e) =>
      e.name!.startsWith(executionId),
    );
    expect(children.map((c) => c.name)).toEqual([`${executionId}-0`]);
  }, 180_000);
});

describe('the execution-events path under faults', () => {
  it('an end event whose handler failed lands on the DLQ, and the reconcile records the end from it', async () => {
    faults.prepareThrows = ['permanent'];
    const executionId = await submit({ pattern: 'sequential', tasks: [{ id: 'never-runs', agentType: 'coder', command: 'true' }] });
    const ex = await ended(executionId);
    expect(faults.eventsFailed).toBeGreaterThan(0);
    expect(ex.status).toBe('FAILED');
    expect(ex.message).toMatch(/^Layer\.PrepareFailed: stand-in permanent failure of prepare/);
    // Recorded from the dead letter, not from the run: the sweep looks at RUNNING executions only, and Prepare never ran.
    // The end is written first (conditional on the run, so a resume in between wins), then the open
    // tasks are cancelled: a read between the two sees the task still pending (failed so once in CI).
    const settled = await waitFor('the open task cancelled after the end', async () => {
      const res = await request('GET', `/executions/${executionId}`);
      return res.body.tasks[0].status !== 'pending' ? res.body : undefined;
    });
    expect(settled.tasks[0].status).toBe('skipped');
  }, 120_000);

  it('an execution whose end event was lost is ended by the reconcile from its run\'s status', async () => {
    faults.finalizeThrows = ['permanent'];
    const executionId = await submit({ pattern: 'sequential', tasks: [{ id: 'runs', agentType: 'coder', command: 'true' }] });
    const ex = await ended(executionId);
    expect(faults.eventsDropped).toBeGreaterThan(0);
    expect(ex.status).toBe('FAILED');
    expect(ex.message).toMatch(/^Layer\.FinalizeFailed: stand-in permanent failure of finalize/);
    expect(ex.tasks[0].status).toBe('completed');
  }, 120_000);
});
