import { defineConfig } from 'vitest/config';

// The slow suite: soak, overload and large-data tests (`npm run test:slow`).
export default defineConfig({
  test: {
    include: ['test/slow/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // Frees the shared memory of test leaves whose temp data directories are gone.
    globalSetup: ['test/support/global-shm.ts'],
    maxWorkers: 1,
  },
});
