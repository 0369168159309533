import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start servers and processes; on 2 cores, two files at a time is the most that keeps timings sane.
    maxWorkers: 2,
    pool: 'forks',
  },
});
