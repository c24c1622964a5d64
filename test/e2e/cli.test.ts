// The xl command as a user runs it, against a real local layer (one start for the file, guarded by
// XL_API_TOKEN so the 401 hint can be asked of it too): a live table on a pseudo-terminal (util-linux
// `script` gives the command one), plain lines through a pipe, --json, offline validation that
// points at the bad line, shell completion, and the hints for an unreachable endpoint, a 401 and an
// IAM 403.
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Layer, ROOT, removeStateDir, scratchDir, startLayer } from './harness.ts';

const TOKEN = 'cli-test-token';
const XL = [process.execPath, '--import', 'tsx', join(ROOT, 'cli/xl.ts')];
const fixture = (name: string) => join(ROOT, 'test/e2e/fixtures', name);
let layer: Layer;

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end with stdout and stderr as pipes; never rejects. */
function exec(file: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Ran> {
  return new Promise((done) => {
    execFile(file, args, { cwd: ROOT, env: { ...process.env, XL_API_TOKEN: TOKEN, ...env }, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const xl = (args: string[], env: Record<string, string | undefined> = {}) => exec(XL[0]!, [...XL.slice(1), ...args], env);
const xlAt = (args: string[], env: Record<string, string | undefined> = {}) => xl([...args, '--endpoint', layer.url], env);

/** Runs xl with its stdout on a pseudo-terminal: `script` owns the pty and copies it to its stdout. */
const xlOnTerminal = (args: string[]) => exec('script', ['-qfec', [...XL, ...args, '--endpoint', layer.url].join(' '), '/dev/null']);

/**
 * test/e2e/fixtures/watched.yaml with its last task held on a gate until `openWhen` sees it running
 * in xl's output: what the watch shows while a task runs is then seen for certain, not by timing.
 */
function watchedPlan(): { file: string; gate: string } {
  const dir = scratchDir('xl-cli-watch-');
  const gate = join(dir, 'gate');
  const file = join(dir, 'watched.yaml');
  writeFileSync(file, readFileSync(fixture('watched.yaml'), 'utf8').replace('sleep 2;', `while [ ! -e ${gate} ]; do sleep 0.05; done;`));
  return { file, gate };
}

/** Runs a program to its end like exec, opening `gate` once `running` matches its stdout or stderr. */
function execOpening(file: string, args: string[], gate: string, running: RegExp): Promise<Ran> {
  return new Promise((done) => {
    const child = spawn(file, args, { cwd: ROOT, env: { ...process.env, XL_API_TOKEN: TOKEN } });
    let stdout = '';
    let stderr = '';
    const check = () => {
      if (running.test(stdout + stderr)) writeFileSync(gate, '');
    };
    child.stdout.on('data', (c: Buffer) => ((stdout += c.toString()), check()));
    child.stderr.on('data', (c: Buffer) => ((stderr += c.toString()), check()));
    child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
  });
}

beforeAll(async () => {
  layer = await startLayer({ env: { XL_POOL: 'coder=1..1,tester=1..1,reviewer=1..1', XL_API_TOKEN: TOKEN } });
});
afterAll(async () => {
  await layer?.stop();
  if (layer) await removeStateDir(layer.stateDir);
});

describe('xl run --watch', () => {
  it('redraws a live table in place on a terminal and exits 0 when the run SUCCEEDED', async () => {
    const plan = watchedPlan();
    const running = /check\s+running\s+tester-\S+\s+1\s+\d+\.\ds/;
    const run = await execOpening('script', ['-qfec', [...XL, 'run', plan.file, '--watch', '--endpoint', layer.url].join(' '), '/dev/null'], plan.gate, running);
    expect(run.code, run.stdout).toBe(0);
    // Each frame after the first moves the cursor up over the last one and clears below it.
    const ESC = String.fromCharCode(27);
    expect(run.stdout).toMatch(new RegExp(`${ESC}\\[\\d+F${ESC}\\[J`));
    expect(run.stdout).toMatch(/TASK\s+STATUS\s+AGENT\s+ATTEMPTS\s+DURATION\s+COST/);
    expect(run.stdout).toMatch(/check\s+running\s+tester-\S+\s+1\s+\d+\.\ds/);
    expect(run.stdout).toMatch(/\[#{24}\] 3\/3 tasks/);
    expect(run.stdout).toMatch(/design\s+completed\s+coder-\S+\s+1\s+\d+\.\ds/);
    expect(run.stdout).toMatch(/SUCCEEDED/);
    // The cursor, hidden while drawing, is shown again.
    expect(run.stdout.lastIndexOf('\x1b[?25h')).toBeGreaterThan(run.stdout.lastIndexOf('\x1b[?25l'));
  });

  it('exits 1 on a terminal when the run FAILED, naming the failed task under the table', async () => {
    const run = await xlOnTerminal(['run', fixture('failing.yaml'), '--watch']);
    expect(run.code, run.stdout).toBe(1);
    expect(run.stdout).toMatch(/broken\s+failed/);
    expect(run.stdout).toMatch(/FAILED/);
  });

  it('prints plain lines, without escape codes, when its output is a pipe', async () => {
    const plan = watchedPlan();
    const run = await execOpening(XL[0]!, [...XL.slice(1), 'run', plan.file, '--watch', '--endpoint', layer.url], plan.gate, /check: running on tester-/);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).not.toContain('\x1b');
    expect(run.stdout).toMatch(/^\d\d:\d\d:\d\d {2}check: running on tester-\S+$/m);
    expect(run.stdout).toMatch(/^\d\d:\d\d:\d\d {2}check: completed$/m);
    expect(run.stdout).toMatch(/SUCCEEDED/);
    const failed = await xlAt(['run', fixture('failing.yaml'), '--watch']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/broken: failed/);
  });
});

describe('--json', () => {
  it('prints one JSON document for run, status, agents and a refusal, with progress on stderr under --watch', async () => {
    const plan = watchedPlan();
    const run = await execOpening(XL[0]!, [...XL.slice(1), 'run', plan.file, '--json', '--watch', '--endpoint', layer.url], plan.gate, /check: running/);
    expect(run.code, run.stderr).toBe(0);
    const ex = JSON.parse(run.stdout);
    expect(ex.status).toBe('SUCCEEDED');
    expect(ex.tasks.map((t: { taskId: string }) => t.taskId)).toEqual(['design', 'build', 'check']);
    expect(run.stderr).toMatch(/check: completed/);

    const status = await xlAt(['status', ex.executionId, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ executionId: ex.executionId, status: 'SUCCEEDED' });
    const agents = await xlAt(['agents', '--json']);
    expect(agents.code).toBe(0);
    expect(JSON.parse(agents.stdout)).toBeTypeOf('object');

    const failed = await xlAt(['run', fixture('failing.yaml'), '--json']);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout).status).toBe('FAILED');
    const missing = await xlAt(['status', 'ex-unknown', '--json']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout).error).toMatchObject({ status: 404 });
  });
});

describe('xl validate', () => {
  it('points at the line and column of the bad value in a YAML plan, and exits 1', async () => {
    const res = await xl(['validate', fixture('invalid-plan.yaml')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`${fixture('invalid-plan.yaml')}:9:21: /tasks/1/timeoutSeconds: Too small`);
  });

  it('points at the task that lacks a command in a JSON plan, and says so in --json', async () => {
    const res = await xl(['validate', fixture('invalid-plan.json')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/invalid-plan\.json:5:5: \/tasks\/1: exactly one of instructions or command is required/);
    const json = JSON.parse((await xl(['validate', fixture('invalid-plan.json'), '--json'])).stdout);
    expect(json).toMatchObject({ valid: false, errors: [{ pointer: '/tasks/1', line: 5, column: 5 }] });
  });

  it('accepts every example plan and the YAML fixture without reaching any layer', async () => {
    for (const plan of ['examples/sequential.json', 'examples/pipeline.json', 'test/e2e/fixtures/watched.yaml']) {
      const res = await xl(['validate', join(ROOT, plan)], { XL_ENDPOINT: 'http://127.0.0.1:9' });
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toMatch(/: valid$/m);
    }
  });

  it('places the API\'s own validation errors in the file when xl run submits a bad plan', async () => {
    const res = await xlAt(['run', fixture('invalid-plan.yaml')]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/invalid-plan\.yaml:9:21: \/tasks\/1\/timeoutSeconds/);
  });
});

describe('helpful errors', () => {
  it('names an unreachable endpoint and says to start the layer or set XL_ENDPOINT', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const res = await xl(['status', 'ex-1'], { XL_ENDPOINT: `http://127.0.0.1:${port}` });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`cannot reach the layer at http://127.0.0.1:${port} (from XL_ENDPOINT): ECONNREFUSED`);
    expect(res.stderr).toMatch(/npm start/);
    expect(res.stderr).toMatch(/XL_ENDPOINT/);
  });

  it('asks for XL_API_TOKEN when the layer answers 401', async () => {
    const res = await xlAt(['status', 'ex-1'], { XL_API_TOKEN: undefined });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^xl: 401/);
    expect(res.stderr).toMatch(/hint: .*set XL_API_TOKEN/);
    const wrong = await xlAt(['status', 'ex-1'], { XL_API_TOKEN: 'not-the-token' });
    expect(wrong.stderr).toMatch(/refused the token in XL_API_TOKEN/);
  });

  it('points at the AWS credentials and the role when IAM answers 403', async () => {
    // API Gateway's answer to a signed request from an identity without execute-api:Invoke.
    const iam: Server = createServer((_req, res) =>
      res.writeHead(403, { 'content-type': 'application/json', 'x-amzn-ErrorType': 'AccessDeniedException' }).end(
        JSON.stringify({ message: 'User: arn:aws:sts::123456789012:assumed-role/dev/me is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:eu-west-1:123456789012:abc123/v1/GET/health' }),
      ),
    );
    await new Promise<void>((r) => iam.listen(0, '127.0.0.1', r));
    try {
      const res = await xl(['health', '--endpoint', `http://127.0.0.1:${(iam.address() as AddressInfo).port}`]);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^xl: 403 AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role\/dev\/me is not authorized/);
      expect(res.stderr).toMatch(/hint: AWS IAM refused the request: .*AWS credentials.*execute-api:Invoke/);
    } finally {
      await new Promise((r) => iam.close(r));
    }
  });
});

describe('xl completion', () => {
  it('completes commands, flags and plan files in bash', async () => {
    const complete = async (words: string) => {
      const script = `source <(${XL.join(' ')} completion bash); COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _xl; printf '%s\\n' "\${COMPREPLY[@]}"`;
      const res = await exec('bash', ['-c', script]);
      expect(res.stderr).toBe('');
      return res.stdout.trim().split('\n');
    };
    expect(await complete('xl va')).toEqual(['validate']);
    expect(await complete('xl run --w')).toEqual(['--watch']);
    expect(await complete('xl run test/e2e/fixtures/fa')).toContain('test/e2e/fixtures/failing.yaml');
  });

  it('refuses a shell it does not know with exit 2', async () => {
    const res = await xl(['completion', 'fish']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/bash or zsh/);
  });
});
