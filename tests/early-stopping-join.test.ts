// restoreBestWeights keeps the snapshot of the best epoch in the workers that took it. A worker that
// joins after the snapshot has none; on the restore it takes the state of a rank that does, so the
// job ends with the best epoch's weights everywhere instead of failing. Ranks follow the sorted
// worker ids, so the joiner (a) becomes rank 0, whose weights are the ones the job saves.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJobSpec } from '@tfjs-ddp/common';
import type { JobSummary } from '@tfjs-ddp/coordinator';
import { startInProcessJob } from './support/in-process.js';
import { startNats, type NatsFixture } from './support/nats.js';
import { savedWeights, tempDir, type TempDir } from './support/jobs.js';
import { captureLog } from './support/log.js';

/**
 * Starts worker `id` (`workerId` in the job) and holds every read-back of the replicas (the workers
 * here share this process's tfjs) until the coordinator has registered it: the step or snapshot in
 * progress cannot finish before, so the joiner is in at the next step boundary however long it takes
 * to start.
 */
function joinBeforeTheNextStep(job: ReturnType<typeof startInProcessJob>, id: string, workerId: string): void {
  const backend = tf.backend() as unknown as { read(dataId: object): Promise<unknown> };
  const read = backend.read;
  let open!: () => void;
  const registered = new Promise<void>((resolve) => (open = resolve));
  backend.read = async function (this: unknown, dataId: object) {
    await registered;
    return read.call(this, dataId);
  };
  const onRegistered = (registeredId: string) => {
    if (registeredId !== workerId) return;
    job.coordinator.off('registered', onRegistered);
    backend.read = read;
    open();
  };
  job.coordinator.on('registered', onRegistered);
  job.addWorker(id);
}

describe('early stopping with a worker that joined after the best epoch', () => {
  let nats: NatsFixture;
  let dir: TempDir;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('early-join');
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  /** Trains on workers b and c; with `join`, worker a starts once the first epoch is done. */
  async function run(name: string, join: boolean): Promise<{ summary: JobSummary; params: number[]; lines: string[] }> {
    const spec = parseJobSpec(
      JSON.stringify({
        name,
        model: { zoo: 'linear' },
        data: {
          train: { type: 'synthetic-linear', n: 3000, w: [2, -3.4], b: 4.2, noise: 0.01, seed: 1 },
          validation: { fraction: 0.2 },
        },
        optimizer: { type: 'sgd', learningRate: 0.01 },
        loss: 'mse',
        batchSize: 100,
        epochs: 4,
        seed: 7,
        // No improvement can be this large: epoch 1 is the best, and the job stops after epoch 2.
        earlyStopping: { monitor: 'val_loss', patience: 1, minDelta: 1e9, restoreBestWeights: true },
        workers: { min: 2, max: 3 },
        output: `${dir.path}/${name}`,
      }),
      `${name}.json`,
    );
    const { log, lines } = captureLog();
    const job = startInProcessJob(spec, nats.url, ['b', 'c'], () => ({}), log);
    if (join) job.coordinator.once('epoch', () => joinBeforeTheNextStep(job, 'a', `${name}-a`));
    const summary = await job.result();
    const params = [...(await savedWeights(`${dir.path}/${name}/model`))];
    return { summary, params, lines };
  }

  it('ends with the best epoch weights on every rank, the joiner included', async () => {
    const alone = await run('early-two', false);
    const joined = await run('early-join', true);
    for (const { summary, lines } of [alone, joined]) {
      expect(summary.status).toBe('stopped-early');
      expect(summary.epochs).toHaveLength(2);
      expect(summary.bestWeightsRestored).toBe(true);
      // Epochs count from 1 in summary.json as in the log: the best one is the first.
      expect(summary.epochs.map((e) => e.epoch)).toEqual([1, 2]);
      expect(summary.bestEpoch).toBe(1);
      expect(lines.find((l) => l.includes('early stopping'))).toContain('"bestEpoch":1');
    }
    // The third worker took part in the second epoch, after the snapshot of the first.
    const three = joined.summary.generations.find((g) => g.members.length === 3);
    expect(three, 'no generation with the joiner').toBeDefined();
    expect(three!.step).toBeGreaterThan(0);
    expect(joined.summary.worldSize).toBe(3);
    expect(three!.members[0], 'the joiner is rank 0, the rank that saves the model').toBe('early-join-a');
    // The first epoch ran on the same two workers in both runs, and the joiner changed only the
    // second: restored, both models are the first epoch's weights, bit for bit.
    expect(joined.params).toEqual(alone.params);
  }, 120_000);
});
