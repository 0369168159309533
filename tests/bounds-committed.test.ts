// The committed data-plan ranges (which samples' updates were applied) are kept compact: an epoch's
// steps tile it, so they merge into one entry, and a checkpoint carries O(epochs) entries, not one a
// step (which made every checkpoint grow with the job, and the job write O(steps²) in all). A gap or a
// repeat stays visible to the every-sample-once check.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJobSpec } from '@tfjs-ddp/common';
import { commitRange, type CommittedRange } from '@tfjs-ddp/coordinator';
import { startInProcessJob } from './support/in-process.js';
import { startNats, type NatsFixture } from './support/nats.js';
import { tempDir, type TempDir } from './support/jobs.js';
import { uncoveredOrRepeated } from './support/coverage.js';

describe('committed ranges', () => {
  it('merge steps that continue each other, and keep a gap or a repeat apart', () => {
    const ranges: CommittedRange[] = [];
    for (let s = 0; s < 100; s++) commitRange(ranges, 0, s * 10, 10);
    commitRange(ranges, 1, 0, 10);
    commitRange(ranges, 1, 20, 10);
    commitRange(ranges, 1, 20, 10);
    expect(ranges).toEqual([
      [0, 0, 1000],
      [1, 0, 10],
      [1, 20, 10],
      [1, 20, 10],
    ]);
    expect(uncoveredOrRepeated(ranges, 2, 1000)).toEqual([
      'epoch 1: expected a range at 10, got one at 20',
      'epoch 1: expected a range at 30, got one at 20',
      'epoch 1: ranges end at 30, the dataset has 1000 samples',
    ]);
  });

  describe('in a job', () => {
    let nats: NatsFixture;
    let dir: TempDir;
    beforeAll(async () => {
      nats = await startNats();
      dir = await tempDir('committed');
    });
    afterAll(async () => {
      await nats?.stop();
      await dir?.remove();
    });

    it('every checkpoint holds one range an epoch, however many steps came before it', async () => {
      const TRAIN = 1200;
      const spec = parseJobSpec(
        JSON.stringify({
          name: 'committed',
          model: { zoo: 'linear' },
          data: { train: { type: 'synthetic-linear', n: TRAIN, w: [2, -1], b: 0.5, noise: 0.01, seed: 1 } },
          optimizer: { type: 'sgd', learningRate: 0.01 },
          loss: 'mse',
          // 300 steps an epoch, a checkpoint every 25.
          batchSize: 4,
          epochs: 2,
          seed: 3,
          workers: { min: 2, max: 2 },
          checkpoint: { everySteps: 25, keep: 100 },
          output: join(dir.path, 'out'),
        }),
        'committed.json',
      );
      const summary = await startInProcessJob(spec, nats.url, ['a', 'b']).result();
      expect(summary.steps).toBe(600);
      expect(summary.committed).toEqual([
        [0, 0, TRAIN],
        [1, 0, TRAIN],
      ]);
      const ckpts = join(dir.path, 'out', 'checkpoints');
      const names = (await readdir(ckpts)).filter((n) => n.startsWith('ckpt-')).sort();
      expect(names.length).toBeGreaterThanOrEqual(24);
      const committedIn = async (name: string) =>
        (
          JSON.parse(await readFile(join(ckpts, name, 'meta.json'), 'utf8')) as {
            progress: { committed: CommittedRange[] };
          }
        ).progress.committed;
      for (const name of names) {
        const step = Number(name.slice(5));
        const done = Math.floor(step / 300);
        const expected: CommittedRange[] = [...Array(done).keys()].map((e) => [e, 0, TRAIN]);
        if (step % 300 !== 0) expected.push([done, 0, (step % 300) * 4]);
        expect(await committedIn(name), name).toEqual(expected);
      }
    }, 120_000);
  });
});
