// The language model's loss: cross-entropy of the next token, from logits, averaged over a window's
// positions, so each window is one sample whose loss the step sums like any other (DESIGN §3.1).
// log-softmax of the logits is exact where log(softmax) would underflow for unlikely tokens.
import * as tf from '@tensorflow/tfjs';
import type { LossFn } from '../losses.js';

/** yTrue: target ids [batch, length]; yPred: logits [batch, length, vocabulary] → [batch]. */
export const tokenCrossEntropy: LossFn = (yTrue, yPred) =>
  tf.tidy(() => {
    const [batch, length, vocabulary] = yPred.shape;
    const targets = tf.oneHot(tf.cast(tf.reshape(yTrue, [-1]), 'int32'), vocabulary);
    const logProbabilities = tf.logSoftmax(tf.reshape(yPred, [batch * length, vocabulary]));
    const perPosition = tf.neg(tf.sum(tf.mul(targets, logProbabilities), -1));
    return tf.mean(tf.reshape(perPosition, [batch, length]), 1) as tf.Tensor1D;
  });
