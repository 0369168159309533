// The optimizer and its hyperparameters, one shape per type so a setting that the chosen
// optimizer does not have (beta1 on sgd) is an error rather than silently ignored. Defaults are
// TensorFlow.js's own, written out so the resolved spec shows what actually runs.
import { z } from 'zod';

const shared = {
  learningRate: z.number().positive(),
  /** Linear scaling rule: multiply learningRate by the number of workers. */
  scaleWithWorldSize: z.boolean().default(false),
  /** Steps over which the learning rate ramps linearly from 0 to its full value. */
  warmupSteps: z.number().int().min(0).default(0),
  /**
   * The rate after the warmup: `type: cosine` lowers it along half a cosine from learningRate to
   * minLearningRate over the rest of the job's steps (or until totalSteps); minLearningRate is scaled
   * with the world size like learningRate. Absent: the rate stays at learningRate.
   */
  schedule: z
    .strictObject({
      type: z.literal('cosine'),
      minLearningRate: z.number().min(0).default(0),
      totalSteps: z.number().int().min(1).optional(),
    })
    .optional(),
  /**
   * Decoupled weight decay (AdamW, SGDW): every step w -= lr·weightDecay·w on weight matrices and
   * embeddings (variables of rank >= 2); biases and norm gains are not decayed.
   */
  weightDecay: z.number().min(0).default(0),
  /** Scales the mean gradient down to this global L2 norm when it is larger. */
  clipNorm: z.number().positive().optional(),
  /**
   * ZeRO stage 1: each worker keeps the optimizer slots of its shard of the parameters only, updates
   * that shard and all-gathers the updated parameters (instead of the reduced gradient).
   */
  shard: z.boolean().default(false),
};
const fraction = z.number().min(0).lt(1);
const epsilon = z.number().positive().default(1e-7);

export const jobOptimizerSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('sgd'), ...shared }),
  z.strictObject({ type: z.literal('momentum'), ...shared, momentum: fraction.default(0.9) }),
  z.strictObject({
    type: z.literal('adam'),
    ...shared,
    beta1: fraction.default(0.9),
    beta2: fraction.default(0.999),
    epsilon,
  }),
  z.strictObject({
    type: z.literal('rmsprop'),
    ...shared,
    decay: fraction.default(0.9),
    momentum: fraction.default(0),
    epsilon,
  }),
  z.strictObject({ type: z.literal('adagrad'), ...shared }),
  z.strictObject({ type: z.literal('adadelta'), ...shared, rho: fraction.default(0.95), epsilon }),
]);
export type JobOptimizer = z.output<typeof jobOptimizerSchema>;
