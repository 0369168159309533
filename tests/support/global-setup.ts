// Once per test run: find (or start) the container runtime and tell the test processes which,
// with one line saying so or why container tests are skipped; at the end, fail the run if any
// container, network or volume a test started is still there (after removing it).
import { randomUUID } from 'node:crypto';
import { findContainerRuntime, leftovers, publishRuntime, removeLeftovers } from './containers.js';

export default async function setup(): Promise<(() => void) | undefined> {
  // Both test projects run this; the first one's findings hold for the run.
  if (process.env.TFJS_DDP_TEST_RUN_ID) return undefined;
  const runId = randomUUID().slice(0, 8);
  const runtime = await findContainerRuntime();
  publishRuntime(runtime, runId);
  process.stderr.write(
    runtime.ok
      ? `[containers] using the container runtime: ${runtime.how}\n`
      : `[containers] container tests are skipped: ${runtime.reason}\n`,
  );
  if (!runtime.ok) return undefined;
  return () => {
    let left: string[];
    try {
      left = leftovers(runId);
    } catch (err) {
      process.exitCode = 1;
      throw err;
    }
    if (left.length === 0) return;
    removeLeftovers(left);
    // vitest reports a teardown's error but still exits 0; the exit code makes the run fail.
    process.exitCode = 1;
    throw new Error(
      `the tests left ${left.length} labelled Docker object(s) behind (now removed): ${left.join('; ')}. ` +
        'A test must stop every container it starts in afterAll/finally.',
    );
  };
}
