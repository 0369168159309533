// The training step's large-model features on the transformer: gradient accumulation equals one big
// batch, clipping by the global norm of the reduced gradient is identical on every rank, decoupled
// weight decay spares biases and norm gains, and the learning rate warms up then follows a cosine.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ByteTokenizer,
  GradientStep,
  createModel,
  createOptimizer,
  globalNorm,
  learningRateAt,
  splitEvenly,
  type BuiltModel,
  type JobOptimizer,
} from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { bytesOf, startRanks } from './support/collective-ranks.js';
import { compareParameters } from './support/jobs.js';

const tokenizer = new ByteTokenizer();
const LENGTH = 8;
const OPTIMIZER = { type: 'adam', learningRate: 0.01 } as const;

function replica(seed = 1): Promise<BuiltModel> {
  return createModel({ zoo: 'transformer-lm', params: { layers: 1, heads: 2, dModel: 16 } }, tf, {
    seed,
    inputShape: [LENGTH],
    tokenizer: tokenizer.toJSON(),
  });
}

/** Windows of a real sentence: row i starts at byte 5·i. */
function batch(rows: number, first = 0): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const ids = tokenizer.encode('We observe with great satisfaction the prosperity of the country. '.repeat(8));
  const x: number[][] = [];
  const y: number[][] = [];
  for (let r = first; r < first + rows; r++) {
    x.push(Array.from(ids.subarray(5 * r, 5 * r + LENGTH)));
    y.push(Array.from(ids.subarray(5 * r + 1, 5 * r + LENGTH + 1)));
  }
  return { x: tf.tensor2d(x), y: tf.tensor2d(y) };
}

async function weights(step: GradientStep): Promise<Float32Array> {
  const out = new Float32Array(step.size);
  await step.getWeightsAsync(out);
  return out;
}

describe('gradient accumulation', () => {
  it('k micro-batches of b windows give the gradient and the update of one batch of k·b', async () => {
    const k = 3;
    const b = 4;
    const [whole, accumulated] = [await replica(), await replica()];
    const [one, many] = [whole, accumulated].map((m) => new GradientStep(m.model, m.loss));
    const sum = new Float32Array(one.size);
    const parts = new Float32Array(one.size);
    const all = batch(k * b);
    const lossAll = (await one.computeAsync(all.x, all.y, sum)).lossSum;
    let lossParts = 0;
    for (const part of splitEvenly(0, k * b, k)) {
      const micro = batch(part.count, part.start);
      lossParts += (await many.accumulateAsync(micro.x, micro.y, parts)).lossSum;
      tf.dispose([micro.x, micro.y]);
    }
    expect(lossParts).toBeCloseTo(lossAll, 4);
    expect(compareParameters(sum, parts, 1e-5, 1e-6).allClose).toBe(true);

    const options = { clipNorm: 0.5, weightDecay: 0.1, learningRate: 0.01 };
    const [optA, optB] = [createOptimizer(OPTIMIZER), createOptimizer(OPTIMIZER)];
    one.apply(sum, k * b, optA.optimizer, options);
    many.apply(parts, k * b, optB.optimizer, options);
    const { normRelative, allClose } = compareParameters(await weights(one), await weights(many), 1e-5, 1e-6);
    expect(normRelative).toBeLessThan(1e-6);
    expect(allClose).toBe(true);
    tf.dispose([all.x, all.y]);
    [optA, optB].forEach((o) => o.dispose());
    [whole, accumulated].forEach((m) => m.model.dispose());
  });

  it('adds nothing for an empty micro-batch', async () => {
    const built = await replica();
    const step = new GradientStep(built.model, built.loss);
    const out = new Float32Array(step.size).fill(0.25);
    const empty = { x: tf.zeros([0, LENGTH]), y: tf.zeros([0, LENGTH]) };
    expect(await step.accumulateAsync(empty.x, empty.y, out)).toEqual({ lossSum: 0, count: 0, readbackSeconds: 0 });
    expect(out.every((v) => v === 0.25)).toBe(true);
    tf.dispose([empty.x, empty.y]);
    built.model.dispose();
  });
});

describe('clipping by the global norm of the reduced gradient', () => {
  let nats: NatsFixture;
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it('two ranks compute the same norm and apply the same clipped update, that of one process on both halves', async () => {
    const clipNorm = 0.05;
    const ranks = await startRanks(nats.url, 2);
    const models = [await replica(7), await replica(7), await replica(7)];
    try {
      const steps = models.map((m) => new GradientStep(m.model, m.loss));
      const optimizers = models.map(() => createOptimizer(OPTIMIZER));
      // Rank r holds windows [6r, 6r + 6); the reference process holds all 12.
      const grads = await Promise.all(
        [0, 1].map(async (r) => {
          const half = batch(6, 6 * r);
          const g = new Float32Array(steps[r].size);
          await steps[r].accumulateAsync(half.x, half.y, g);
          tf.dispose([half.x, half.y]);
          return g;
        }),
      );
      expect(bytesOf(grads[0]).equals(bytesOf(grads[1]))).toBe(false);
      await Promise.all(ranks.collectives.map((c, r) => c.allReduce(grads[r])));
      const results = [0, 1].map((r) => steps[r].apply(grads[r], 12, optimizers[r].optimizer, { clipNorm }));
      expect(results[0].gradNorm).toBeGreaterThan(clipNorm);
      expect(results[1].gradNorm).toBe(results[0].gradNorm);
      expect(results.every((r) => r.clipped)).toBe(true);
      expect(bytesOf(await weights(steps[1])).equals(bytesOf(await weights(steps[0])))).toBe(true);

      const all = batch(12);
      const reference = new Float32Array(steps[2].size);
      await steps[2].computeAsync(all.x, all.y, reference);
      tf.dispose([all.x, all.y]);
      expect(globalNorm(reference) / 12).toBeCloseTo(results[0].gradNorm as number, 6);
      steps[2].apply(reference, 12, optimizers[2].optimizer, { clipNorm });
      const { allClose } = compareParameters(await weights(steps[2]), await weights(steps[0]), 1e-5, 1e-6);
      expect(allClose).toBe(true);
      optimizers.forEach((o) => o.dispose());
    } finally {
      models.forEach((m) => m.model.dispose());
      await ranks.close();
    }
  });

  it('leaves a gradient below the limit exactly as it is', async () => {
    const [a, b] = [await replica(8), await replica(8)];
    const [stepA, stepB] = [a, b].map((m) => new GradientStep(m.model, m.loss));
    const data = batch(4);
    const grad = new Float32Array(stepA.size);
    await stepA.computeAsync(data.x, data.y, grad);
    const [optA, optB] = [createOptimizer(OPTIMIZER), createOptimizer(OPTIMIZER)];
    const clipped = stepA.apply(grad, 4, optA.optimizer, { clipNorm: 1e6 });
    stepB.apply(grad, 4, optB.optimizer);
    expect(clipped.clipped).toBe(false);
    expect(bytesOf(await weights(stepA)).equals(bytesOf(await weights(stepB)))).toBe(true);
    tf.dispose([data.x, data.y]);
    [optA, optB].forEach((o) => o.dispose());
    [a, b].forEach((m) => m.model.dispose());
  });
});

describe('decoupled weight decay', () => {
  it('shrinks embeddings and weight matrices by lr·decay, and leaves biases and norm gains alone', async () => {
    const built = await replica(9);
    const step = new GradientStep(built.model, built.loss);
    const before = built.model.variables().map((v) => v.dataSync().slice());
    const optimizer = createOptimizer({ type: 'sgd', learningRate: 0.5 });
    step.apply(new Float32Array(step.size), 1, optimizer.optimizer, { weightDecay: 0.1, learningRate: 0.5 });
    const decayed = built.model.variables().map((v, i) => {
      const now = v.dataSync();
      return { rank: v.rank, same: now.every((x, j) => x === before[i][j]), ratio: now[0] / before[i][0] };
    });
    for (const v of decayed) {
      if (v.rank >= 2) expect(v.ratio).toBeCloseTo(1 - 0.5 * 0.1, 6);
      else expect(v.same).toBe(true);
    }
    expect(decayed.filter((v) => v.rank >= 2).length).toBeGreaterThan(2);
    expect(decayed.filter((v) => v.rank === 1).length).toBeGreaterThan(2);
    optimizer.dispose();
    built.model.dispose();
  });

  it("needs the step's learning rate", async () => {
    const built = await replica();
    const step = new GradientStep(built.model, built.loss);
    const optimizer = createOptimizer(OPTIMIZER);
    expect(() => step.apply(new Float32Array(step.size), 1, optimizer.optimizer, { weightDecay: 0.1 })).toThrow(
      /needs the step's learning rate/,
    );
    optimizer.dispose();
    built.model.dispose();
  });
});

describe('the learning-rate schedule', () => {
  const spec: JobOptimizer = {
    type: 'sgd',
    learningRate: 0.1,
    scaleWithWorldSize: false,
    warmupSteps: 10,
    schedule: { type: 'cosine', minLearningRate: 0.01 },
    weightDecay: 0,
    shard: false,
  };

  it('warms up linearly, then falls along half a cosine to the minimum over the job', () => {
    const at = (step: number) => learningRateAt(spec, step, 1, 110);
    expect(at(0)).toBeCloseTo(0.01, 12);
    expect(at(9)).toBeCloseTo(0.1, 12);
    expect(at(10)).toBe(0.1);
    expect(at(60)).toBeCloseTo((0.1 + 0.01) / 2, 12);
    expect(at(109)).toBeGreaterThan(0.01);
    expect(at(109)).toBeLessThan(0.0101);
    expect(at(500)).toBeCloseTo(0.01, 12);
    for (let s = 11; s < 110; s++) expect(at(s)).toBeLessThan(at(s - 1));
  });

  it('scales the maximum and the minimum with the world size, and may name its own length', () => {
    const scaled = {
      ...spec,
      scaleWithWorldSize: true,
      schedule: { type: 'cosine' as const, minLearningRate: 0.01, totalSteps: 30 },
    };
    expect(learningRateAt(scaled, 20, 4)).toBeCloseTo((0.4 + 0.04) / 2, 12);
    expect(learningRateAt(scaled, 30, 4)).toBeCloseTo(0.04, 12);
  });

  it('asks for the number of steps when neither the spec nor the caller gives it', () => {
    expect(learningRateAt(spec, 9, 1)).toBeCloseTo(0.1, 12);
    for (const step of [10, 11]) {
      expect(() => learningRateAt(spec, step, 1)).toThrow(/set optimizer.schedule.totalSteps/);
    }
  });
});
