// The fast-check model-based test of the circuit breaker (test/unit/breakers.model.test.ts: random
// admits, concurrent admits by a fleet, successes, failures, resets and clock moves against a model
// of the design's rules, with a fake clock), run with XL_FC_RUNS runs: each run is a trial. The
// test's commands live in its vitest file, so it runs through vitest as a child process; its JSON
// report says whether the property held, and fast-check's counterexample when it did not.
// A failing property is a lost case: one lost, with the counterexample in the failures.
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../e2e/harness.ts';
import type { ReliabilityCase } from '../suite.ts';

const TEST_FILE = 'test/unit/breakers.model.test.ts';

export const breakerModel: ReliabilityCase = {
  name: 'breaker-model',
  cheap: true,
  trials: (mode) => (mode === 'full' ? 10_000 : 1_000),
  async run(ctx) {
    const report = join(tmpdir(), `xl-breaker-model-${process.pid}-${Date.now()}.json`);
    let output = '';
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', TEST_FILE, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], {
        cwd: ROOT,
        env: { ...process.env, XL_FC_RUNS: String(ctx.trials), CI: 'true' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      child.once('error', reject);
      child.once('exit', resolve);
    });
    let json: any;
    try {
      json = JSON.parse(await readFile(report, 'utf8'));
    } catch (err) {
      return { tasks: ctx.trials, lost: 1, doubled: 0, failures: [`vitest exited ${code} with no report (${(err as Error).message}):\n${output.slice(-2000)}`], notes: 'did not run' };
    } finally {
      await rm(report, { force: true });
    }
    const tests = (json.testResults ?? []).flatMap((f: any) => f.assertionResults ?? []);
    const failed = tests.filter((t: any) => t.status !== 'passed');
    const runsSaid = /breaker model: (\d+) runs in (\d+) ms/.exec(output);
    const failures: string[] = [];
    if (tests.length === 0) failures.push(`${TEST_FILE} ran no test (vitest exited ${code})`);
    for (const t of failed) failures.push(`${t.title}: ${t.status}: ${(t.failureMessages ?? []).join('\n').slice(0, 3000)}`);
    // The test says how many runs it made; a silent mismatch would count trials that never ran.
    if (!failed.length && tests.length && Number(runsSaid?.[1]) !== ctx.trials) failures.push(`the test reported ${runsSaid?.[1] ?? 'no'} runs, the case asked for ${ctx.trials}`);
    if (code !== 0 && !failures.length) failures.push(`vitest exited ${code}:\n${output.slice(-2000)}`);
    return {
      tasks: ctx.trials,
      lost: failed.length || tests.length === 0 ? 1 : 0,
      doubled: 0,
      failures,
      notes: runsSaid ? `${runsSaid[1]} fast-check runs (up to 80 commands each, 4 breakers on one store) in ${(Number(runsSaid[2]) / 1000).toFixed(1)} s` : 'the property failed',
    };
  },
};
