import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration and end-to-end tests start emulators and worker processes: keep the 2 cores for them.
    fileParallelism: false,
    pool: 'forks',
  },
});
