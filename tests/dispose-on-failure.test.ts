// Tensors are freed when the work that made them fails: a failed read-back, a model that throws, a
// model that does not fit the samples. Each case counts the process's tensors before and after.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ByteTokenizer,
  MetricAccumulator,
  TransformerLM,
  createModel,
  fileSaveHandler,
  generate,
  loadSource,
  lossByName,
  type TrainableModel,
} from '@tfjs-ddp/common';
import { runCli } from '../packages/cli/src/cli.js';
import { BatchBuffers } from '../packages/worker/src/batch.js';
import { evaluateSlice } from '../packages/worker/src/evaluation.js';
import { tempDir, type TempDir } from './support/jobs.js';

const tensors = () => tf.memory().numTensors;

/** Runs `fn` while every asynchronous read-back of the backend fails, as a lost device would make it. */
async function withFailingReads<T>(fn: () => Promise<T>): Promise<T> {
  const backend = tf.backend() as unknown as { read(id: object): Promise<unknown> };
  const read = backend.read;
  backend.read = async () => {
    throw new Error('the device was lost');
  };
  try {
    return await fn();
  } finally {
    backend.read = read;
  }
}

async function runQuietly(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const code = await runCli(args, { env: {}, stdout: () => {}, stderr: (t) => (stderr += t) });
  return { code, stderr };
}

let dir: TempDir;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await tempDir('dispose');
});
afterAll(() => dir?.remove());

describe('tensors on failure', () => {
  it('the metric accumulator frees its counts when reading them back fails', async () => {
    const yTrue = tf.tensor1d([0, 1, 1]);
    const yPred = tf.tensor2d([[0.2], [0.9], [0.4]]);
    const before = tensors();
    await expect(withFailingReads(() => new MetricAccumulator(['accuracy']).update(yTrue, yPred))).rejects.toThrow(
      'the device was lost',
    );
    expect(tensors()).toBe(before);
    tf.dispose([yTrue, yPred]);
  });

  it('generate frees the logits when reading them back fails', async () => {
    const built = await createModel({ zoo: 'transformer-lm', params: { layers: 1, heads: 1, dModel: 8 } }, tf, {
      seed: 1,
      inputShape: [8],
      tokenizer: new ByteTokenizer().toJSON(),
    });
    const before = tensors();
    await expect(
      withFailingReads(() => generate(built.model as TransformerLM, 'the', { maxTokens: 3, temperature: 0, seed: 0 })),
    ).rejects.toThrow('the device was lost');
    expect(tensors()).toBe(before);
    built.model.dispose();
  });

  it("a worker's evaluation frees the batch when the model throws", async () => {
    const ds = await loadSource({ type: 'synthetic-linear', n: 20, w: [1, 2], b: 0, seed: 1 });
    const throwing: TrainableModel = {
      kind: 'variables',
      variables: () => [],
      predict: () => {
        throw new Error('the model cannot take these samples');
      },
      save: async () => {},
      dispose: () => {},
    };
    const before = tensors();
    await expect(evaluateSlice(tf, throwing, lossByName('mse'), [], ds, 0, 20, new BatchBuffers(tf))).rejects.toThrow(
      'the model cannot take these samples',
    );
    expect(tensors()).toBe(before);
  });

  it('predict and evaluate free the loaded model when they fail after loading it', async () => {
    const saved = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
    const modelDir = join(dir.path, 'two-features');
    await saved.save(fileSaveHandler(modelDir));
    saved.dispose();
    const notSamples = join(dir.path, 'not-samples.json');
    await writeFile(notSamples, '{"samples": "none"}');
    const job = join(dir.path, 'three-features.yaml');
    await writeFile(
      job,
      YAML.stringify({
        name: 'three-features',
        model: { zoo: 'linear' },
        data: {
          train: { type: 'synthetic-linear', n: 20, w: [1, 2, 3], b: 0, seed: 1 },
          test: { type: 'synthetic-linear', n: 10, w: [1, 2, 3], b: 0, seed: 2 },
        },
        optimizer: { type: 'sgd', learningRate: 0.1 },
        loss: 'mse',
        batchSize: 10,
        epochs: 1,
      }),
    );
    const before = tensors();
    const predicted = await runQuietly(['predict', '--model', modelDir, '--input', notSamples, '--backend', 'cpu']);
    expect(predicted.stderr).toContain('expected a non-empty JSON array of samples');
    expect(predicted.code).toBe(1);
    expect(tensors()).toBe(before);
    const evaluated = await runQuietly(['evaluate', '--model', modelDir, '--job', job, '--backend', 'cpu']);
    expect(evaluated.stderr).toContain('but the model takes samples of shape [2]');
    expect(evaluated.code).toBe(1);
    expect(tensors()).toBe(before);
  });
});
