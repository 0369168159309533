// An evaluation pass over a held-out split: the split divided evenly over the members, each
// reporting sums (loss, correct, confusion counts) that add exactly across ranks, turned into the
// job's metrics, so the result does not depend on the world size.
import { isLanguageModelJob, splitEvenly, type EvalSums, type JobSpec, type Report } from '@tfjs-ddp/common';
import type { ControlPlane } from './control.js';
import type { Membership } from './membership.js';

export type { EvalSums };

/** Evaluates `split` (of `size` samples) on every member; a member lost meanwhile rejects with a StepFailedError. */
export async function evaluateSplit(
  o: { spec: JobSpec; control: ControlPlane; membership: Membership },
  split: 'validation' | 'test',
  size: number,
): Promise<Record<string, number>> {
  const { spec, control, membership } = o;
  const slices = splitEvenly(0, size, membership.members.length).map((sl) => [sl.start, sl.count] as [number, number]);
  const id = control.takeId();
  const done = control.collect(
    `${split} evaluation`,
    (r): r is Extract<Report, { type: 'evalDone' }> => r.type === 'evalDone' && r.id === id,
    spec.timeouts.stepMs * 4,
  );
  await control.broadcast({ type: 'eval', gen: membership.generation, id, split, slices });
  let sums: EvalSums = emptySums();
  for (const r of (await done).values()) sums = addSums(sums, r);
  const metrics = metricsFromSums(sums, spec.metrics);
  // A language model's loss is the mean per-token cross-entropy; its exponential is the perplexity.
  if (isLanguageModelJob(spec)) metrics.perplexity = Math.exp(metrics.loss);
  return metrics;
}

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
