import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

// The collective's suites over NATS, run a second time on a cluster of 3 nats-servers joined by
// routes (tests/support/nats.ts reads the variable): shards spread over the servers must give the
// same results and failures as one server.
const OVER_A_CLUSTER = [
  'tests/collective.test.ts',
  'tests/collective-faults.test.ts',
  'tests/collective-processes.test.ts',
  'tests/hooks-nats.test.ts',
  // DESIGN §3's equivalence (1-3 workers as processes given every server with --nats).
  'tests/equivalence.test.ts',
];

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
    projects: [
      { extends: true, test: { name: 'default', include: ['tests/**/*.test.ts', 'packages/*/test/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'nats-cluster', include: OVER_A_CLUSTER, env: { TFJS_DDP_TEST_NATS_SERVERS: '3' } },
      },
    ],
    // The container runtime (found or started once) and the check that no test container is left.
    globalSetup: ['tests/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start servers and processes; on 2 cores two test files at a time keeps them honest.
    maxWorkers: 2,
    pool: 'forks',
  },
});
