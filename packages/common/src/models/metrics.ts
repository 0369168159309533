// Classification metrics accumulated over batches: counts are summed batch by batch and ratios taken
// at the end, so the result does not depend on the batch size. Binary tasks (one sigmoid output)
// threshold at 0.5; multiclass tasks take the argmax and read labels as class indices or one-hot rows.
import * as tf from '@tensorflow/tfjs';
import { BINARY_ONLY_METRICS, type MetricName } from '../job/names.js';

export type { MetricName };

function isBinary(yPred: tf.Tensor): boolean {
  return yPred.rank === 1 || yPred.shape[yPred.rank - 1] === 1;
}

export class MetricAccumulator {
  private correct = 0;
  private total = 0;
  private truePositives = 0;
  private falsePositives = 0;
  private falseNegatives = 0;

  constructor(readonly names: readonly MetricName[]) {}

  /** Adds one batch; reads back four numbers. */
  async update(yTrue: tf.Tensor, yPred: tf.Tensor): Promise<void> {
    if (this.names.length === 0) return;
    const binary = isBinary(yPred);
    const needsBinary = this.names.find((n) => BINARY_ONLY_METRICS.has(n));
    if (needsBinary && !binary) {
      throw new Error(
        `metric '${needsBinary}' is defined for binary tasks (one sigmoid output); this model outputs ` +
          `${yPred.shape[yPred.rank - 1]} classes. Use 'accuracy' for multiclass models`,
      );
    }
    const counts = tf.tidy(() => {
      if (binary) {
        const predicted = tf.cast(tf.greaterEqual(tf.reshape(yPred, [-1]), 0.5), 'float32');
        const actual = tf.cast(tf.greaterEqual(tf.reshape(yTrue, [-1]), 0.5), 'float32');
        const tp = tf.sum(tf.mul(predicted, actual));
        const fp = tf.sum(tf.mul(predicted, tf.sub(1, actual)));
        const fn = tf.sum(tf.mul(tf.sub(1, predicted), actual));
        const correct = tf.sum(tf.cast(tf.equal(predicted, actual), 'float32'));
        return tf.stack([correct, tp, fp, fn]);
      }
      const classes = yPred.shape[yPred.rank - 1];
      const predicted = tf.argMax(tf.reshape(yPred, [-1, classes]), -1);
      const oneHot = yTrue.rank > 1 && yTrue.shape[yTrue.rank - 1] === classes && classes > 1;
      const actual = oneHot
        ? tf.argMax(tf.reshape(yTrue, [-1, classes]), -1)
        : tf.cast(tf.reshape(yTrue, [-1]), 'int32');
      const correct = tf.sum(tf.cast(tf.equal(predicted, actual), 'float32'));
      return tf.stack([correct, tf.scalar(0), tf.scalar(0), tf.scalar(0)]);
    });
    let values: Float32Array | Int32Array | Uint8Array;
    try {
      values = await counts.data();
    } finally {
      counts.dispose();
    }
    const [correct, tp, fp, fn] = values;
    this.correct += correct;
    this.truePositives += tp;
    this.falsePositives += fp;
    this.falseNegatives += fn;
    this.total += yPred.shape[0];
  }

  /** The raw counts, for sums across ranks (tn = total - tp - fp - fn). */
  counts(): { correct: number; total: number; tp: number; fp: number; fn: number } {
    return {
      correct: this.correct,
      total: this.total,
      tp: this.truePositives,
      fp: this.falsePositives,
      fn: this.falseNegatives,
    };
  }

  result(): Partial<Record<MetricName, number>> {
    const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
    const precision = ratio(this.truePositives, this.truePositives + this.falsePositives);
    const recall = ratio(this.truePositives, this.truePositives + this.falseNegatives);
    const values: Record<MetricName, number> = {
      accuracy: ratio(this.correct, this.total),
      precision,
      recall,
      f1: ratio(2 * precision * recall, precision + recall),
    };
    return Object.fromEntries(this.names.map((n) => [n, values[n]]));
  }
}

/** The metrics worth reporting for a built-in loss: none for regression. */
export function defaultMetrics(loss: string): MetricName[] {
  if (loss === 'binaryCrossentropy') return ['accuracy', 'precision', 'recall', 'f1'];
  if (loss === 'sparseCategoricalCrossentropy' || loss === 'categoricalCrossentropy') return ['accuracy'];
  return [];
}
