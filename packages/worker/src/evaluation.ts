// Evaluates this rank's slice of a held-out split and returns sums (loss, correct, confusion
// counts) that the coordinator adds across ranks, so metrics do not depend on the world size.
import {
  type BuiltModel,
  type EvalSums,
  MetricAccumulator,
  type Dataset,
  type JobSpec,
  type LossFn,
  type MetricName,
  type Tf,
  type TrainableModel,
} from '@tfjs-ddp/common';
import type { Tensor } from '@tensorflow/tfjs';
import { BatchBuffers, range } from './batch.js';
import type { JobData } from './job-data.js';

const EVAL_BATCH = 512;

/**
 * Lets timers and messages run (an abort, the ticks that tell the heartbeat thread the main thread
 * is responsive): a backend that computes synchronously resolves every await at once, so without
 * this a long evaluation or step holds the main thread until it ends.
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
    const held: Tensor[] = [x, y];
    try {
      const pred = tf.tidy(() => model.predict(x, { training: false }));
      held.push(pred);
      const sum = tf.tidy(() => tf.sum(loss(y, pred)));
      held.push(sum);
      lossSum += (await sum.data())[0];
      await acc.update(y, pred);
    } finally {
      tf.dispose(held);
    }
  }
  const c = acc.counts();
  return { lossSum, count, correct: c.correct, tp: c.tp, fp: c.fp, fn: c.fn, tn: c.total - c.tp - c.fp - c.fn };
}

export interface EvaluationParts {
  tf: Tf;
  spec: JobSpec;
  built: BuiltModel;
  data: JobData;
  batches: BatchBuffers;
}

/** This rank's `slice` ([start, count]; none: an empty one, which sums to zeros) of a held-out split. */
export async function evaluateSplit(
  o: EvaluationParts,
  split: 'validation' | 'test',
  slice: [number, number] | undefined,
): Promise<EvalSums> {
  const ds = split === 'validation' ? o.data.validation : o.data.test;
  const [start, count] = slice ?? [0, 0];
  if (!ds) throw new Error(`asked to evaluate the ${split} split, which this job does not define`);
  // A job accumulates gradients because a whole batch does not fit; its evaluation batches are then
  // no larger than a micro-batch either.
  const { batchSize, accumulationSteps } = o.spec;
  const evalBatch = accumulationSteps > 1 ? Math.ceil(batchSize / accumulationSteps) : undefined;
  const { model, loss, metrics } = o.built;
  return evaluateSlice(o.tf, model, loss, metrics, ds, start, count, o.batches, evalBatch);
}
