// bench/results/latest.json is shared: each benchmark writes its own keys and keeps the others'.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export const RESULTS_FILE = join(resolve(import.meta.dirname), 'results/latest.json');

export async function mergeResults(patch: Record<string, unknown>, file = RESULTS_FILE): Promise<void> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '{}';
    throw err;
  });
  await mkdir(join(file, '..'), { recursive: true });
  await writeFile(file, JSON.stringify({ ...(JSON.parse(text) as object), ...patch }, null, 2) + '\n');
}
