// Training on the wasm backend: the zoo's backward passes run there (with the gradient kernels this
// project registers) and give the cpu backend's gradients.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createModel,
  createOptimizer,
  GradientStep,
  selectBackend,
  silentLogger,
  type BuiltModel,
} from '@tfjs-ddp/common';

interface Sample {
  x: { shape: number[]; values: Float32Array };
  y: { shape: number[]; values: Float32Array };
}

/**
 * Gradients on one backend, from data created on that backend: tfjs moves tensors between backends
 * lazily, and a cpu tensor cast from int32 keeps Int32Array storage that wasm would read as floats.
 */
async function gradientsOn(backend: 'cpu' | 'wasm', built: BuiltModel, data: Sample): Promise<Float32Array> {
  await tf.setBackend(backend);
  const x = tf.tensor(data.x.values, data.x.shape, 'float32');
  const y = tf.tensor(data.y.values, data.y.shape, 'float32');
  const step = new GradientStep(built.model, built.loss);
  const out = new Float32Array(step.size);
  await step.computeAsync(x, y, out);
  tf.dispose([x, y]);
  return out;
}

function sample(n: number, size: number, classes: number, seed: number): Sample {
  const rng = (s: number) => () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const next = rng(seed);
  return {
    x: { shape: [n, size, size, 1], values: Float32Array.from({ length: n * size * size }, next) },
    y: { shape: [n], values: Float32Array.from({ length: n }, () => Math.floor(next() * classes)) },
  };
}

function images(n: number, size: number, classes: number, seed: number): { x: tf.Tensor; y: tf.Tensor } {
  const s = sample(n, size, classes, seed);
  return { x: tf.tensor(s.x.values, s.x.shape), y: tf.tensor(s.y.values, s.y.shape) };
}

beforeAll(async () => {
  await selectBackend('wasm', silentLogger);
});

describe('training on wasm', () => {
  it("the zoo CNN's backward pass gives the cpu backend's gradients within 1e-4", async () => {
    await tf.setBackend('cpu');
    // The zoo CNN's layers at 16×16 rather than 28×28: the same kernels, a quarter of the cpu time.
    const built = await createModel({ zoo: 'cnn', params: { inputShape: [16, 16, 1] } }, tf, { seed: 1 });
    const data = sample(4, 16, 10, 2);
    const cpu = await gradientsOn('cpu', built, data);
    const wasm = await gradientsOn('wasm', built, data);
    let worst = 0;
    let nonZero = 0;
    for (let i = 0; i < cpu.length; i++) {
      worst = Math.max(worst, Math.abs(wasm[i] - cpu[i]));
      if (cpu[i] !== 0) nonZero++;
    }
    // Both conv layers' filter gradients come from the registered kernel on wasm.
    expect(cpu.slice(0, 288).some((v) => v !== 0)).toBe(true);
    expect(nonZero).toBeGreaterThan(cpu.length / 2);
    expect(worst).toBeLessThan(1e-4);
    built.model.dispose();
  });

  it('gives bit-identical gradients for the same inputs, on cpu and on wasm', async () => {
    const spec = { zoo: 'cnn', params: { inputShape: [12, 12, 1], filters: [4, 8], dense: 16 } } as const;
    const built = await createModel(spec, tf, { seed: 3 });
    const data = sample(6, 12, 10, 4);
    for (const backend of ['cpu', 'wasm'] as const) {
      const first = await gradientsOn(backend, built, data);
      const second = await gradientsOn(backend, built, data);
      expect(Buffer.from(second.buffer).equals(Buffer.from(first.buffer))).toBe(true);
    }
    built.model.dispose();
  });

  for (const [zoo, params, data] of [
    [
      'linear',
      { inputs: 2 },
      () =>
        tf.tidy(() => ({
          x: tf.randomNormal([16, 2], 0, 1, 'float32', 5),
          y: tf.randomNormal([16, 1], 0, 1, 'float32', 6),
        })),
    ],
    [
      'perceptron',
      {},
      () =>
        tf.tidy(() => {
          const x = tf.randomNormal([16, 2], 0, 1, 'float32', 7);
          return { x, y: tf.cast(tf.greater(tf.sum(x, 1), 0), 'float32') };
        }),
    ],
    [
      'binary-mlp',
      { hidden: 8 },
      () =>
        tf.tidy(() => {
          const x = tf.randomNormal([16, 2], 0, 1, 'float32', 8);
          return { x, y: tf.cast(tf.greater(tf.prod(x, 1), 0), 'float32') };
        }),
    ],
    [
      'mlp',
      { inputShape: [10, 10], hidden: 16, classes: 4 },
      () =>
        tf.tidy(() => {
          const { x, y } = images(16, 10, 4, 9);
          return { x: tf.reshape(x, [16, 10, 10]), y };
        }),
    ],
    ['cnn', { inputShape: [10, 10, 1], filters: [4, 4], dense: 8, classes: 4 }, () => images(16, 10, 4, 10)],
  ] as const) {
    it(`${zoo} trains on wasm`, async () => {
      await tf.setBackend('wasm');
      const built = await createModel({ zoo, params }, tf, { seed: 11 });
      const { x, y } = data();
      const step = new GradientStep(built.model, built.loss);
      const optimizer = createOptimizer({ type: 'adam', learningRate: 0.02 });
      const grads = new Float32Array(step.size);
      const losses: number[] = [];
      for (let i = 0; i < 12; i++) {
        const { lossSum, count } = await step.computeAsync(x, y, grads);
        step.apply(grads, count, optimizer.optimizer);
        losses.push(lossSum / count);
      }
      expect(losses.at(-1)).toBeLessThan(losses[0] * 0.9);
      tf.dispose([x, y]);
      optimizer.dispose();
      built.model.dispose();
    });
  }
});
