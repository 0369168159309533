// A transformer language model trained data-parallel on a local cluster: 2 workers that each run
// their half of every step as 2 accumulated micro-batches end with the parameters of 1 worker that
// takes each batch whole, with clipping, weight decay and a cosine schedule on. The summary starts
// the validation curve before the first step, reports perplexity and each worker's memory, and
// `tfjs-ddp generate` samples from the saved model.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalCluster, type JobSummary } from 'tfjs-ddp';
import { createPrng } from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { compareParameters, savedWeights, tempDir, writeJob, type TempDir } from './support/jobs.js';

const run = promisify(execFile);
const CLI = 'packages/cli/dist/bin.js';

const WORDS = 'the of and to in a that for public our we have is be by this with government it not which as are'.split(
  ' ',
);

/** Sentences of common words drawn with a seeded generator: text with the statistics a model can learn. */
function prose(seed: number, bytes: number): string {
  const rng = createPrng(seed);
  const out: string[] = [];
  let length = 0;
  while (length < bytes) {
    const words = Array.from({ length: 4 + rng.int(8) }, () => WORDS[rng.int(WORDS.length)]);
    const sentence = `${words.join(' ')}. `;
    out.push(sentence[0].toUpperCase() + sentence.slice(1));
    length += sentence.length;
  }
  return out.join('');
}

describe('a language model on a local cluster', () => {
  let nats: NatsFixture;
  let dir: TempDir;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('lm');
    await mkdir(join(dir.path, 'corpus'));
    await writeFile(join(dir.path, 'corpus', 'a.txt'), prose(1, 1600));
    await writeFile(join(dir.path, 'corpus', 'b.txt'), prose(2, 1400));
    await writeFile(join(dir.path, 'held-out.txt'), prose(3, 800));
  });
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  async function train(
    workers: number,
    accumulationSteps: number,
    dtype: 'f32' | 'bf16' = 'f32',
  ): Promise<{ summary: JobSummary; output: string }> {
    const name = `lm-${workers}-${dtype}`;
    const job = await writeJob(dir.path, name, {
      name,
      model: { zoo: 'transformer-lm', params: { layers: 1, heads: 2, dModel: 32 } },
      data: {
        train: { type: 'text', dir: 'corpus', context: 16 },
        validation: { type: 'text', files: ['held-out.txt'], context: 16 },
      },
      optimizer: {
        type: 'adam',
        learningRate: 0.01,
        warmupSteps: 3,
        schedule: { type: 'cosine', minLearningRate: 0.001 },
        weightDecay: 0.1,
        clipNorm: 0.5,
      },
      // 189 windows: 4 steps of 40 and a last one of 29 per epoch.
      batchSize: 40,
      accumulationSteps,
      epochs: 2,
      seed: 5,
      allreduce: { dtype },
      // Every other step the coordinator compares the replicas' parameter hashes and fails the job on drift.
      hashCheckEvery: 2,
      workers: { min: 1, max: 2 },
    });
    const output = join(dir.path, `out-${name}`);
    const cluster = await startLocalCluster({ job, workers, nats: nats.url, output, onWorkerOutput: () => {} });
    const summary = await cluster.result().finally(() => cluster.stop());
    return { summary, output };
  }

  it('2 workers with accumulation end where 1 worker does, and the summary tells the run', async () => {
    const one = await train(1, 1);
    const two = await train(2, 2);
    for (const { summary } of [one, two]) {
      expect(summary.steps).toBe(10);
      expect(summary.epochs.map((e) => e.samples)).toEqual([189, 189]);
    }
    expect(two.summary.worldSize).toBe(2);

    const a = await savedWeights(join(one.output, 'model'));
    const b = await savedWeights(join(two.output, 'model'));
    const { normRelative, allClose } = compareParameters(a, b, 1e-4, 1e-5);
    expect(normRelative).toBeLessThan(1e-6);
    expect(allClose).toBe(true);

    const { startValidation, epochs, memory } = two.summary;
    expect(startValidation?.perplexity).toBeCloseTo(Math.exp(startValidation?.loss as number), 6);
    expect(startValidation?.perplexity).toBeGreaterThan(150);
    const last = epochs[epochs.length - 1].validation as Record<string, number>;
    expect(last.perplexity).toBeLessThan((startValidation?.perplexity as number) / 2);
    expect(Object.keys(memory).sort()).toEqual(Object.keys(two.summary.backends).sort());
    for (const m of Object.values(memory)) {
      expect(m.rssBytes).toBeGreaterThan(10 * 2 ** 20);
      expect(m.tensorBytes).toBeGreaterThan(a.length * 4);
    }

    const { stdout, stderr } = await run(process.execPath, [
      CLI,
      'generate',
      '--model',
      join(two.output, 'model'),
      '--prompt',
      'The public',
      '--max-tokens',
      '40',
      '--seed',
      '3',
      '--backend',
      'wasm',
    ]);
    expect(stdout.startsWith('The public')).toBe(true);
    expect(stdout.length).toBeGreaterThan('The public'.length);
    expect(stderr).toMatch(/tokens, seed 3/);
  }, 240_000);

  it('keeps the replicas bit-identical with bf16 gradients on the wire and clipping on', async () => {
    const { summary } = await train(2, 2, 'bf16');
    expect(summary.steps).toBe(10);
    const last = summary.epochs[summary.epochs.length - 1].validation as Record<string, number>;
    expect(last.perplexity).toBeLessThan((summary.startValidation?.perplexity as number) / 2);
  }, 120_000);
});
