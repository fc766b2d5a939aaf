import { defineConfig } from 'vitest/config';

// The default suite (`npm test`): everything under test/ except test/slow/ (soak and large-data
// runs, `npm run test:slow`). Tests that start real leaf processes need dist/ built first, which
// is why `npm test` runs tsc before vitest.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/slow/**', 'node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Frees the shared memory of test leaves whose temp data directories are gone.
    globalSetup: ['test/support/global-shm.ts'],
    // Two cores: two test files at a time keeps real-process tests from starving each other.
    maxWorkers: 2,
  },
});
