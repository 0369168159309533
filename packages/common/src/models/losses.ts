// Losses as one value per sample: the training step sums them and every rank divides by the global
// sample count, which is what makes N workers' update equal one process's (DESIGN §3.1). Keras
// formulas and its 1e-7 clipping, so results compare with Keras and tf.losses.
import * as tf from '@tensorflow/tfjs';
import type { LossName } from '../job/names.js';

export type { LossName };

/** Per-sample losses: yTrue and yPred for a batch of B samples → a tensor of shape [B]. */
export type LossFn = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor1D;

const EPSILON = 1e-7;

/** Mean over every axis but the batch axis. */
function perSample(t: tf.Tensor): tf.Tensor1D {
  return (t.rank === 1 ? t : tf.mean(tf.reshape(t, [t.shape[0], -1]), 1)) as tf.Tensor1D;
}

function clipped(p: tf.Tensor): tf.Tensor {
  return tf.clipByValue(p, EPSILON, 1 - EPSILON);
}

/** Class-index labels, [B] or [B, 1], as one-hot rows matching the prediction's class count. */
function oneHotLabels(yTrue: tf.Tensor, classes: number): tf.Tensor {
  return tf.oneHot(tf.cast(tf.reshape(yTrue, [-1]), 'int32'), classes);
}

export const LOSSES: Record<LossName, LossFn> = {
  mse: (yTrue, yPred) => tf.tidy(() => perSample(tf.squaredDifference(tf.reshape(yTrue, yPred.shape), yPred))),
  binaryCrossentropy: (yTrue, yPred) =>
    tf.tidy(() => {
      const y = tf.reshape(yTrue, yPred.shape);
      const p = clipped(yPred);
      return perSample(tf.neg(tf.add(tf.mul(y, tf.log(p)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, p))))));
    }),
  // A one-hot product rather than gather keeps the backward pass to dense kernels every backend has.
  sparseCategoricalCrossentropy: (yTrue, yPred) =>
    tf.tidy(() => {
      const classes = yPred.shape[yPred.rank - 1];
      return tf.neg(tf.sum(tf.mul(oneHotLabels(yTrue, classes), tf.log(clipped(yPred))), -1)) as tf.Tensor1D;
    }),
  categoricalCrossentropy: (yTrue, yPred) =>
    tf.tidy(() => tf.neg(tf.sum(tf.mul(yTrue, tf.log(clipped(yPred))), -1)) as tf.Tensor1D),
};

export function lossByName(name: LossName): LossFn {
  return LOSSES[name];
}
