// Turns the per-rank sums that workers report for an evaluation pass into the job's metrics:
// sums add exactly across ranks, so the result does not depend on the world size.

import type { EvalSums } from '@tfjs-ddp/common';

export type { EvalSums };

export function emptySums(): EvalSums {
  return { lossSum: 0, count: 0, correct: 0, tp: 0, fp: 0, tn: 0, fn: 0 };
}

export function addSums(a: EvalSums, b: EvalSums): EvalSums {
  return {
    lossSum: a.lossSum + b.lossSum,
    count: a.count + b.count,
    correct: a.correct + b.correct,
    tp: a.tp + b.tp,
    fp: a.fp + b.fp,
    tn: a.tn + b.tn,
    fn: a.fn + b.fn,
  };
}

/** Metrics named as in the job spec, plus `loss`; ratios with an empty denominator are 0. */
export function metricsFromSums(s: EvalSums, wanted: readonly string[]): Record<string, number> {
  const ratio = (n: number, d: number) => (d > 0 ? n / d : 0);
  const out: Record<string, number> = { loss: ratio(s.lossSum, s.count) };
  const precision = ratio(s.tp, s.tp + s.fp);
  const recall = ratio(s.tp, s.tp + s.fn);
  for (const m of wanted) {
    if (m === 'accuracy') out.accuracy = ratio(s.correct, s.count);
    else if (m === 'precision') out.precision = precision;
    else if (m === 'recall') out.recall = recall;
    else if (m === 'f1') out.f1 = ratio(2 * precision * recall, precision + recall);
  }
  return out;
}
