// Evaluation of a model on held-out data: mean per-sample loss and metrics, batch by batch so memory
// stays bounded whatever the size of the set.
import * as tf from '@tensorflow/tfjs';
import type { LossFn } from '../models/losses.js';
import { MetricAccumulator, type MetricName } from '../models/metrics.js';
import type { TrainableModel } from '../models/trainable.js';

export interface Batch {
  x: tf.Tensor;
  y: tf.Tensor;
}

/** One (x, y) pair split here into batches, or batches from a loader (each split further if larger). */
export type EvalData = Batch | Iterable<Batch> | AsyncIterable<Batch>;

export interface EvalResult {
  /** Mean per-sample loss. */
  loss: number;
  metrics: Partial<Record<MetricName, number>>;
  count: number;
}

function isBatch(data: EvalData): data is Batch {
  return (data as Batch).x instanceof tf.Tensor && (data as Batch).y instanceof tf.Tensor;
}

export async function evaluate(
  model: TrainableModel,
  data: EvalData,
  loss: LossFn,
  metrics: readonly MetricName[],
  batchSize = 256,
): Promise<EvalResult> {
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new Error(`batchSize must be a positive integer; got ${batchSize}`);
  }
  const accumulator = new MetricAccumulator(metrics);
  let lossSum = 0;
  let count = 0;
  const batches = isBatch(data) ? [data] : data;
  for await (const batch of batches) {
    const n = batch.x.shape[0];
    for (let start = 0; start < n; start += batchSize) {
      const size = Math.min(batchSize, n - start);
      const [y, yPred, sum] = tf.tidy(() => {
        const x = tf.slice(batch.x, start, size);
        const yPart = tf.slice(batch.y, start, size);
        const predicted = model.predict(x, { training: false });
        return [yPart, predicted, tf.sum(loss(yPart, predicted))];
      });
      try {
        lossSum += (await sum.data())[0];
        await accumulator.update(y, yPred);
      } finally {
        tf.dispose([y, yPred, sum]);
      }
      count += size;
    }
  }
  if (count === 0) throw new Error('evaluation data holds no samples; expected at least one (x, y) pair');
  return { loss: lossSum / count, metrics: accumulator.result(), count };
}
