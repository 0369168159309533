// GradientStep.apply divides the reduced gradient sum on the host, in the one walk that also checks
// it is finite and takes its norm; these tests pin that the update has the bits of dividing on the
// device (tf.div by a float32 scalar, as the step did before), on the cpu and the wasm backends,
// clipped or not, and that a sum holding NaN or Inf changes nothing.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { createModel, createOptimizer, GradientStep, selectBackend, silentLogger } from '@tfjs-ddp/common';

const COUNT = 37;

beforeAll(async () => {
  await selectBackend('wasm', silentLogger);
});

/** A seeded gradient sum spanning many magnitudes, so that quotients round in every way. */
function gradientSum(n: number, seed: number): Float32Array {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Float32Array.from({ length: n }, () => (next() - 0.5) * 10 ** Math.floor(next() * 8 - 4));
}

async function replica() {
  const built = await createModel({ zoo: 'binary-mlp', params: { hidden: 16 } }, tf, { seed: 3 });
  return { built, step: new GradientStep(built.model, built.loss) };
}

async function weights(step: GradientStep): Promise<Buffer> {
  const out = new Float32Array(step.size);
  await step.getWeightsAsync(out);
  return Buffer.from(out.buffer);
}

/** The update as dividing on the device gives it: the sum uploaded, divided by a float32 scalar. */
function deviceDivided(step: GradientStep, sum: Float32Array, divisor: number, optimizer: tf.Optimizer): void {
  tf.tidy(() => {
    const d = tf.scalar(divisor, 'float32');
    let at = 0;
    const named = step.variables.map((v) => {
      const g = tf.div(tf.tensor(sum.subarray(at, at + v.size), v.shape, 'float32'), d);
      at += v.size;
      return { name: v.name, tensor: g };
    });
    optimizer.applyGradients(named);
  });
}

describe.each(['cpu', 'wasm'])('GradientStep.apply on %s', (backend) => {
  it.each([
    ['unclipped', undefined],
    ['clipped to a global norm', 1e-3],
  ])('%s: the bits of dividing on the device', async (_what, clipNorm) => {
    await tf.setBackend(backend);
    const [a, b] = [await replica(), await replica()];
    const sum = gradientSum(a.step.size, 9);
    const before = Float32Array.from(sum);
    // Plain SGD: the update is the mean itself, scaled, so any bit of the mean shows in the weights.
    const [optA, optB] = [
      createOptimizer({ type: 'sgd', learningRate: 1 }),
      createOptimizer({ type: 'sgd', learningRate: 1 }),
    ];
    for (let i = 0; i < 3; i++) {
      const r = a.step.apply(sum, COUNT, optA.optimizer, { clipNorm });
      let divisor = COUNT;
      if (clipNorm !== undefined) {
        expect(r.gradNorm).toBeGreaterThan(clipNorm);
        divisor = (COUNT * r.gradNorm!) / clipNorm;
      }
      expect(r).toMatchObject({ nonFinite: false, clipped: clipNorm !== undefined });
      deviceDivided(b.step, sum, divisor, optB.optimizer);
    }
    expect((await weights(a.step)).equals(await weights(b.step))).toBe(true);
    // The caller's sum is left as it was: a test or a redo may apply it again.
    expect(Buffer.from(sum.buffer).equals(Buffer.from(before.buffer))).toBe(true);
    [optA, optB].forEach((o) => o.dispose());
    [a, b].forEach((m) => m.built.model.dispose());
  });

  it.each([NaN, Infinity])('a sum holding %s is not applied', async (bad) => {
    await tf.setBackend(backend);
    const { built, step } = await replica();
    const sum = gradientSum(step.size, 4);
    sum[step.size - 1] = bad;
    const optimizer = createOptimizer({ type: 'sgd', learningRate: 0.1 });
    const unchanged = await weights(step);
    expect(step.apply(sum, COUNT, optimizer.optimizer, { clipNorm: 1 })).toEqual({ nonFinite: true, clipped: false });
    expect((await weights(step)).equals(unchanged)).toBe(true);
    optimizer.dispose();
    built.model.dispose();
  });
});
