// What the coordinator keeps of each step every rank reported: the loss, tensors held per rank (a
// leak shows as a count that grows between step 10 and the end), each worker's peak memory, and
// the steps whose update every rank skipped for NaN or Inf, which stop the job when too many come
// in a row.
import type { JobSpec, Report } from '@tfjs-ddp/common';
import { JobFailedError } from './errors.js';
import type { JobSummary, TrainingProgress } from './summary.js';

type StepDone = Extract<Report, { type: 'stepDone' }>;

export class StepStats {
  readonly tensorsHeld: JobSummary['tensorsHeld'] = { early: [], end: [] };
  readonly memory: JobSummary['memory'] = {};
  private nonFiniteInARow = 0;

  constructor(
    private readonly spec: JobSpec,
    private readonly progress: TrainingProgress,
    /** The newest checkpoint, named when non-finite steps stop the job. */
    private readonly lastCheckpoint: () => string | undefined,
  ) {}

  /**
   * Records step `globalStep`'s reports; returns the step's loss sum and whether it counts toward
   * the epoch's mean (a skipped step's loss is Inf or NaN: it stays out, so the mean says something).
   */
  record(globalStep: number, reports: Map<number, StepDone>): { lossSum: number; applied: boolean } {
    const held = [...reports.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r.tensors);
    if (globalStep <= 10) this.tensorsHeld.early = held;
    this.tensorsHeld.end = held;
    let lossSum = 0;
    for (const r of reports.values()) {
      lossSum += r.lossSum;
      if (!r.memory) continue;
      const peak = (this.memory[r.workerId] ??= { rssBytes: 0, tensorBytes: 0 });
      peak.rssBytes = Math.max(peak.rssBytes, r.memory.rssBytes);
      peak.tensorBytes = Math.max(peak.tensorBytes, r.memory.tensorBytes);
    }
    if (![...reports.values()].some((r) => r.nonFinite)) {
      this.nonFiniteInARow = 0;
      return { lossSum, applied: true };
    }
    this.progress.nonFiniteSteps += 1;
    this.nonFiniteInARow += 1;
    if (this.nonFiniteInARow > this.spec.faults.maxNonFiniteSteps) {
      const last = this.lastCheckpoint();
      throw new JobFailedError(
        `${this.nonFiniteInARow} steps in a row had NaN or Inf in the reduced gradient (the last at step ${globalStep}); ` +
          `every rank skipped those updates. Lower the learning rate or check the data` +
          (last ? `; the last good checkpoint is ${last}` : ''),
      );
    }
    return { lossSum, applied: false };
  }
}
