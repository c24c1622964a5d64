// End-to-end on LocalStack: the deployed stack (npm run deploy:localstack) with its API Gateway,
// Lambda functions, Step Functions, SQS, DynamoDB and S3 on LocalStack, and the agents as host
// worker processes (agent/main.ts through local/process-runtime.ts, as the embedded local layer
// starts them), since LocalStack's free edition has no ECS. Run by `npm run test:localstack`, which
// deploys first and names the outputs in XL_LOCALSTACK_OUTPUTS; skipped everywhere else.
// Written from LocalStack's documentation: these machines have no Docker, so it has never run here.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentType } from '../../core/agent-types.ts';
import { ProcessRuntime } from '../../local/process-runtime.ts';
import { workerEnvironment } from '../../scripts/lib/localstack.ts';

const outputsFile = process.env.XL_LOCALSTACK_OUTPUTS;
const ROOT = join(import.meta.dirname, '../..');
const PATTERNS = ['sequential', 'parallel', 'pipeline'] as const;
/** Lambda cold starts in LocalStack's containers take seconds each; a plan gets minutes. */
const RUN_TIMEOUT_MS = 5 * 60_000;

interface Deployment {
  endpoint: string;
  region: string;
  apiUrl: string;
  outputs: Record<string, string>;
}

describe.skipIf(!outputsFile)('the stack on LocalStack', () => {
  let deployment: Deployment;
  let runtime: ProcessRuntime;
  let runDir: string;
  let signer: SignatureV4;

  /** A request to the deployed API through LocalStack's API Gateway, SigV4-signed as xl signs for AWS. */
  async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const url = new URL(deployment.apiUrl + path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const signed = await signer.sign({
      method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: url.port ? Number(url.port) : undefined,
      path: url.pathname,
      headers: { host: url.host, 'content-type': 'application/json' },
      body: payload,
    });
    const res = await fetch(url, { method, headers: signed.headers as Record<string, string>, body: payload });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : {} };
  }

  async function runToEnd(plan: unknown): Promise<any> {
    const started = await api('POST', '/executions', plan);
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    for (;;) {
      const res = await api('GET', `/executions/${started.body.executionId}`);
      if (res.status === 200 && res.body.status !== 'RUNNING') return res.body;
      if (Date.now() > deadline) throw new Error(`execution ${started.body.executionId} still ${res.body?.status} after ${RUN_TIMEOUT_MS} ms: ${JSON.stringify(res.body)}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  const planOf = (pattern: string) => JSON.parse(readFileSync(join(ROOT, 'examples', `${pattern}.json`), 'utf8'));

  beforeAll(async () => {
    deployment = JSON.parse(readFileSync(outputsFile!, 'utf8')) as Deployment;
    signer = new SignatureV4({ service: 'execute-api', region: deployment.region, credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, sha256: Sha256 });
    runDir = await mkdtemp(join(tmpdir(), 'xl-localstack-run-'));
    const base = workerEnvironment(deployment.outputs, deployment.endpoint, deployment.region);
    runtime = new ProcessRuntime({
      projectRoot: ROOT,
      runDir,
      envFor: () => ({
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        ...base,
        XL_GRACE_SECONDS: '10',
        XL_MODEL_ACCESS: process.env.XL_MODEL_ACCESS ?? '',
        // Host agents share one user: killing all of its processes would kill each other's runs.
        XL_REAP_USER_PROCESSES: '',
      }),
    });
    // One worker per agent type the example plans use.
    const types = new Set<AgentType>();
    for (const p of PATTERNS) JSON.stringify(planOf(p)).replace(/"agentType":"([a-z]+)"/g, (_, t: AgentType) => (types.add(t), ''));
    for (const type of types) await runtime.start(type, 1);
  });

  afterAll(async () => {
    await runtime?.stopAll(15_000);
    if (runDir) await rm(runDir, { recursive: true, force: true });
  });

  it('answers GET /health through API Gateway on LocalStack', async () => {
    const res = await api('GET', '/health');
    expect(res.status).toBe(200);
  });

  it('refuses a malformed plan with 400 before any execution starts', async () => {
    const res = await api('POST', '/executions', { pattern: 'sideways', tasks: [] });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
  });

  for (const pattern of PATTERNS) {
    it(`runs examples/${pattern}.json to SUCCEEDED with host workers`, async () => {
      const ex = await runToEnd(planOf(pattern));
      expect(ex.status, JSON.stringify(ex)).toBe('SUCCEEDED');
      expect(ex.tasks.length).toBeGreaterThan(0);
      for (const task of ex.tasks) {
        expect(task.status, `${task.taskId}: ${JSON.stringify(task.error)}`).toBe('completed');
        expect(task.agentId, `${task.taskId} names the host worker that ran it`).toMatch(/^[a-z]+-/);
      }
    }, RUN_TIMEOUT_MS + 30_000);
  }

  it('hands the pipeline stage outputs to the next stage, as the contract says', async () => {
    const ex = await runToEnd(planOf('pipeline'));
    const review = ex.tasks.find((t: any) => t.taskId === 'review');
    expect(review.output.reviewed).toBeDefined();
  }, RUN_TIMEOUT_MS + 30_000);
});
