// What a job hands back and leaves in its output directory (summary.json): the result types, the
// progress a checkpoint carries so a resumed job reports the whole run, and writing the file.
import { join } from 'node:path';
import { writeFileAtomic } from '@tfjs-ddp/common';
import type { CommittedRange } from './committed-ranges.js';
import type { RunHistory } from './timeline/history.js';
import type { StragglerSpell } from './timeline/stragglers.js';

export interface EpochSummary {
  /** Counted from 1, as in the log and the report. */
  epoch: number;
  trainLoss: number;
  samples: number;
  seconds: number;
  samplesPerSec: number;
  validation?: Record<string, number>;
}

export interface JobSummary {
  job: string;
  specHash: string;
  status: 'completed' | 'stopped-early';
  /**
   * With earlyStopping.restoreBestWeights, after an early stop: whether the model holds the best
   * epoch's weights (false: every worker that held them was lost, and the last weights stayed).
   */
  bestWeightsRestored?: boolean;
  backends: Record<string, string>;
  worldSize: number;
  generation: number;
  epochs: EpochSummary[];
  /** With earlyStopping: the epoch with the best monitored value, counted from 1 like `epochs[].epoch`. */
  bestEpoch?: number;
  test?: Record<string, number>;
  steps: number;
  samplesPerSec: number;
  wallSeconds: number;
  output: string;
  files: string[];
  predictions: number[][];
  /** tf.memory().numTensors per rank after step 10 and after the last step: equal when nothing leaks. */
  tensorsHeld: { early: number[]; end: number[] };
  /** The largest resident memory and tensor bytes each worker reported after a step, by worker id. */
  memory: Record<string, { rssBytes: number; tensorBytes: number }>;
  /** Validation before the first step (evaluateAtStart, language models by default): where the curve starts. */
  startValidation?: Record<string, number>;
  /** Steps aborted and redone (a lost worker, a NATS reconnect, a timeout). */
  abortedSteps: number;
  /** Steps whose update every rank skipped for NaN/Inf in the reduced gradient. */
  nonFiniteSteps: number;
  /** Every membership generation: when it started, its members in rank order, whose state it took. */
  generations: GenerationRecord[];
  /** The data-plan ranges whose updates were applied, in order: [epoch, start, count], contiguous ones merged. */
  committed: CommittedRange[];
  /** The step a restarted coordinator resumed at, from a checkpoint. */
  resumedAtStep?: number;
  checkpoints: string[];
  /** The series report.html draws: per-step loss, samples/s per worker, phase means, world size. */
  history: RunHistory;
  /** Every spell of a worker flagged as a straggler (the job spec's `stragglers` says when), in order. */
  stragglers: StragglerSpell[];
  /** A regression on one feature: test points [x, y, prediction] for the report's fitted line. */
  fit?: [number, number, number][];
}

export interface GenerationRecord {
  generation: number;
  step: number;
  members: string[];
  /** Rank whose state every member took (the one that had applied the most steps). */
  root: number;
  /** Parameter hash of every member right after it took the state, in rank order. */
  hashes: string[];
  reason: string;
}

/** What a checkpoint carries of the run so far, so a resumed job's summary covers all of it. */
export interface TrainingProgress {
  epochs: EpochSummary[];
  committed: CommittedRange[];
  nonFiniteSteps: number;
  checkpoints: string[];
  stoppedEarly: boolean;
}

export function emptyProgress(): TrainingProgress {
  return { epochs: [], committed: [], nonFiniteSteps: 0, checkpoints: [], stoppedEarly: false };
}

/** Writes summary.json into the job's output directory, atomically; returns its path. */
export async function writeSummary(summary: JobSummary): Promise<string> {
  const path = join(summary.output, 'summary.json');
  await writeFileAtomic(path, JSON.stringify(summary, null, 2) + '\n');
  return path;
}
