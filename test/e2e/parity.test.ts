// Parity: the ASL the local layer runs is the synthesized DefinitionString with only ARNs and URLs
// substituted. Asked of the running layer through its Step Functions API (DescribeStateMachine).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { DescribeStateMachineCommand, ListStateMachinesCommand, SFNClient } from '@aws-sdk/client-sfn';
import { Stack } from 'aws-cdk-lib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { testApp } from '../support/cdk-app.ts';
import { stateMachineDefinitions } from '../../infra/asl.ts';
import { ExecutionLayerStack } from '../../infra/stack.ts';
import { type Layer, ROOT, removeStateDir, startLayer } from './harness.ts';

let layer: Layer;
// A container credentials endpoint like ECS's (169.254.170.2), on loopback: it answers only under
// its secret path, which only the worker's environment holds. The probe below knows where it is.
const credentialHits: string[] = [];
const CREDENTIALS_PATH = '/v2/credentials/only-the-worker-knows-this';
const credentialsEndpoint = createServer((req, res) => {
  credentialHits.push(req.url ?? '');
  if (req.url !== CREDENTIALS_PATH) return void res.writeHead(404).end('not found');
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ AccessKeyId: 'ASIAPROBEFOUNDME', SecretAccessKey: 'x', Token: 'y', Expiration: '2099-01-01T00:00:00Z' }));
});
beforeAll(async () => {
  await new Promise<void>((r) => credentialsEndpoint.listen(0, '127.0.0.1', r));
  const credentialsPort = (credentialsEndpoint.address() as AddressInfo).port;
  layer = await startLayer({
    env: {
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${credentialsPort}${CREDENTIALS_PATH}`,
      XL_POOL: 'coder=1..1,tester=1..1,reviewer=1..1',
      XL_API_TOKEN: 'secret-token',
      // Secrets the agents' commands must never see (isolation test below).
      ANTHROPIC_API_KEY: 'sk-ant-fake-key-for-the-probe',
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials/fake-for-the-probe',
      // Claude Code tasks run a stand-in CLI that plays a synthesized transcript.
      XL_CLAUDE_BIN: join(ROOT, 'test/fixtures/claude-standin.mjs'),
    },
  });
});
afterAll(async () => {
  credentialsEndpoint.close();
  await layer?.stop();
  if (layer) await removeStateDir(layer.stateDir);
});

const MARK = '@@XL_TOKEN@@';

/** Compares the two trees; where the synthesized text had a token, the local value must be an ARN or URL. */
function compare(expected: unknown, actual: unknown, path: string, substituted: string[]): void {
  if (typeof expected === 'string' && expected.includes(MARK)) {
    expect(typeof actual, path).toBe('string');
    const pattern = new RegExp('^' + expected.split(MARK).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('(.+?)') + '$');
    expect(actual, path).toMatch(pattern);
    expect(actual, `${path} is an ARN or a URL`).toMatch(/^(arn:aws:|https?:\/\/)/);
    substituted.push(path);
    return;
  }
  if (expected && typeof expected === 'object') {
    expect(actual && typeof actual === 'object', path).toBe(true);
    expect(Object.keys(actual as object).sort(), path).toEqual(Object.keys(expected).sort());
    for (const [k, v] of Object.entries(expected)) compare(v, (actual as Record<string, unknown>)[k], `${path}/${k}`, substituted);
    return;
  }
  expect(actual, path).toEqual(expected);
}

it('runs the synthesized ASL with only ARNs and URLs substituted', async () => {
  const context = JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')).context;
  const app = testApp({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  const stack: Stack = new ExecutionLayerStack(app, 'xl', { stackName: 'xl' });
  const template = app.synth().getStackByName(stack.stackName).template;
  const definitions = stateMachineDefinitions(template);
  expect(Object.keys(definitions)).toHaveLength(4);

  const sfn = new SFNClient({ endpoint: layer.endpoint.services!.stepfunctions, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const machines = (await sfn.send(new ListStateMachinesCommand({}))).stateMachines ?? [];
  expect(machines).toHaveLength(4);
  const substituted: string[] = [];
  for (const [logicalId, parts] of Object.entries(definitions)) {
    const name = (template.Resources[logicalId].Properties.StateMachineName as string | undefined) ?? logicalId;
    const machine = machines.find((m) => m.name === name || m.stateMachineArn!.endsWith(`:${logicalId}`));
    expect(machine, logicalId).toBeDefined();
    const running = await sfn.send(new DescribeStateMachineCommand({ stateMachineArn: machine!.stateMachineArn }));
    const expected = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : MARK)).join(''));
    compare(expected, JSON.parse(running.definition!), logicalId, substituted);
  }
  expect(substituted.length).toBeGreaterThan(0);
});

it('asks for the bearer token on every route but GET /health when XL_API_TOKEN is set', async () => {
  expect((await layer.request('GET', '/health')).status).toBe(200);
  const denied = await layer.request('GET', '/executions');
  expect(denied.status).toBe(401);
  expect(denied.body.error.type).toBe('permanent');
  expect((await layer.request('GET', '/executions', undefined, { authorization: 'Bearer wrong-token!' })).status).toBe(401);
  expect((await layer.request('GET', '/executions', undefined, { authorization: 'Bearer secret-token' })).status).toBe(200);
});

it('serves its OpenAPI document at GET /openapi.json without the bearer token: the committed schemas/openapi.json', async () => {
  const res = await layer.request('GET', '/openapi.json');
  expect(res.status).toBe(200);
  expect(res.body).toEqual(JSON.parse(readFileSync(join(ROOT, 'schemas/openapi.json'), 'utf8')));
  expect(res.body.openapi).toBe('3.1.0');
});

it('xl run submits a plan, shows progress, and exits 0 only when it SUCCEEDED', async () => {
  const xl = (args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/xl.ts'), ...args, '--endpoint', layer.url], {
      cwd: ROOT,
      env: { ...process.env, XL_API_TOKEN: 'secret-token' },
    }).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout + e.stderr }),
    );
  const ok = await xl(['run', join(ROOT, 'examples/sequential.json'), '--watch']);
  expect(ok.code, ok.out).toBe(0);
  expect(ok.out).toMatch(/design: completed/);
  expect(ok.out).toMatch(/SUCCEEDED/);
  const bad = await xl(['run', join(ROOT, 'test/e2e/fixtures/failing.yaml')]);
  expect(bad.code, bad.out).toBe(1);
  expect(bad.out).toMatch(/FAILED/);
  const invalid = await xl(['status', 'ex-unknown']);
  expect(invalid.code).toBe(1);
  expect(invalid.out).toMatch(/404/);
});

// CI runs as root, so the user switch is exercised there; as another user it cannot be.
it.skipIf(process.getuid?.() !== 0)('runs commands as another user that finds no credential, key or token anywhere', async () => {
  const secrets = 'AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AWS_CONTAINER_|ANTHROPIC_API_KEY|sk-ant-|XL_API_TOKEN|secret-token|taskToken|only-the-worker-knows-this|ASIAPROBEFOUNDME';
  const port = (credentialsEndpoint.address() as AddressInfo).port;
  // The credentials endpoint, at the paths one would guess (its secret path is in the worker's environment only).
  const askEndpoint = `node -e 'for (const p of ["/", "/v2/credentials", "/v2/credentials/"]) fetch("http://127.0.0.1:${port}" + p).then((r) => r.text()).then((t) => console.log(t), () => {})'`;
  // Everything the command can read: its environment, every process's environ, the layer's state.
  const probe = [
    `{ env; for f in /proc/[0-9]*/environ; do cat "$f" 2>/dev/null | tr "\\0" "\\n"; done; ${askEndpoint};`,
    `  grep -rah . ${layer.stateDir} 2>/dev/null; } > probe.txt;`,
    `leaks=$(grep -c -E '${secrets}' probe.txt);`,
    'environs=$(for f in /proc/[0-9]*/environ; do cat "$f" >/dev/null 2>&1 && echo x; done | wc -l);',
    'printf \'{"leaks":%s,"uid":%s,"readableEnvirons":%s}\\n\' "$leaks" "$(id -u)" "$environs"',
  ].join(' ');
  const res = await layer.request(
    'POST',
    '/executions',
    { pattern: 'sequential', tasks: [{ id: 'probe', agentType: 'coder', command: probe }] },
    { authorization: 'Bearer secret-token' },
  );
  expect(res.status).toBe(202);
  let ex: any;
  for (;;) {
    ex = (await layer.request('GET', `/executions/${res.body.executionId}`, undefined, { authorization: 'Bearer secret-token' })).body;
    if (ex.status !== 'RUNNING') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(ex.status, JSON.stringify(ex)).toBe('SUCCEEDED');
  const out = ex.tasks[0].output;
  expect(out.uid).not.toBe(0);
  expect(out.leaks).toBe(0);
  // The probe did reach the endpoint, and got nothing from it.
  expect(credentialHits).toEqual(expect.arrayContaining(['/', '/v2/credentials', '/v2/credentials/']));
  expect(credentialHits).not.toContain(CREDENTIALS_PATH);
  // It can read its own processes' environments (the probe itself), nothing of root's.
  expect(out.readableEnvirons).toBeGreaterThan(0);
});

it('runs a Claude Code task and reports its cost, tokens and turns', async () => {
  const auth = { authorization: 'Bearer secret-token' };
  const res = await layer.request(
    'POST',
    '/executions',
    { pattern: 'sequential', tasks: [{ id: 'claude', agentType: 'coder', instructions: 'Add a greeting to the README. [standin:success]', limits: { maxTurns: 5 } }] },
    auth,
  );
  expect(res.status).toBe(202);
  let ex: any;
  for (;;) {
    ex = (await layer.request('GET', `/executions/${res.body.executionId}`, undefined, auth)).body;
    if (ex.status !== 'RUNNING') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(ex.status, JSON.stringify(ex.tasks[0])).toBe('SUCCEEDED');
  expect(ex.tasks[0].output.sessionId).toEqual(expect.any(String));
  expect(ex.tasks[0].cost).toEqual({ usd: expect.any(Number), inputTokens: expect.any(Number), outputTokens: expect.any(Number), turns: 3 });
  expect(ex.tasks[0].cost.usd).toBeGreaterThan(0);
  // Finished: no progress left on the task, and the execution's total is its tasks' cost.
  expect(ex.tasks[0].progress).toBeUndefined();
  expect(ex.cost).toEqual(ex.tasks[0].cost);
  // Its transcript, through `xl artifact` (from the local layer's bucket).
  const xl = (args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/xl.ts'), ...args, '--endpoint', layer.url], {
      cwd: ROOT,
      env: { ...process.env, XL_API_TOKEN: 'secret-token', XL_STATE_DIR: layer.stateDir },
    });
  expect((await xl(['artifact', ex.executionId, 'claude'])).stdout).toMatch(/^claude-transcript\.jsonl {2}\d+ bytes {2}s3:\/\//m);
  const transcript = (await xl(['artifact', ex.executionId, 'claude', 'claude-transcript.jsonl'])).stdout.trim().split('\n');
  expect(JSON.parse(transcript[0]!)).toMatchObject({ type: 'system', subtype: 'init' });
  expect(JSON.parse(transcript.at(-1)!)).toMatchObject({ type: 'result', subtype: 'success' });
});

it('stops dispatching once the plan\'s budget is spent: the next task fails as resource, unrun', async () => {
  const auth = { authorization: 'Bearer secret-token' };
  // Each stand-in run records 0.0123 USD: the first task alone spends the 0.01 budget.
  const claude = (id: string) => ({ id, agentType: 'coder', instructions: `Step ${id}. [standin:success]` });
  const res = await layer.request('POST', '/executions', { pattern: 'sequential', limits: { maxBudgetUsd: 0.01 }, tasks: [claude('one'), claude('two'), claude('three')] }, auth);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  let ex: any;
  for (;;) {
    ex = (await layer.request('GET', `/executions/${res.body.executionId}`, undefined, auth)).body;
    if (ex.status !== 'RUNNING') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(ex.status).toBe('FAILED');
  expect(ex.limits).toEqual({ maxBudgetUsd: 0.01 });
  expect(ex.tasks.map((t: any) => t.status)).toEqual(['completed', 'failed', 'skipped']);
  expect(ex.tasks[1]).toMatchObject({ attempts: 0, error: { type: 'resource', message: "the plan's budget of 0.01 USD is spent (0.0123 USD recorded)" } });
  expect(ex.cost).toMatchObject({ usd: 0.0123 });
});
