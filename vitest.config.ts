import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real containers need a Docker engine and the agent image: `npm run test:containers` runs them.
    exclude: [...configDefaults.exclude, 'test/containers/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration and end-to-end tests start emulators and worker processes: keep the 2 cores for them.
    fileParallelism: false,
    pool: 'forks',
    setupFiles: ['test/support/setup.ts'],
  },
});
