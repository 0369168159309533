import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // In-process tests run the TypeScript sources; spawned processes run the built dist (npm test builds first).
    alias: {
      '@tfjs-ddp/common': src('common'),
      '@tfjs-ddp/coordinator': src('coordinator'),
      '@tfjs-ddp/worker': src('worker'),
      'tfjs-ddp': src('cli'),
    },
  },
  test: {
    include: ['tests/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start servers and processes; on 2 cores two test files at a time keeps them honest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
