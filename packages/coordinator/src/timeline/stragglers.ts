// Stragglers named automatically: from the compute phase every rank reports per step, a rank whose
// compute exceeds the median of the other ranks' by `factor` (and by at least `minSeconds`) for
// `steps` steps in a row is flagged; it is cleared at its first step that is not slow. Compute alone
// is compared because the other phases hide a straggler: every fast rank waits for the slow one in
// the all-reduce, so their step times are alike. A rank with no samples in a step computed nothing and
// takes no part in that step's comparison.
import type { JobSpec, Report } from '@tfjs-ddp/common';

type StepDone = Extract<Report, { type: 'stepDone' }>;

/** One spell of a worker flagged as a straggler, as summary.json and report.html show it. */
export interface StragglerSpell {
  workerId: string;
  /** Its rank when it was flagged. */
  rank: number;
  /** The first step of the run of slow steps that got it flagged, and the last slow step of the spell. */
  fromStep: number;
  toStep: number;
  /** Slow steps in a row in this spell. */
  steps: number;
  /** Its compute seconds and the other ranks' median, at the step of the spell where it lagged the most. */
  computeSeconds: number;
  othersMedianSeconds: number;
}

/** What one step changed: workers newly flagged, workers cleared, and every worker that took part. */
export interface StragglerChanges {
  flagged: StragglerSpell[];
  cleared: StragglerSpell[];
  workers: string[];
}

/** A worker's current run of slow steps; `flagged` once it lasted `steps` steps. */
interface Run extends StragglerSpell {
  flagged: boolean;
}

export class StragglerDetector {
  private readonly runs = new Map<string, Run>();
  private readonly all: Run[] = [];

  constructor(private readonly options: JobSpec['stragglers']) {}

  /** Records step `step`'s reports; returns who got flagged or cleared by it. */
  observe(step: number, reports: Iterable<StepDone>): StragglerChanges {
    const { factor, minSeconds, steps } = this.options;
    const working = [...reports].filter((r) => r.count > 0);
    const changes: StragglerChanges = { flagged: [], cleared: [], workers: [...reports].map((r) => r.workerId) };
    const slow = new Set<string>();
    if (working.length >= 2) {
      for (const r of working) {
        const compute = r.timings.compute;
        const median = medianOf(working.filter((o) => o !== r).map((o) => o.timings.compute));
        if (compute <= median * factor || compute - median < minSeconds) continue;
        slow.add(r.workerId);
        const run = this.runs.get(r.workerId) ?? {
          workerId: r.workerId,
          rank: r.rank,
          fromStep: step,
          toStep: step,
          steps: 0,
          computeSeconds: 0,
          othersMedianSeconds: 0,
          flagged: false,
        };
        run.steps += 1;
        run.toStep = step;
        if (compute - median > run.computeSeconds - run.othersMedianSeconds)
          Object.assign(run, { computeSeconds: compute, othersMedianSeconds: median });
        this.runs.set(r.workerId, run);
        if (!run.flagged && run.steps >= steps) {
          run.flagged = true;
          this.all.push(run);
          changes.flagged.push(spellOf(run));
        }
      }
    }
    for (const [workerId, run] of this.runs) {
      if (slow.has(workerId)) continue;
      this.runs.delete(workerId);
      if (run.flagged) changes.cleared.push(spellOf(run));
    }
    return changes;
  }

  /** Every spell so far, in the order the workers were flagged. */
  spells(): StragglerSpell[] {
    return this.all.map(spellOf);
  }
}

function spellOf(run: Run): StragglerSpell {
  const { workerId, rank, fromStep, toStep, steps, computeSeconds, othersMedianSeconds } = run;
  return { workerId, rank, fromStep, toStep, steps, computeSeconds, othersMedianSeconds };
}

/** The median of `values` (at least one). */
export function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
