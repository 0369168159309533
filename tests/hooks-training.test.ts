// Compressed training end to end on a local cluster: with top-k and PowerSGD the replicas stay
// bit-identical (the parameter hash is checked every step), checkpoints carry the hook's state, and
// a run resumed from a checkpoint ends exactly where the uninterrupted run ended, which it cannot
// unless the residual and PowerSGD's warm-start Q were restored.
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { decodeHookState, type JobSummary } from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { fashionSubset, savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';

const PARAMETERS = 784 * 128 + 128 + 128 * 10 + 10;
// 1000 samples in batches of 64: 16 steps, checkpoints after steps 5, 10, 15 and at the end.
const STEPS = 16;

describe('training with compression', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let train: { images: string; labels: string };

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('hooks-training');
    train = await fashionSubset(dir.path, 'train', 1000);
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  async function run(
    name: string,
    compression: unknown,
    workers: number,
  ): Promise<{ summary: JobSummary; output: string }> {
    const output = join(dir.path, name);
    const job = await writeJob(dir.path, name, {
      name,
      model: { zoo: 'mlp' },
      data: { train: { type: 'idx', images: train.images, labels: train.labels } },
      optimizer: { type: 'adam', learningRate: 0.001 },
      loss: 'sparseCategoricalCrossentropy',
      batchSize: 64,
      epochs: 1,
      seed: 3,
      hashCheckEvery: 1,
      checkpoint: { everySteps: 5, keep: 4 },
      allreduce: { compression },
      workers: { min: workers },
    });
    const cluster = await startLocalCluster({ job, workers, nats: nats.url, output, onWorkerOutput: () => {} });
    try {
      return { summary: await cluster.result(), output };
    } finally {
      await cluster.stop();
    }
  }

  const checkpoints = (output: string) => join(output, 'checkpoints');
  async function hookStateAt(output: string, step: number, type: 'topk' | 'powersgd', shared: number) {
    const bytes = await readFile(join(checkpoints(output), `ckpt-${String(step).padStart(10, '0')}`, 'state.bin'));
    const state = new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(bytes) as { hook: Uint8Array };
    return decodeHookState(state.hook, type, PARAMETERS, shared);
  }

  it.each([
    ['topk', { type: 'topk', ratio: 0.01 }, 0],
    // PowerSGD at rank 4 shares the warm-start Q of both dense kernels: (128 + 10)·4 floats.
    ['powersgd', { type: 'powersgd', rank: 4 }, (128 + 10) * 4],
  ] as const)(
    '%s on 2 workers keeps the replicas identical and checkpoints its state',
    async (type, compression, shared) => {
      const { summary, output } = await run(`${type}-2`, compression, 2);
      expect(summary.steps).toBe(STEPS);
      expect(summary.abortedSteps).toBe(0);
      const state = await hookStateAt(output, STEPS, type, shared);
      expect(state.steps).toBe(STEPS);
      expect(state.residual.some((x) => x !== 0)).toBe(true);
    },
    120_000,
  );

  it('resumes from a checkpoint with the hook state and ends where the uninterrupted run ended', async () => {
    const { output } = await run('resume', { type: 'powersgd', rank: 2 }, 1);
    const uninterrupted = await savedWeights(join(output, 'model'));
    // Forget the run's end: without the completion marker and the last checkpoints it resumes at step 10.
    await rm(join(checkpoints(output), 'completed.json'));
    for (const step of [15, 16])
      await rm(join(checkpoints(output), `ckpt-${String(step).padStart(10, '0')}`), { recursive: true });
    expect((await readdir(checkpoints(output))).filter((n) => n.startsWith('ckpt-'))).toEqual([
      'ckpt-0000000005',
      'ckpt-0000000010',
    ]);
    const { summary } = await run('resume', { type: 'powersgd', rank: 2 }, 1);
    expect(summary.resumedAtStep).toBe(10);
    const resumed = await savedWeights(join(output, 'model'));
    expect(Buffer.from(resumed.buffer).equals(Buffer.from(uninterrupted.buffer))).toBe(true);
  }, 120_000);
});
