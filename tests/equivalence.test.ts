// DESIGN §3.1: N workers with global batch B end with the same parameters as one worker with the
// same batches, including an uneven last batch (1000 samples, batch 64: the last step has 40).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { startNats, type NatsFixture } from './support/nats.js';
import { compareParameters, fashionSubset, savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';

describe('equivalence across world sizes', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let job: string;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('equivalence');
    const train = await fashionSubset(dir.path, 'train', 1000);
    job = await writeJob(dir.path, 'equivalence', {
      name: 'equivalence',
      model: { zoo: 'mlp' },
      data: { train: { type: 'idx', images: train.images, labels: train.labels } },
      optimizer: { type: 'adam', learningRate: 0.001 },
      loss: 'sparseCategoricalCrossentropy',
      batchSize: 64,
      epochs: 2,
      seed: 7,
      workers: { min: 1, max: 3 },
    });
  });

  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  async function train(workers: number): Promise<Float32Array> {
    const output = `${dir.path}/out-${workers}`;
    // Every server of the fixture: one, or a cluster's three, over which the workers spread the all-reduce.
    const cluster = await startLocalCluster({
      job,
      workers,
      nats: nats.urls.join(','),
      output,
      onWorkerOutput: () => {},
    });
    try {
      const summary = await cluster.result();
      expect(summary.worldSize).toBe(workers);
      expect(summary.steps).toBe(2 * Math.ceil(1000 / 64));
      // Training moved the weights: the equality below is not that of untouched initial values.
      expect(summary.epochs[1].trainLoss).toBeLessThan(summary.epochs[0].trainLoss);
    } finally {
      await cluster.stop();
    }
    return savedWeights(`${output}/model`);
  }

  it('1, 2 and 3 workers end with parameters equal within 1e-5 relative', async () => {
    const one = await train(1);
    const two = await train(2);
    const three = await train(3);
    expect(one.length).toBe(784 * 128 + 128 + 128 * 10 + 10);
    for (const other of [two, three]) {
      const { normRelative, allClose } = compareParameters(one, other, 1e-5, 1e-6);
      expect(normRelative).toBeLessThan(1e-5);
      expect(allClose).toBe(true);
    }
  }, 240_000);
});
