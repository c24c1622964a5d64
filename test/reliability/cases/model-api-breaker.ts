// A model-API breaker opened by repeated 529s, refusing Claude Code tasks of every type while command
// tasks of the same types still run. On a layer of its own, whose agents reach the model as they do
// on AWS: XL_MODEL_ACCESS=api-key with ANTHROPIC_BASE_URL pointing the worker's model proxy
// (agent/model-proxy.ts) at a stand-in Messages API on 127.0.0.1 that answers every call 529
// overloaded_error. The CLI is the stand-in (test/fixtures/claude-standin.mjs) behind a wrapper that
// makes it call the API once through the proxy (XL_STANDIN_MODEL_CALL_OUT, with the per-run token
// the driver gave it) before it plays `overloaded` (the CLI giving up after 529s). The path exercised:
// CLI -> proxy (token swapped for the key) -> stand-in API 529 -> the proxy's last status ->
// dependency/model-api (agent/drivers/claude-code.ts modelApiFailure) -> Recover counts it against
// dependency:model-api. The transcript alone would classify the same; the case checks that every
// run's call reached the stand-in API with the real key, so the proxy's path is the one taken.
// Each trial, from closed: THRESHOLD Claude Code tasks fail on 529s and open it; then a plan of a
// Claude Code task and a command task of each of two types: the Claude Code ones fail fast as
// `dependency` naming dependency:model-api with no CLI started and no API call, the command ones
// complete. POST /breakers/{key}/reset ends a trial.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AGENT_TYPES } from '#core/agent-types.ts';
import { MODEL_API_BREAKER_KEY } from '#core/breakers.ts';
import { type Layer, ROOT, scratchDir, waitFor } from '../../e2e/harness.ts';
import { type Expectation, type TaskCheck, type Tally, addTally, emptyTally } from '../account.ts';
import { type ReliabilityCase, eachTrial, submit, tallyExecution } from '../suite.ts';

const TYPES = ['performance', 'notification'] as const;
const THRESHOLD = 3;
const KEY = MODEL_API_BREAKER_KEY;
const API_KEY = 'sk-ant-standin-model-api-breaker';

/** A Messages API that is always overloaded, counting the calls that reach it and the key each carried. */
async function overloadedApi(): Promise<{ url: string; calls: { path: string; key: string }[]; close(): void }> {
  const calls: { path: string; key: string }[] = [];
  const server = createServer((req, res) => {
    calls.push({ path: (req.url ?? '').split('?')[0]!, key: String(req.headers['x-api-key'] ?? '') });
    req.resume();
    req.on('end', () => res.writeHead(529, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, close: () => server.close() };
}

/**
 * The CLI the agents run: the stand-in, made to call the model API once per run (not for the
 * workers' `--version` probe), each run appending a line to `runs`.
 */
function cliWrapper(dir: string): { bin: string; runs: () => number } {
  const runs = join(dir, 'cli-runs');
  writeFileSync(runs, '');
  chmodSync(runs, 0o666); // the CLI runs as the agents' user
  const bin = join(dir, 'claude');
  writeFileSync(
    bin,
    [
      '#!/bin/sh',
      'for a in "$@"; do',
      '  if [ "$a" = "-p" ]; then',
      `    echo "$$" >> ${runs}`,
      `    XL_STANDIN_MODEL_CALL_OUT=${dir}/call-$$.json; export XL_STANDIN_MODEL_CALL_OUT`,
      '  fi',
      'done',
      `exec ${process.execPath} ${join(ROOT, 'test/fixtures/claude-standin.mjs')} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(bin, 0o755);
  return { bin, runs: () => (existsSync(runs) ? readFileSync(runs, 'utf8').split('\n').filter(Boolean).length : 0) };
}

async function breakerView(layer: Layer): Promise<any> {
  const res = await layer.request('GET', '/breakers');
  if (res.status !== 200) throw new Error(`GET /breakers: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.items.find((b: any) => b.key === KEY) ?? { key: KEY, state: 'closed', failures: 0 };
}

const check = (ok: boolean, problem: string) => (ok ? undefined : problem);

export const modelApiBreaker: ReliabilityCase = {
  name: 'model-api-breaker',
  cheap: false,
  trials: (mode) => (mode === 'full' ? 20 : 3),
  async run(ctx) {
    const api = await overloadedApi();
    const dir = scratchDir('xl-reliability-model-api-');
    const cli = cliWrapper(dir);
    try {
      const layer = await ctx.startLayer({
        XL_POOL: AGENT_TYPES.map((t) => `${t}=${(TYPES as readonly string[]).includes(t) ? '1..1' : '0..0'}`).join(','),
        XL_MAX_CONCURRENT_TASKS: TYPES.map((t) => `${t}=4`).join(','),
        XL_LOG_LEVEL: 'info',
        XL_CLAUDE_BIN: cli.bin,
        XL_MODEL_ACCESS: 'api-key',
        ANTHROPIC_API_KEY: API_KEY,
        ANTHROPIC_BASE_URL: api.url,
        // Only the model API's breaker is under test: a long cooldown keeps it open for the trial.
        XL_BREAKER_POLICY: JSON.stringify({ [KEY]: { failureThreshold: THRESHOLD, failureWindowSeconds: 60, cooldownSeconds: 3600, maxCooldownSeconds: 3600 }, 'agent:*': { failureThreshold: 1_000_000 } }),
      });
      const own = { layer, ledger: ctx.ledger };
      await waitFor(`an idle agent of each of ${TYPES.join(', ')}`, async () => {
        const agents = (await layer.request('GET', '/agents')).body.items;
        return TYPES.every((t) => agents.some((a: any) => a.agentType === t && a.status === 'idle')) ? true : undefined;
      }, 120_000);
      const failFast = { dependency: { maxRetries: 0 } };
      const claude = (id: string, type: string) => ({ id, agentType: type, failureStrategy: 'continue', recovery: failFast, instructions: `Profile ${id}. [standin:overloaded]` });

      /** Trials in which all of it held: opened through the proxy, Claude Code refused unrun, commands ran. */
      let held = 0;
      const total = await eachTrial(ctx, async (trial) => {
        const tally: Tally = emptyTally();
        const reset = await layer.request('POST', `/breakers/${KEY}/reset`);
        if (reset.status !== 200 && reset.status !== 404) throw new Error(`POST /breakers/${KEY}/reset: ${reset.status} ${JSON.stringify(reset.body)}`);

        // Open: THRESHOLD Claude Code runs, each overloaded.
        const callsBefore = api.calls.length;
        const runsBefore = cli.runs();
        const opening = Array.from({ length: THRESHOLD }, (_, i) => `t${trial}-open${i}`);
        const openId = await submit(layer, { pattern: 'parallel', maxConcurrency: THRESHOLD, tasks: opening.map((id, i) => claude(id, TYPES[i % TYPES.length]!)) });
        const overloaded: TaskCheck = (task) => check(task.error?.source === 'model-api', `error ${JSON.stringify(task.error)}, expected source model-api`);
        addTally(tally, await tallyExecution(own, openId, 'SUCCEEDED', opening.map((taskId) => ({ taskId, status: 'failed', errorType: 'dependency', attempts: 1, commits: 0, checks: [overloaded] })), 90_000));
        const calls = api.calls.slice(callsBefore);
        if (cli.runs() - runsBefore !== THRESHOLD) tally.failures.push(`trial ${trial}: ${cli.runs() - runsBefore} CLI runs for ${THRESHOLD} Claude Code tasks`);
        if (calls.length !== THRESHOLD || calls.some((c) => c.path !== '/v1/messages' || c.key !== API_KEY)) {
          tally.failures.push(`trial ${trial}: the stand-in API saw ${JSON.stringify(calls.map((c) => ({ path: c.path, key: c.key === API_KEY ? 'the key' : c.key })))}, expected ${THRESHOLD} calls to /v1/messages with the real key (through the proxy)`);
        }
        const opened = await breakerView(layer);
        if (opened.state !== 'open' || opened.failures !== THRESHOLD) tally.failures.push(`trial ${trial}: after ${THRESHOLD} overloaded runs GET /breakers shows ${JSON.stringify(opened)}, expected open with ${THRESHOLD} failures`);

        // While open: Claude Code tasks of both types refused, command tasks of the same types run.
        const runsOpen = cli.runs();
        const callsOpen = api.calls.length;
        const refused = TYPES.map((t) => ({ id: `t${trial}-claude-${t}`, type: t }));
        const commands = TYPES.map((t) => ({ id: `t${trial}-command-${t}`, type: t }));
        const mixed = await submit(layer, {
          pattern: 'parallel',
          maxConcurrency: 4,
          tasks: [...refused.map((r) => claude(r.id, r.type)), ...commands.map((c) => ({ id: c.id, agentType: c.type, failureStrategy: 'continue', command: ctx.ledger.command(c.id) }))],
        });
        const expectations: Expectation[] = [
          ...refused.map(({ id }) => ({
            taskId: id,
            status: 'failed' as const,
            errorType: 'dependency' as const,
            commits: 0 as const,
            checks: [
              (task: any) => check(new RegExp(`circuit breaker ${KEY} is open`).test(task.error?.message ?? ''), `error ${JSON.stringify(task.error)} does not name ${KEY} as open`),
              (task: any) => check(task.attempts === 0 && !task.agentId, `refused, yet ${task.attempts} attempts${task.agentId ? ` on ${task.agentId}` : ''}`),
            ],
          })),
          ...commands.map(({ id }) => ({ taskId: id, status: 'completed' as const, attempts: 1, commits: 1 as const })),
        ];
        const result = await tallyExecution(own, mixed, 'SUCCEEDED', expectations, 60_000);
        addTally(tally, result);
        if (cli.runs() !== runsOpen) tally.failures.push(`trial ${trial}: ${cli.runs() - runsOpen} CLI runs started while ${KEY} was open`);
        if (api.calls.length !== callsOpen) tally.failures.push(`trial ${trial}: ${api.calls.length - callsOpen} model API calls while ${KEY} was open`);
        // Run by agents of both types (the task record names its agent; GET /agents, the agent's type).
        const agentTypes = new Map<string, string>((await layer.request('GET', '/agents')).body.items.map((a: any) => [a.agentId, a.agentType]));
        const types = new Set(result.execution.tasks.filter((t: any) => t.status === 'completed').map((t: any) => agentTypes.get(t.agentId)));
        if (types.size !== TYPES.length) tally.failures.push(`trial ${trial}: command tasks completed on [${[...types].join(', ')}], expected ${TYPES.join(', ')}`);
        if (!tally.failures.length) held++;
        return tally;
      });
      return { ...total, notes: `${held}/${ctx.trials} trials: ${THRESHOLD} Claude Code runs get 529 through the model proxy and open ${KEY}, then 2 Claude Code tasks (${TYPES.join(', ')}) are refused unrun while 2 command tasks of those types complete; ${api.calls.length} API calls` };
    } finally {
      api.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
