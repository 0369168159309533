// A worker busy in one long synchronous computation is slow, not gone: its heartbeats come from a
// thread of their own, so a step that blocks its main thread for 3 × faults.heartbeatTimeoutMs is
// waited for (up to timeouts.stepMs) and the job ends as if undisturbed. One blocked longer than
// timeouts.stepMs is stuck: named as such, dropped and recovered from like a lost worker; once
// unblocked it sees it was dropped, registers again and rejoins, with every replica's hash equal.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { startLocalCluster, type JobSummary } from 'tfjs-ddp';
import { startNats, type NatsFixture } from './support/nats.js';
import { expectHashesAgree, savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';
import { uncoveredOrRepeated } from './support/coverage.js';
import { captureLog } from './support/log.js';

const MODULE = fileURLToPath(new URL('./fixtures/models/slow-step.mjs', import.meta.url));
const TRAIN = 640;
const BATCH = 32;
const EPOCHS = 2;
const HEARTBEAT_TIMEOUT_MS = 1_000;

describe('a worker busy in a long computation', () => {
  let nats: NatsFixture;
  let dir: TempDir;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('slow');
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  /** A job on 2 workers whose local-1 blocks its main thread for `slowMs` in its 5th loss call. */
  function job(name: string, slowMs: number, timeouts: { stepMs: number }): Promise<string> {
    return writeJob(dir.path, name, {
      name,
      model: { module: MODULE, params: { inputs: 2, slowWorker: 'local-1', slowCall: 5, slowMs } },
      data: { train: { type: 'synthetic-linear', n: TRAIN, w: [2, -3.4], b: 4.2, noise: 0.01, seed: 3 } },
      optimizer: { type: 'sgd', learningRate: 0.05 },
      batchSize: BATCH,
      epochs: EPOCHS,
      seed: 5,
      hashCheckEvery: 1,
      workers: { min: 2, max: 2 },
      timeouts,
      faults: { heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS, rejoinTimeoutMs: 30_000 },
      output: join(dir.path, 'out', name),
    });
  }

  async function run(file: string): Promise<{ summary: JobSummary; lines: string[]; worker: string[] }> {
    const { log, lines } = captureLog();
    const worker: string[] = [];
    const cluster = await startLocalCluster({
      job: file,
      workers: 2,
      nats: nats.url,
      log,
      onWorkerOutput: (w, line) => worker.push(`[${w}] ${line}`),
    });
    // Stopped also when the test fails or times out (a frozen worker would outlive it).
    onTestFinished(() => cluster.stop());
    const summary = await cluster.result();
    return { summary, lines, worker };
  }

  it('a step that blocks the main thread for 3 × heartbeatTimeoutMs: not dropped, same parameters', async () => {
    const timeouts = { stepMs: 20_000 };
    const undisturbed = await run(await job('steady', 0, timeouts));
    const slow = await run(await job('slow', 3 * HEARTBEAT_TIMEOUT_MS, timeouts));
    const log = [...slow.lines, ...slow.worker].join('\n');
    // The block did happen, on local-1, and ended.
    expect(slow.worker.filter((l) => l.includes('slow-step:')).length, log).toBe(2);
    expect(
      slow.worker.find((l) => l.includes('slow-step: blocking')),
      log,
    ).toMatch(/^\[worker-1\]/);
    // Waited for: nobody lost, no step aborted, one generation throughout.
    expect(
      slow.lines.filter((l) => l.includes('worker lost')),
      log,
    ).toEqual([]);
    expect(slow.summary.abortedSteps, log).toBe(0);
    expect(
      slow.summary.generations.map((g) => g.members),
      log,
    ).toEqual([['local-0', 'local-1']]);
    expect(uncoveredOrRepeated(slow.summary.committed, EPOCHS, TRAIN)).toEqual([]);
    // The same training as without the block, bit for bit.
    expect(await savedWeights(join(slow.summary.output, 'model'))).toEqual(
      await savedWeights(join(undisturbed.summary.output, 'model')),
    );
  }, 120_000);

  it('a step that blocks it longer than timeouts.stepMs: named as stuck, dropped, and back once unblocked', async () => {
    // Both workers are needed (workers.min = 2): the job waits for the stuck one to come back.
    const { summary, lines, worker } = await run(await job('stuck', 6_000, { stepMs: 3_000 }));
    const log = [...lines, ...worker].join('\n');
    expect(
      worker.find((l) => l.includes('slow-step: blocking')),
      log,
    ).toMatch(/^\[worker-1\]/);
    // The step is aborted naming rank 1; the worker is dropped as stuck, not as silent.
    expect(
      lines.some((l) => l.includes('step aborted') && l.includes('rank 1')),
      log,
    ).toBe(true);
    const lost = lines.filter((l) => l.includes('worker lost'));
    expect(lost.length, log).toBe(1);
    expect(lost[0]).toContain('local-1');
    expect(lost[0]).toContain('main thread has been blocked');
    // Unblocked, it hears it was dropped, registers again and is a member of the next generation.
    expect(
      worker.some((l) => l.startsWith('[worker-1]') && l.includes('dropped from the job')),
      log,
    ).toBe(true);
    expect(
      summary.generations.map((g) => g.members),
      log,
    ).toEqual([
      ['local-0', 'local-1'],
      ['local-0', 'local-1'],
    ]);
    expectHashesAgree(summary.generations[1].hashes, JSON.stringify(summary.generations));
    expect(summary.abortedSteps).toBeGreaterThan(0);
    expect(uncoveredOrRepeated(summary.committed, EPOCHS, TRAIN)).toEqual([]);
  }, 120_000);
});
