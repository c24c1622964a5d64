// `npm run test:containers`: agents in real containers. Not part of `npm test` (vitest.config.ts
// leaves test/containers out): it needs a Docker engine (or root to start a private one) and builds
// the agent image when it is missing (minutes the first time).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/containers/**/*.test.ts'],
    globalSetup: ['test/containers/engine-setup.ts'],
    testTimeout: 600_000,
    // The first run builds the agent image.
    hookTimeout: 1_800_000,
    fileParallelism: false,
    pool: 'forks',
  },
});
