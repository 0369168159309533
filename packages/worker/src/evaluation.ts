// Evaluates this rank's slice of a held-out split and returns sums (loss, correct, confusion
// counts) that the coordinator adds across ranks, so metrics do not depend on the world size.
import {
  type EvalSums,
  MetricAccumulator,
  type Dataset,
  type LossFn,
  type MetricName,
  type Tf,
  type TrainableModel,
} from '@tfjs-ddp/common';
import { BatchBuffers, range } from './batch.js';

const EVAL_BATCH = 512;

/**
 * Lets timers run (heartbeats above all): a backend that computes synchronously resolves every
 * await at once, so without this a long evaluation or step holds the process silent until it ends.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export async function evaluateSlice(
  tf: Tf,
  model: TrainableModel,
  loss: LossFn,
  metrics: readonly MetricName[],
  ds: Dataset,
  start: number,
  count: number,
  buffers: BatchBuffers,
  batchSize = EVAL_BATCH,
): Promise<EvalSums> {
  // Accuracy is always counted: the sums are cheap and the coordinator picks what the job asked for.
  const acc = new MetricAccumulator(metrics.length > 0 ? metrics : ds.numClasses !== undefined ? ['accuracy'] : []);
  let lossSum = 0;
  for (let at = start; at < start + count; at += batchSize) {
    if (at > start) await yieldToEventLoop();
    const n = Math.min(batchSize, start + count - at);
    const { x, y } = buffers.tensors(ds, range(at, n));
    const pred = tf.tidy(() => model.predict(x, { training: false }));
    const sum = tf.tidy(() => tf.sum(loss(y, pred)));
    try {
      lossSum += (await sum.data())[0];
      await acc.update(y, pred);
    } finally {
      tf.dispose([x, y, pred, sum]);
    }
  }
  const c = acc.counts();
  return { lossSum, count, correct: c.correct, tp: c.tp, fp: c.fp, fn: c.fn, tn: c.total - c.tp - c.fp - c.fn };
}
