// What the coordinator records of a run besides its result: the Prometheus metrics, the Chrome
// trace (when asked for), the history the report draws and the stragglers it names. It listens to the coordinator's own
// events, so the job loop only announces what happened and knows nothing of these outputs.
import type { EventEmitter } from 'node:events';
import {
  createCoordinatorMetrics,
  type CoordinatorMetrics,
  type JobSpec,
  type Logger,
  type MessageObserver,
  type Report,
} from '@tfjs-ddp/common';
import type { EpochSummary } from '../summary.js';
import type { ProgressEvent } from '../progress.js';
import { TraceRecorder } from './trace.js';
import { RunHistoryRecorder, type RunHistory } from './history.js';
import { StragglerDetector, type StragglerSpell } from './stragglers.js';

/** The coordinator's 'step' event: a step every rank reported done. Times are epoch ms. */
export interface StepEvent {
  step: number;
  epoch: number;
  generation: number;
  commandAt: number;
  doneAt: number;
  reports: Iterable<Extract<Report, { type: 'stepDone' }>>;
}

export interface RunRecorderOptions {
  job: string;
  /** Where to write the Chrome trace; omitted: no trace is recorded. */
  trace?: string;
  /** When a rank counts as a straggler (the job spec's `stragglers`). */
  stragglers: JobSpec['stragglers'];
  log: Logger;
}

export class RunRecorder {
  readonly metrics: CoordinatorMetrics;
  private readonly trace?: TraceRecorder;
  private readonly history = new RunHistoryRecorder();
  private readonly stragglers: StragglerDetector;
  private readonly known = new Set<string>();
  private generations = 0;

  constructor(
    events: EventEmitter,
    private readonly options: RunRecorderOptions,
  ) {
    this.metrics = createCoordinatorMetrics({ job: options.job });
    this.stragglers = new StragglerDetector(options.stragglers);
    if (options.trace) this.trace = new TraceRecorder({ job: options.job });
    events.on('generation', (g: { generation: number; worldSize: number; step: number }) => {
      this.metrics.generation({ ...g, restart: this.generations > 0 });
      this.history.generation(g);
      this.generations += 1;
    });
    events.on('aborted', () => this.metrics.stepAborted());
    events.on('progress', (p: ProgressEvent) => {
      this.metrics.epoch(p.epoch + 1);
      this.metrics.eta(p.etaSec);
    });
    events.on('step', (s: StepEvent) => this.step(s));
    events.on('epoch', (e: EpochSummary) => {
      if (e.validation) this.metrics.validation(e.validation);
      this.history.epochEnd(e.epoch, e.seconds);
    });
  }

  /** The observer the coordinator reports dropped messages to: counted, then passed on to `next`. */
  observer(next?: MessageObserver): MessageObserver {
    return this.metrics.observer(next);
  }

  runHistory(): RunHistory {
    return this.history.history();
  }

  /** Every spell of a worker flagged as a straggler so far. */
  stragglerSpells(): StragglerSpell[] {
    return this.stragglers.spells();
  }

  /** Writes the trace, if one was asked for; a failure is logged, never thrown over the job's own outcome. */
  async writeTrace(): Promise<void> {
    if (!this.trace || !this.options.trace) return;
    try {
      await this.trace.write(this.options.trace);
      this.options.log.info('trace written', { path: this.options.trace });
    } catch (err) {
      this.options.log.error('could not write the trace', { path: this.options.trace, error: err as Error });
    }
  }

  private step(s: StepEvent): void {
    const reports = [...s.reports];
    let samples = 0;
    let lossSum = 0;
    for (const r of reports) {
      samples += r.count;
      lossSum += r.lossSum;
    }
    const loss = samples > 0 ? lossSum / samples : 0;
    this.metrics.step({ seconds: (s.doneAt - s.commandAt) / 1000, samples, loss });
    this.history.step(s.step, loss, reports);
    this.trace?.step(s, reports);
    this.flagStragglers(s, reports);
  }

  private flagStragglers(s: StepEvent, reports: Extract<Report, { type: 'stepDone' }>[]): void {
    const { log, stragglers } = this.options;
    const changes = this.stragglers.observe(s.step, reports);
    for (const id of changes.workers) {
      if (this.known.has(id)) continue;
      this.known.add(id);
      this.metrics.straggler(id, false);
    }
    const ms = (sec: number) => `${(sec * 1000).toFixed(1)} ms`;
    for (const spell of changes.flagged) {
      this.metrics.straggler(spell.workerId, true);
      this.trace?.stragglerMark('flagged', spell, s.doneAt);
      log.warn(
        `straggler: worker ${spell.workerId} (rank ${spell.rank}) computed more than ${stragglers.factor}× the other ranks' median ` +
          `for ${spell.steps} steps in a row (steps ${spell.fromStep}-${spell.toStep}; ` +
          `${ms(spell.computeSeconds)} against ${ms(spell.othersMedianSeconds)}); the others wait for it in every all-reduce`,
        { worker: spell.workerId, rank: spell.rank, fromStep: spell.fromStep },
      );
    }
    for (const spell of changes.cleared) {
      this.metrics.straggler(spell.workerId, false);
      this.trace?.stragglerMark('cleared', spell, s.doneAt);
      log.info(`straggler cleared: worker ${spell.workerId} kept up at step ${s.step}`, {
        worker: spell.workerId,
        slowSteps: spell.steps,
      });
    }
  }
}
