// The series summary.json keeps for the run report, recorded while the job trains: the per-step
// loss (averaged into a bounded number of points, however long the run), samples/s of every
// worker per epoch, the mean step-time breakdown per epoch, and the world size over time.
import { STEP_PHASES, type Report, type StepPhase } from '@tfjs-ddp/common';

type StepDone = Extract<Report, { type: 'stepDone' }>;

export interface RunHistory {
  /** The epoch (counted from 1, as in the summary) each entry of `workerSamplesPerSec[].perEpoch` and `phaseMeans` belongs to. */
  epochs: number[];
  /** Mean training loss of consecutive steps, at most `maxPoints` points; `step` is the bucket's mean step. */
  stepLoss: { step: number; loss: number }[];
  /** Per worker: training samples it computed per second of each epoch (null: not a member that epoch). */
  workerSamplesPerSec: { workerId: string; perEpoch: (number | null)[] }[];
  /** Per epoch: mean seconds a rank spent in each phase of a step. */
  phaseMeans: Record<StepPhase, number>[];
  /** The world size from each generation on: at which global step and how many seconds into the job. */
  worldSize: { generation: number; worldSize: number; step: number; seconds: number }[];
}

interface Bucket {
  stepSum: number;
  lossSum: number;
  n: number;
}

export class RunHistoryRecorder {
  private readonly buckets: Bucket[] = [];
  private perBucket = 1;
  private readonly workers = new Map<string, (number | null)[]>();
  private readonly phaseMeans: Record<StepPhase, number>[] = [];
  private readonly epochNumbers: number[] = [];
  private readonly worldSize: RunHistory['worldSize'] = [];
  private epochSamples = new Map<string, number>();
  private epochPhases = zeroPhases();
  private epochReports = 0;
  private epochs = 0;

  constructor(
    private readonly started = performance.now(),
    private readonly maxPoints = 500,
  ) {}

  generation(g: { generation: number; worldSize: number; step: number }): void {
    this.worldSize.push({ ...g, seconds: (performance.now() - this.started) / 1000 });
  }

  /** A step completed: its mean loss over all ranks and every rank's report. */
  step(step: number, loss: number, reports: Iterable<StepDone>): void {
    this.addLoss(step, loss);
    for (const r of reports) {
      this.epochSamples.set(r.workerId, (this.epochSamples.get(r.workerId) ?? 0) + r.count);
      for (const p of STEP_PHASES) this.epochPhases[p] += r.timings[p];
      this.epochReports += 1;
    }
  }

  /** Closes epoch `epoch` (0-based), which took `seconds` of wall-clock time. */
  epochEnd(epoch: number, seconds: number): void {
    this.epochNumbers.push(epoch);
    for (const [id, n] of this.epochSamples) {
      if (!this.workers.has(id)) this.workers.set(id, new Array<number | null>(this.epochs).fill(null));
      this.workers.get(id)!.push(seconds > 0 ? n / seconds : 0);
    }
    this.epochs += 1;
    for (const series of this.workers.values()) while (series.length < this.epochs) series.push(null);
    const means = zeroPhases();
    for (const p of STEP_PHASES) means[p] = this.epochReports > 0 ? this.epochPhases[p] / this.epochReports : 0;
    this.phaseMeans.push(means);
    this.epochSamples = new Map();
    this.epochPhases = zeroPhases();
    this.epochReports = 0;
  }

  history(): RunHistory {
    return {
      epochs: [...this.epochNumbers],
      stepLoss: this.buckets.map((b) => ({ step: b.stepSum / b.n, loss: b.lossSum / b.n })),
      workerSamplesPerSec: [...this.workers]
        .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
        .map(([workerId, perEpoch]) => ({ workerId, perEpoch: [...perEpoch] })),
      phaseMeans: this.phaseMeans.map((m) => ({ ...m })),
      worldSize: this.worldSize.map((w) => ({ ...w })),
    };
  }

  /** Buckets double in size whenever there are too many, so memory stays bounded and points evenly spaced. */
  private addLoss(step: number, loss: number): void {
    const last = this.buckets[this.buckets.length - 1];
    if (last && last.n < this.perBucket) {
      last.stepSum += step;
      last.lossSum += loss;
      last.n += 1;
    } else this.buckets.push({ stepSum: step, lossSum: loss, n: 1 });
    if (this.buckets.length <= this.maxPoints) return;
    const merged: Bucket[] = [];
    for (let i = 0; i < this.buckets.length; i += 2) {
      const a = this.buckets[i];
      const b = this.buckets[i + 1];
      merged.push(b ? { stepSum: a.stepSum + b.stepSum, lossSum: a.lossSum + b.lossSum, n: a.n + b.n } : a);
    }
    this.buckets.splice(0, this.buckets.length, ...merged);
    this.perBucket *= 2;
  }
}

function zeroPhases(): Record<StepPhase, number> {
  return Object.fromEntries(STEP_PHASES.map((p) => [p, 0])) as Record<StepPhase, number>;
}
