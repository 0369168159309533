// Every small example job trains to completion on a local cluster of two workers with a falling loss,
// and its saved model predicts, through `tfjs-ddp predict`, what the trained replica predicted.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster } from 'tfjs-ddp';
import { featureSize, loadJobSpec, loadSource } from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { tempDir, type TempDir } from './support/jobs.js';

const run = promisify(execFile);
const CLI = 'packages/cli/dist/bin.js';

describe('example jobs on a local cluster', () => {
  let nats: NatsFixture;
  let dir: TempDir;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('examples');
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  for (const name of ['linear', 'perceptron', 'binary-mlp', 'custom-loop']) {
    it(`${name} trains to completion with a falling loss and a model that predicts like the replica`, async () => {
      const job = `examples/jobs/${name}.yaml`;
      const output = join(dir.path, name);
      const cluster = await startLocalCluster({ job, workers: 2, nats: nats.url, output, onWorkerOutput: () => {} });
      let steps = 0;
      cluster.events.on('progress', () => steps++);
      const summary = await cluster.result().finally(() => cluster.stop());

      expect(summary.worldSize).toBe(2);
      expect(steps).toBe(summary.steps);
      const first = summary.epochs[0].trainLoss;
      const last = summary.epochs[summary.epochs.length - 1].trainLoss;
      expect(last).toBeLessThan(first);
      const written = JSON.parse(await readFile(join(output, 'summary.json'), 'utf8'));
      expect(written.steps).toBe(summary.steps);

      // A job without a test split has no samples to predict (perceptron): nothing more to compare.
      const spec = await loadJobSpec(job);
      if (!spec.data.test) {
        expect(summary.predictions).toEqual([]);
        return;
      }
      // The replica's predictions on the first 16 test samples, against the saved model's.
      const ds = await loadSource(spec.data.test);
      const n = summary.predictions.length;
      expect(n).toBe(16);
      const f = featureSize(ds);
      const samples = Array.from({ length: n }, (_, i) => Array.from(ds.x.subarray(i * f, (i + 1) * f)));
      const input = join(dir.path, `${name}-input.json`);
      await writeFile(input, JSON.stringify(samples));
      const { stdout } = await run(process.execPath, [
        CLI,
        'predict',
        '--model',
        join(output, 'model'),
        '--input',
        input,
        // A custom module's model loads only with the module named by the user, here the job's.
        ...('module' in spec.model ? ['--module', spec.model.module] : []),
      ]);
      const predicted = JSON.parse(stdout) as { predictions: number[][] };
      expect(predicted.predictions).toHaveLength(n);
      predicted.predictions.forEach((row, i) =>
        row.forEach((v, j) => expect(v).toBeCloseTo(summary.predictions[i][j], 5)),
      );

      // `tfjs-ddp evaluate` on the saved model gives the test loss the cluster computed.
      const evaluated = await run(process.execPath, [CLI, 'evaluate', '--model', join(output, 'model'), '--job', job]);
      const figures = JSON.parse(evaluated.stdout) as Record<string, number>;
      expect(figures.count).toBe(ds.count);
      expect(figures.loss).toBeCloseTo(summary.test!.loss, 4);
    }, 120_000);
  }
});

describe('a long run', () => {
  it('holds the same number of tensors after 2,500 steps as after 10', async () => {
    const dir = await tempDir('memory');
    const nats = await startNats();
    try {
      const job = join(dir.path, 'memory.yaml');
      await writeFile(
        job,
        [
          'name: memory',
          'model: { zoo: linear }',
          'data: { train: { type: synthetic-linear, n: 2000, w: [1, 2], b: 0.5, noise: 0.01, seed: 3 } }',
          'optimizer: { type: adam, learningRate: 0.01 }',
          'loss: mse',
          'batchSize: 4',
          'epochs: 5',
          'workers: { min: 2, max: 2 }',
        ].join('\n'),
      );
      const cluster = await startLocalCluster({
        job,
        workers: 2,
        nats: nats.url,
        output: join(dir.path, 'out'),
        onWorkerOutput: () => {},
      });
      const summary = await cluster.result().finally(() => cluster.stop());
      expect(summary.steps).toBe(2500);
      expect(summary.tensorsHeld.early).toHaveLength(2);
      expect(summary.tensorsHeld.end).toEqual(summary.tensorsHeld.early);
    } finally {
      await nats.stop();
      await dir.remove();
    }
  }, 180_000);
});
