// The baseline: the same commands spawned directly from a bare Node process, `concurrency` at a
// time. Plain JavaScript, no imports beyond Node's, so the spawning process stays small.
import { spawn } from 'node:child_process';

const [command, countText, concurrencyText] = process.argv.slice(2);
const count = Number(countText);
const concurrency = Number(concurrencyText);

function run() {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
    // As the worker does: the input goes to stdin, which a command may never read (EPIPE is fine).
    child.stdin.on('error', () => {});
    child.stdin.end('{}');
    child.stdout.resume();
    child.stderr.resume();
    child.once('error', reject);
    child.once('exit', resolve);
  });
}

const started = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < count) {
      next++;
      await run();
    }
  }),
);
process.stdout.write(JSON.stringify({ ms: performance.now() - started }) + '\n');
