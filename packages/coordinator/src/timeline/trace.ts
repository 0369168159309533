// The job's timeline as a Chrome trace (chrome://tracing, ui.perfetto.dev): one process per rank
// ("rank N", pid N) whose lane shows every step with its phases nested under it (wait, data,
// compute, readback, allreduce, apply), laid out from the start time and durations each worker
// reports, plus a "coordinator" process with one slice per step from command to last report.
// A step's slowest rank gets its compute slice coloured and flagged, so stragglers show at once; a
// worker the straggler detector flags (slow for several steps in a row) gets an instant mark on its
// lane, "straggler flagged", and another, "straggler cleared", when it caught up.
// Worker clocks are used as they are: across machines the lanes are as aligned as the clocks (NTP).
import { STEP_PHASES, writeFileAtomic, type Report, type StepPhase } from '@tfjs-ddp/common';
import { medianOf, type StragglerSpell } from './stragglers.js';

type StepDone = Extract<Report, { type: 'stepDone' }>;

/** One Chrome trace event: complete ('X') with ts/dur in microseconds, instant ('i', scope `s`), or metadata ('M'). */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'M' | 'i';
  s?: 't' | 'p' | 'g';
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  cat?: string;
  cname?: string;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, unknown>;
}

export interface TraceRecorderOptions {
  job: string;
  /** Epoch ms that is ts 0; default: when the recorder was created. */
  origin?: number;
  /** Events kept at most (memory bound for very long jobs); later steps are counted, not kept. */
  maxEvents?: number;
  /** A rank is a straggler when its data+compute+readback time exceeds the other ranks' median by this factor... */
  stragglerFactor?: number;
  /** ...and by at least this many seconds (so sub-millisecond jitter is not flagged). */
  minStragglerSeconds?: number;
}

/** The coordinator's own lane: above any rank (viewers drop negative pids), sorted first. */
export const COORDINATOR_PID = 1_000_000;

/** Chrome's reserved colour names, one per phase, so the same phase reads the same everywhere. */
const PHASE_COLOURS: Record<StepPhase, string> = {
  wait: 'grey',
  data: 'thread_state_iowait',
  compute: 'thread_state_running',
  readback: 'thread_state_runnable',
  allreduce: 'rail_load',
  apply: 'good',
};

export class TraceRecorder {
  private readonly events: TraceEvent[] = [];
  private readonly ranks = new Set<number>();
  private readonly origin: number;
  private readonly maxEvents: number;
  private readonly stragglerFactor: number;
  private readonly minStragglerSeconds: number;
  private droppedSteps = 0;

  constructor(private readonly options: TraceRecorderOptions) {
    this.origin = options.origin ?? performance.timeOrigin + performance.now();
    this.maxEvents = options.maxEvents ?? 500_000;
    this.stragglerFactor = options.stragglerFactor ?? 1.5;
    this.minStragglerSeconds = options.minStragglerSeconds ?? 0.001;
  }

  /**
   * Records one completed step: every rank's report, and when the coordinator sent the command and
   * received the last report (epoch ms).
   */
  step(
    s: { step: number; epoch: number; generation: number; commandAt: number; doneAt: number },
    reports: Iterable<StepDone>,
  ): void {
    const all = [...reports].filter((r) => r.startedAt !== undefined);
    if (this.events.length + (all.length * (STEP_PHASES.length + 1) + 1) > this.maxEvents) {
      this.droppedSteps += 1;
      return;
    }
    const busy = (r: StepDone) => r.timings.data + r.timings.compute + r.timings.readback;
    const straggler = this.straggler(all, busy);
    const common = { step: s.step, epoch: s.epoch, generation: s.generation };

    const commandAt = this.us(s.commandAt);
    this.events.push({
      name: `step ${s.step}`,
      ph: 'X',
      cat: 'step',
      ts: commandAt,
      dur: Math.max(0, this.us(s.doneAt) - commandAt),
      pid: COORDINATOR_PID,
      tid: 0,
      args: { ...common, ranks: all.length, ...(straggler ? { straggler: straggler.rank } : {}) },
    });
    for (const r of all) {
      this.ranks.add(r.rank);
      // Boundaries in whole microseconds, so the phases nest exactly inside their step.
      const bounds = [(r.startedAt as number) - r.timings.wait * 1000];
      for (const phase of STEP_PHASES) bounds.push(bounds[bounds.length - 1] + r.timings[phase] * 1000);
      const ts = bounds.map((b) => this.us(b));
      const isStraggler = r === straggler?.report;
      this.events.push({
        name: `step ${s.step}`,
        ph: 'X',
        cat: 'step',
        ts: ts[0],
        dur: ts[ts.length - 1] - ts[0],
        pid: r.rank,
        tid: 0,
        args: { ...common, worker: r.workerId, samples: r.count, ...(isStraggler ? { straggler: true } : {}) },
      });
      STEP_PHASES.forEach((phase, i) => {
        const slow = isStraggler && phase === 'compute';
        this.events.push({
          name: phase,
          ph: 'X',
          cat: 'phase',
          ts: ts[i],
          dur: ts[i + 1] - ts[i],
          pid: r.rank,
          tid: 0,
          cname: slow ? 'terrible' : PHASE_COLOURS[phase],
          args: { ...common, ...(slow ? { straggler: true, othersMedianSeconds: straggler.othersMedian } : {}) },
        });
      });
    }
  }

  /**
   * Marks worker `spell.workerId` on its rank's lane at `atMs` (epoch ms): flagged as a straggler by
   * the detector, or cleared.
   */
  stragglerMark(what: 'flagged' | 'cleared', spell: StragglerSpell, atMs: number): void {
    if (this.events.length >= this.maxEvents) return;
    this.ranks.add(spell.rank);
    this.events.push({
      name: `straggler ${what}`,
      ph: 'i',
      s: 'p',
      cat: 'straggler',
      ts: this.us(atMs),
      pid: spell.rank,
      tid: 0,
      cname: what === 'flagged' ? 'terrible' : 'good',
      args: { ...spell },
    });
  }

  /** The trace so far, with the metadata that names and orders the lanes. */
  trace(): ChromeTrace {
    const meta: TraceEvent[] = [
      { name: 'process_name', ph: 'M', ts: 0, pid: COORDINATOR_PID, tid: 0, args: { name: 'coordinator' } },
      { name: 'process_sort_index', ph: 'M', ts: 0, pid: COORDINATOR_PID, tid: 0, args: { sort_index: -1 } },
    ];
    for (const rank of [...this.ranks].sort((a, b) => a - b)) {
      meta.push(
        { name: 'process_name', ph: 'M', ts: 0, pid: rank, tid: 0, args: { name: `rank ${rank}` } },
        { name: 'process_sort_index', ph: 'M', ts: 0, pid: rank, tid: 0, args: { sort_index: rank } },
        { name: 'thread_name', ph: 'M', ts: 0, pid: rank, tid: 0, args: { name: 'steps' } },
      );
    }
    return {
      traceEvents: [...meta, ...this.events],
      displayTimeUnit: 'ms',
      otherData: {
        job: this.options.job,
        origin: new Date(this.origin).toISOString(),
        ...(this.droppedSteps > 0 ? { stepsNotRecorded: this.droppedSteps, maxEvents: this.maxEvents } : {}),
      },
    };
  }

  /** Writes the trace to `path` atomically (a reader never sees half a file). */
  async write(path: string): Promise<void> {
    await writeFileAtomic(path, JSON.stringify(this.trace()));
  }

  /** The rank whose data+compute+readback took longest, when it is well beyond the others' median. */
  private straggler(
    reports: StepDone[],
    busy: (r: StepDone) => number,
  ): { report: StepDone; rank: number; othersMedian: number } | undefined {
    if (reports.length < 2) return undefined;
    const sorted = [...reports].sort((a, b) => busy(a) - busy(b));
    const slowest = sorted[sorted.length - 1];
    const othersMedian = medianOf(sorted.slice(0, -1).map(busy));
    const late = busy(slowest) - othersMedian;
    if (busy(slowest) <= othersMedian * this.stragglerFactor || late < this.minStragglerSeconds) return undefined;
    return { report: slowest, rank: slowest.rank, othersMedian };
  }

  private us(epochMs: number): number {
    return Math.round((epochMs - this.origin) * 1000);
  }
}
