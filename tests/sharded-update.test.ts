// ZeRO stage 1's update math against the unsharded step: N ranks, each updating its shard with an
// optimizer over that shard only and all-gathering the parameters, end every step with bit-identical
// replicas that equal the unsharded update (within 1e-6, norm-relative), for every optimizer type,
// with clipping to a global norm and decoupled weight decay; and an update rolled back leaves the
// slots as they were, so a redone step is not applied twice.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  combineShardStats,
  createModel,
  createOptimizer,
  GradientStep,
  selectBackend,
  setLearningRate,
  SHARD_STATS_FLOATS,
  ShardedUpdate,
  silentLogger,
  writeShardStats,
  type OptimizerSpecInput,
} from '@tfjs-ddp/common';
import { compareParameters } from './support/jobs.js';
import { memoryGroup } from './support/memory-collective.js';

const COUNT = 24;
const STEPS = 4;

beforeAll(async () => {
  await selectBackend('cpu', silentLogger);
});

/** A seeded gradient sum per step, of mixed signs and magnitudes. */
function gradientSum(n: number, seed: number): Float32Array {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Float32Array.from({ length: n }, () => (next() - 0.5) * 10 ** Math.floor(next() * 4 - 2));
}

async function model(): Promise<GradientStep> {
  // A matrix and a bias per layer, so weight decay applies to some elements of a shard and not others.
  const built = await createModel({ zoo: 'mlp', params: { hidden: 8, inputShape: [5], classes: 3 } }, tf, { seed: 3 });
  return new GradientStep(built.model, built.loss);
}

async function weights(step: GradientStep): Promise<Float32Array> {
  const out = new Float32Array(step.size);
  await step.getWeightsAsync(out);
  return out;
}

const lr = (t: number) => 0.05 * (t + 1);

/** The unsharded reference: GradientStep.apply with one optimizer over the shaped variables. */
async function unsharded(spec: OptimizerSpecInput): Promise<Float32Array> {
  const step = await model();
  const optimizer = createOptimizer(spec).optimizer;
  for (let t = 0; t < STEPS; t++) {
    setLearningRate(optimizer, lr(t));
    step.apply(gradientSum(step.size, t + 1), COUNT, optimizer, {
      clipNorm: (spec as { clipNorm?: number }).clipNorm,
      weightDecay: (spec as { weightDecay?: number }).weightDecay,
      learningRate: lr(t),
    });
  }
  return weights(step);
}

/** N ranks, each with its replica and its shard's update, stepping through the memory collective. */
async function sharded(spec: OptimizerSpecInput, n: number, redo = false): Promise<Float32Array[]> {
  const group = memoryGroup(n);
  const ranks = await Promise.all(
    group.collectives.map(async (c) => {
      const step = await model();
      return { c, step, update: new ShardedUpdate(step, spec, c.rank, n), params: await weights(step) };
    }),
  );
  let op = 0;
  for (let t = 0; t < STEPS; t++) {
    const sum = gradientSum(ranks[0].step.size, t + 1);
    const attempts = redo && t === 1 ? 2 : 1;
    for (let a = 0; a < attempts; a++) {
      const failing = a < attempts - 1;
      const base = op;
      op += 3;
      await Promise.all(
        ranks.map(async ({ c, step, update, params }) => {
          const stats = new Float32Array(SHARD_STATS_FLOATS * n);
          writeShardStats(sum, update.start, update.end, stats, c.rank);
          await c.allGather(stats, { op: base });
          const { squares, finite } = combineShardStats(stats, n);
          expect(finite).toBe(true);
          setLearningRate(update.optimizer, lr(t));
          await update.apply(sum, params, COUNT, squares, {
            clipNorm: (spec as { clipNorm?: number }).clipNorm,
            weightDecay: (spec as { weightDecay?: number }).weightDecay,
            learningRate: lr(t),
          });
          if (failing) {
            // The step failed after the update (its all-gather did not complete): roll back.
            update.rollback();
            params.set(await weights(step));
            return;
          }
          await c.allGather(params, { op: base + 1 });
          step.setWeights(params);
          update.commit();
        }),
      );
    }
    const hashes = await Promise.all(ranks.map(({ step }) => step.hashAsync()));
    expect(new Set(hashes).size).toBe(1);
  }
  return Promise.all(ranks.map(({ step }) => weights(step)));
}

const OPTIMIZERS: [string, OptimizerSpecInput][] = [
  ['sgd', { type: 'sgd', learningRate: 0.1 }],
  ['momentum', { type: 'momentum', learningRate: 0.1 }],
  ['adam', { type: 'adam', learningRate: 0.01 }],
  ['adam with clipping and weight decay', { type: 'adam', learningRate: 0.01, clipNorm: 0.05, weightDecay: 0.1 }],
  ['sgd with clipping and weight decay', { type: 'sgd', learningRate: 0.1, clipNorm: 0.05, weightDecay: 0.1 }],
  ['rmsprop', { type: 'rmsprop', learningRate: 0.01, momentum: 0.5 }],
  ['adagrad', { type: 'adagrad', learningRate: 0.1 }],
  ['adadelta', { type: 'adadelta', learningRate: 1 }],
];

describe.each(OPTIMIZERS)('a sharded %s update', (_name, spec) => {
  it.each([1, 2, 3])('at %i ranks equals the unsharded update, every replica alike', async (n) => {
    const reference = await unsharded(spec);
    const replicas = await sharded(spec, n);
    const before = await weights(await model());
    // The steps moved the parameters: the equality below is not that of untouched initial values.
    expect(compareParameters(before, reference, 0, 0).normRelative).toBeGreaterThan(1e-3);
    for (const w of replicas) {
      const { normRelative, allClose } = compareParameters(reference, w, 1e-5, 1e-7);
      expect(normRelative).toBeLessThan(1e-6);
      expect(allClose).toBe(true);
    }
  });
});

describe('a sharded update that fails after it was applied', () => {
  it('is rolled back: redoing the step gives the parameters of doing it once', async () => {
    const spec: OptimizerSpecInput = { type: 'adam', learningRate: 0.01 };
    const once = await sharded(spec, 2);
    const redone = await sharded(spec, 2, true);
    expect(Buffer.from(redone[0].buffer)).toEqual(Buffer.from(once[0].buffer));
  });
});
