import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real containers need a Docker engine and the agent image: `npm run test:containers` runs them.
    exclude: [...configDefaults.exclude, 'test/containers/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two files at a time on these 2-core machines: the end-to-end files spend most of their time
    // waiting on agents and timers, so a second file uses what the first leaves idle (the suite in
    // 6.4 min instead of 9.5, beside a CI run). Each file starts its own emulators, layer and workers
    // on ports and directories of its own.
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
    setupFiles: ['test/support/setup.ts'],
  },
});
