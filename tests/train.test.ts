import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createModel,
  createOptimizer,
  evaluate,
  getOptimizerState,
  GradientStep,
  jobOptimizerSchema,
  learningRateAt,
  LOSSES,
  parameterHash,
  setLearningRate,
  setOptimizerState,
  type BuiltModel,
  type OptimizerSpecInput,
} from '@tfjs-ddp/common';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/models/${name}`, import.meta.url));

/** A seeded classification set: 3 classes of 4×4 "images" told apart by which row is brightest. */
function classification(n: number, seed: number): { x: tf.Tensor; y: tf.Tensor } {
  return tf.tidy(() => {
    const x = tf.randomUniform([n, 4, 4], 0, 1, 'float32', seed);
    const y = tf.cast(tf.argMax(tf.sum(tf.slice(x, [0, 0, 0], [n, 3, 4]), 2), 1), 'float32');
    return { x, y };
  });
}

async function weightsOf(step: GradientStep): Promise<Float32Array> {
  const out = new Float32Array(step.size);
  await step.getWeightsAsync(out);
  return out;
}

function relativeDifference(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

async function train(
  built: BuiltModel,
  x: tf.Tensor,
  y: tf.Tensor,
  steps: number,
  spec: OptimizerSpecInput,
): Promise<number[]> {
  const step = new GradientStep(built.model, built.loss);
  const optimizer = createOptimizer(spec);
  const grads = new Float32Array(step.size);
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const { lossSum, count } = await step.computeAsync(x, y, grads);
    step.apply(grads, count, optimizer.optimizer);
    losses.push(lossSum / count);
  }
  optimizer.dispose();
  return losses;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('every zoo model trains on cpu', () => {
  const cases: [string, () => Promise<BuiltModel>, () => { x: tf.Tensor; y: tf.Tensor }][] = [
    [
      'linear',
      () => createModel({ zoo: 'linear', params: { inputs: 3 } }, tf, { seed: 1 }),
      () =>
        tf.tidy(() => {
          const x = tf.randomNormal([32, 3], 0, 1, 'float32', 1);
          return { x, y: tf.add(tf.matMul(x, tf.tensor2d([[2], [-1], [0.5]])), 0.3) };
        }),
    ],
    [
      'perceptron',
      () => createModel({ zoo: 'perceptron' }, tf, { seed: 2 }),
      () =>
        tf.tidy(() => {
          const x = tf.randomNormal([32, 2], 0, 1, 'float32', 2);
          return { x, y: tf.cast(tf.greater(tf.sum(x, 1), 0), 'float32') };
        }),
    ],
    [
      'binary-mlp',
      () => createModel({ zoo: 'binary-mlp', params: { hidden: 8 } }, tf, { seed: 3 }),
      () =>
        tf.tidy(() => {
          const x = tf.randomNormal([32, 2], 0, 1, 'float32', 3);
          return { x, y: tf.cast(tf.greater(tf.prod(x, 1), 0), 'float32') };
        }),
    ],
    [
      'mlp',
      () => createModel({ zoo: 'mlp', params: { inputShape: [4, 4], hidden: 16, classes: 3 } }, tf, { seed: 4 }),
      () => classification(32, 4),
    ],
    [
      'cnn',
      () =>
        createModel({ zoo: 'cnn', params: { inputShape: [10, 10, 1], filters: [4, 4], dense: 8, classes: 3 } }, tf, {
          seed: 5,
        }),
      () =>
        tf.tidy(() => {
          const x = tf.randomUniform([16, 10, 10, 1], 0, 1, 'float32', 5);
          const y = tf.cast(
            tf.argMax(tf.reshape(tf.sum(tf.slice(x, [0, 0, 0, 0], [16, 3, 10, 1]), [2, 3]), [16, 3]), 1),
            'float32',
          );
          return { x, y };
        }),
    ],
  ];
  for (const [name, build, data] of cases) {
    it(name, async () => {
      const built = await build();
      const { x, y } = data();
      const losses = await train(built, x, y, 12, { type: 'adam', learningRate: 0.02 });
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses.at(-1)).toBeLessThan(losses[0] * 0.9);
      tf.dispose([x, y]);
      built.model.dispose();
    });
  }
});

describe('GradientStep equivalence (N ranks with global batch B = one process with batch B)', () => {
  const B = 12;

  async function runBoth(
    spec: { module?: string; optimizer: OptimizerSpecInput },
    slices: number[],
  ): Promise<{ single: Float32Array; split: Float32Array; initial: Float32Array }> {
    const make = () =>
      spec.module
        ? createModel({ module: spec.module, params: { inputs: 16 } }, tf, { seed: 9, loss: 'mse' })
        : createModel({ zoo: 'mlp', params: { inputShape: [4, 4], hidden: 6, classes: 3 } }, tf, { seed: 9 });
    const [a, b] = [await make(), await make()];
    const single = new GradientStep(a.model, a.loss);
    const split = new GradientStep(b.model, b.loss);
    const initial = await weightsOf(single);
    expect(await weightsOf(split)).toEqual(initial);
    const [optA, optB] = [createOptimizer(spec.optimizer), createOptimizer(spec.optimizer)];
    const full = new Float32Array(single.size);
    const parts = slices.map(() => new Float32Array(split.size));
    const reduced = new Float32Array(split.size);
    for (let s = 0; s < 3; s++) {
      const { x, y } = classification(B, 100 + s);
      const xs = spec.module ? tf.reshape(x, [B, 16]) : x;
      const ys = spec.module ? tf.reshape(y, [B, 1]) : y;
      await single.computeAsync(xs, ys, full);
      single.apply(full, B, optA.optimizer);

      let start = 0;
      let global = 0;
      for (const [rank, n] of slices.entries()) {
        const xr = tf.slice(xs, start, n);
        const yr = tf.slice(ys, start, n);
        global += (await split.computeAsync(xr, yr, parts[rank])).count;
        tf.dispose([xr, yr]);
        start += n;
      }
      // What the all-reduce delivers: the sum over ranks, in rank order, in fp32.
      reduced.fill(0);
      for (const p of parts) for (let i = 0; i < p.length; i++) reduced[i] += p[i];
      split.apply(reduced, global, optB.optimizer);
      tf.dispose([x, y, xs, ys]);
    }
    const result = { single: await weightsOf(single), split: await weightsOf(split), initial };
    [optA, optB].forEach((o) => o.dispose());
    [a, b].forEach((m) => m.model.dispose());
    return result;
  }

  for (const [label, slices, optimizer] of [
    ['2 ranks, SGD', [7, 5], { type: 'sgd', learningRate: 0.5 }],
    ['3 ranks, one with no samples, SGD', [5, 0, 7], { type: 'sgd', learningRate: 0.5 }],
    ['3 uneven ranks, Adam', [1, 6, 5], { type: 'adam', learningRate: 0.01 }],
  ] as const) {
    it(label, async () => {
      const { single, split, initial } = await runBoth({ optimizer }, [...slices]);
      expect(relativeDifference(single, initial)).toBeGreaterThan(1e-3);
      expect(relativeDifference(split, single)).toBeLessThan(1e-5);
    });
  }

  it('holds for an explicit-variables model with momentum', async () => {
    const { single, split, initial } = await runBoth(
      { module: fixture('explicit-variables.mjs'), optimizer: { type: 'momentum', learningRate: 0.05 } },
      [4, 0, 8],
    );
    expect(relativeDifference(single, initial)).toBeGreaterThan(1e-3);
    expect(relativeDifference(split, single)).toBeLessThan(1e-5);
  });

  it('a rank with no samples writes zeros and a zero loss', async () => {
    const built = await createModel({ zoo: 'linear', params: { inputs: 2 } });
    const step = new GradientStep(built.model, built.loss);
    const out = new Float32Array(step.size).fill(7);
    expect(await step.computeAsync(tf.zeros([0, 2]), tf.zeros([0, 1]), out)).toEqual({
      lossSum: 0,
      count: 0,
      readbackSeconds: 0,
    });
    expect(Array.from(out)).toEqual([0, 0, 0]);
    built.model.dispose();
  });
});

describe('GradientStep readback', () => {
  it('adds to the buffer exactly what it would write into it, and times the wait for the values', async () => {
    const built = await createModel({ zoo: 'binary-mlp', params: { hidden: 4 } }, tf, { seed: 2 });
    const step = new GradientStep(built.model, built.loss);
    const x = tf.randomNormal([8, 2], 0, 1, 'float32', 3);
    const y = tf.tensor1d([0, 1, 1, 0, 1, 0, 0, 1]);
    const written = new Float32Array(step.size).fill(7);
    const a = await step.computeAsync(x, y, written);
    expect(written.every((v) => v !== 7)).toBe(true);
    expect(written.some((v) => v !== 0)).toBe(true);
    const added = new Float32Array(step.size).fill(0.5);
    // A device that takes 40 ms to hand the values back (the cpu backend's read, delayed).
    const backend = tf.backend() as unknown as { read(id: object): Promise<unknown> };
    const read = backend.read;
    backend.read = async function (this: unknown, id: object) {
      await new Promise((r) => setTimeout(r, 40));
      return read.call(this, id);
    };
    try {
      const b = await step.accumulateAsync(x, y, added);
      const expected = Float32Array.from(written, (g) => 0.5 + g);
      expect(Buffer.from(added.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      expect(b.lossSum).toBe(a.lossSum);
      expect(b.readbackSeconds).toBeGreaterThanOrEqual(0.035);
    } finally {
      backend.read = read;
      tf.dispose([x, y]);
      built.model.dispose();
    }
  });
});

describe('GradientStep resources', () => {
  it('holds tensors flat over 2,000 steps as the worker runs them', async () => {
    const built = await createModel({ zoo: 'binary-mlp', params: { hidden: 4 } }, tf, { seed: 1 });
    const step = new GradientStep(built.model, built.loss);
    // Momentum keeps its rate as a tensor that each new rate replaces: the warmup brings a new rate on each
    // of the first 1,000 steps, after which the rate stays.
    const spec = jobOptimizerSchema.parse({ type: 'momentum', learningRate: 0.01, warmupSteps: 1000 });
    const optimizer = createOptimizer(spec);
    const x = tf.randomNormal([8, 2], 0, 1, 'float32', 1);
    const y = tf.tensor1d([0, 1, 1, 0, 1, 0, 0, 1]);
    const [x1, y1, x2, y2] = [tf.slice(x, 0, 3), tf.slice(y, 0, 3), tf.slice(x, 3, 5), tf.slice(y, 3, 5)];
    const empty = [tf.zeros([0, 2]), tf.zeros([0])];
    const grads = new Float32Array(step.size);
    const run = async (i: number) => {
      // Every tenth step this rank has no samples; the others run as two micro-batches.
      let count = 0;
      if (i % 10 === 0) await step.computeAsync(empty[0], empty[1], grads);
      else {
        count += (await step.computeAsync(x1, y1, grads)).count;
        count += (await step.accumulateAsync(x2, y2, grads)).count;
      }
      setLearningRate(optimizer.optimizer, learningRateAt(spec, i, 1));
      step.apply(grads, Math.max(count, 8), optimizer.optimizer);
    };
    for (let i = 0; i < 100; i++) await run(i);
    const held = tf.memory().numTensors;
    for (let i = 100; i < 2000; i++) await run(i);
    expect(tf.memory().numTensors).toBe(held);
    tf.dispose([x, y, x1, y1, x2, y2, ...empty]);
    optimizer.dispose();
    built.model.dispose();
  });

  it('checks buffer sizes, batch sizes, the global count and the loss shape', async () => {
    const built = await createModel({ zoo: 'linear', params: { inputs: 2 } });
    const step = new GradientStep(built.model, built.loss);
    const x = tf.ones([4, 2]);
    const y = tf.ones([4, 1]);
    await expect(step.computeAsync(x, y, new Float32Array(2))).rejects.toThrow(
      'gradient buffer holds 2 floats; this model has 3 parameters. Allocate new Float32Array(step.size) once and reuse it',
    );
    const y3 = tf.ones([3, 1]);
    await expect(step.accumulateAsync(x, y3, new Float32Array(3))).rejects.toThrow(/x holds 4 samples but y holds 3/);
    expect(() => step.apply(new Float32Array(3), 0, tf.train.sgd(0.1))).toThrow(
      /globalCount must be the positive number/,
    );
    const meanLoss = new GradientStep(built.model, (t, p) => tf.mean(LOSSES.mse(t, p)) as tf.Tensor1D);
    await expect(meanLoss.computeAsync(x, y, new Float32Array(3))).rejects.toThrow(
      /the loss must return one value per sample, shape \[4\]; got shape \[\]/,
    );
    tf.dispose([x, y, y3]);
    built.model.dispose();
  });
});

describe('weights and hashes', () => {
  it('copies all parameters between replicas through one flat buffer, and the hash follows them', async () => {
    const [a, b] = await Promise.all([
      createModel({ zoo: 'mlp', params: { inputShape: [4, 4], hidden: 5, classes: 3 } }, tf, { seed: 1 }),
      createModel({ zoo: 'mlp', params: { inputShape: [4, 4], hidden: 5, classes: 3 } }, tf, { seed: 2 }),
    ]);
    const [sa, sb] = [new GradientStep(a.model, a.loss), new GradientStep(b.model, b.loss)];
    expect(await sa.hashAsync()).not.toBe(await sb.hashAsync());
    const buffer = new Float32Array(sa.size);
    await sa.getWeightsAsync(buffer);
    sb.setWeights(buffer);
    buffer.fill(0); // the receiver must not alias the sender's buffer
    expect(await sb.hashAsync()).toBe(await sa.hashAsync());
    const { x } = classification(3, 1);
    expect(b.model.predict(x).arraySync()).toEqual(a.model.predict(x).arraySync());
    expect(parameterHash(await weightsOf(sa))).toBe(await sa.hashAsync());
    const g = new Float32Array(sa.size).fill(1);
    sa.apply(g, 1, tf.train.sgd(1e-3));
    expect(await sa.hashAsync()).not.toBe(await sb.hashAsync());
    [a, b].forEach((m) => m.model.dispose());
  });
});

describe('optimizers and the learning-rate schedule', () => {
  const TYPES = ['sgd', 'momentum', 'adam', 'rmsprop', 'adagrad', 'adadelta'] as const;

  async function firstDelta(type: (typeof TYPES)[number], rate?: number): Promise<Float32Array> {
    const built = await createModel({ zoo: 'linear', params: { inputs: 3 } }, tf, { seed: 1 });
    const step = new GradientStep(built.model, built.loss);
    const before = await weightsOf(step);
    const optimizer = createOptimizer({ type, learningRate: 0.1 });
    if (rate !== undefined) setLearningRate(optimizer.optimizer, rate);
    step.apply(Float32Array.from([0.5, -1, 2, 0.25]), 1, optimizer.optimizer);
    const after = await weightsOf(step);
    optimizer.dispose();
    built.model.dispose();
    return after.map((v, i) => v - before[i]);
  }

  for (const type of TYPES) {
    it(`${type}: a changed learning rate takes effect on the next update`, async () => {
      const base = await firstDelta(type);
      const doubled = await firstDelta(type, 0.2);
      expect(base.some((d) => d !== 0)).toBe(true);
      doubled.forEach((d, i) => expect(d / base[i]).toBeCloseTo(2, 4));
    });
  }

  it('scales the rate with the world size and warms it up linearly', () => {
    const spec = { type: 'sgd', learningRate: 0.1, scaleWithWorldSize: true, warmupSteps: 4 } as const;
    const rates = [0, 1, 2, 3, 4, 100].map((s) => learningRateAt(spec, s, 4));
    [0.1, 0.2, 0.3, 0.4, 0.4, 0.4].forEach((r, i) => expect(rates[i]).toBeCloseTo(r, 12));
    expect(learningRateAt({ ...spec, scaleWithWorldSize: false, warmupSteps: 0 }, 0, 4)).toBe(0.1);
  });

  it('applies the scheduled rate of each step, and rebuilds nothing for an unchanged rate', async () => {
    const built = await createModel({ zoo: 'linear', params: { inputs: 1 } }, tf, { seed: 1 });
    const step = new GradientStep(built.model, built.loss);
    const spec = jobOptimizerSchema.parse({ type: 'sgd', learningRate: 0.1, scaleWithWorldSize: true, warmupSteps: 2 });
    const optimizer = createOptimizer(spec);
    const rebuilds = vi.spyOn(optimizer.optimizer as tf.SGDOptimizer, 'setLearningRate');
    const moves: number[] = [];
    for (let s = 0; s < 3; s++) {
      const before = (await weightsOf(step))[1];
      // What the coordinator sends with each step and the worker sets before it applies.
      const rate = learningRateAt(spec, s, 3);
      expect(rate).toBeCloseTo([0.15, 0.3, 0.3][s], 10);
      setLearningRate(optimizer.optimizer, rate);
      step.apply(Float32Array.from([0, 1]), 1, optimizer.optimizer);
      moves.push(before - (await weightsOf(step))[1]);
    }
    expect(moves[0]).toBeCloseTo(0.15, 6);
    expect(moves[1]).toBeCloseTo(0.3, 6);
    expect(moves[2]).toBeCloseTo(0.3, 6);
    // Built at the spec's 0.1: 0.15 and then 0.3 change the rate; the second 0.3 leaves it as it is.
    expect(rebuilds).toHaveBeenCalledTimes(2);
    optimizer.dispose();
    built.model.dispose();
  });

  it('rejects an invalid optimizer spec, saying what is wrong', () => {
    expect(() => createOptimizer({ type: 'adam', learningRate: -1 })).toThrow(/invalid optimizer spec/);
  });

  for (const type of TYPES) {
    it(`${type}: state exported mid-training and restored into a fresh optimizer continues identically`, async () => {
      const make = () =>
        createModel({ zoo: 'mlp', params: { inputShape: [4, 4], hidden: 4, classes: 3 } }, tf, { seed: 3 });
      const [a, b] = [await make(), await make()];
      const [sa, sb] = [new GradientStep(a.model, a.loss), new GradientStep(b.model, b.loss)];
      const optA = createOptimizer({ type, learningRate: 0.05 });
      const grads = new Float32Array(sa.size);
      const { x, y } = classification(6, 7);
      for (let s = 0; s < 3; s++) {
        await sa.computeAsync(x, y, grads);
        sa.apply(grads, 6, optA.optimizer);
      }
      const state = await getOptimizerState(optA.optimizer);
      expect(state.entries[0]).toMatchObject({ name: 'iter', dtype: 'int32' });
      expect(Array.from(state.entries[0].values)).toEqual([3]);
      sb.setWeights(await weightsOf(sa));
      const optB = createOptimizer({ type, learningRate: 0.05 });
      await setOptimizerState(optB.optimizer, state);
      expect(await getOptimizerState(optB.optimizer)).toEqual(state);

      await sa.computeAsync(x, y, grads);
      sa.apply(grads, 6, optA.optimizer);
      sb.apply(grads, 6, optB.optimizer);
      expect(await sb.hashAsync()).toBe(await sa.hashAsync());
      tf.dispose([x, y]);
      [optA, optB].forEach((o) => o.dispose());
      [a, b].forEach((m) => m.model.dispose());
    });
  }
});

describe('evaluate', () => {
  it('gives the mean loss and metrics whatever the batch size, from tensors or from batches', async () => {
    const built = await createModel({ zoo: 'mlp', params: { inputShape: [4, 4], hidden: 6, classes: 3 } }, tf, {
      seed: 2,
    });
    const { x, y } = classification(10, 3);
    const expectedLoss = tf.tidy(() => tf.mean(built.loss(y, built.model.predict(x))).dataSync()[0]);
    const expectedAccuracy = tf.tidy(
      () =>
        tf.mean(tf.cast(tf.equal(tf.argMax(built.model.predict(x), 1), tf.cast(y, 'int32')), 'float32')).dataSync()[0],
    );
    const whole = await evaluate(built.model, { x, y }, built.loss, ['accuracy'], 100);
    const small = await evaluate(built.model, { x, y }, built.loss, ['accuracy'], 3);
    const batches = [0, 4].map((start) => ({
      x: tf.slice(x, start, start ? 6 : 4),
      y: tf.slice(y, start, start ? 6 : 4),
    }));
    const fromBatches = await evaluate(built.model, batches, built.loss, ['accuracy'], 5);
    for (const r of [whole, small, fromBatches]) {
      expect(r.count).toBe(10);
      expect(r.loss).toBeCloseTo(expectedLoss, 5);
      expect(r.metrics.accuracy).toBeCloseTo(expectedAccuracy, 6);
    }
    tf.dispose([x, y, ...batches.flatMap((b) => [b.x, b.y])]);
    built.model.dispose();
  });
});
