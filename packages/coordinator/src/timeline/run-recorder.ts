// What the coordinator records of a run besides its result: the Prometheus metrics, the Chrome
// trace (when asked for) and the history the report draws. It listens to the coordinator's own
// events, so the job loop only announces what happened and knows nothing of these outputs.
import type { EventEmitter } from 'node:events';
import {
  createCoordinatorMetrics,
  type CoordinatorMetrics,
  type Logger,
  type MessageObserver,
  type Report,
} from '@tfjs-ddp/common';
import type { EpochSummary } from '../summary.js';
import type { ProgressEvent } from '../progress.js';
import { TraceRecorder } from './trace.js';
import { RunHistoryRecorder, type RunHistory } from './history.js';

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
  log: Logger;
}

export class RunRecorder {
  readonly metrics: CoordinatorMetrics;
  private readonly trace?: TraceRecorder;
  private readonly history = new RunHistoryRecorder();
  private generations = 0;

  constructor(
    events: EventEmitter,
    private readonly options: RunRecorderOptions,
  ) {
    this.metrics = createCoordinatorMetrics({ job: options.job });
    if (options.trace) this.trace = new TraceRecorder({ job: options.job });
    events.on('generation', (g: { generation: number; worldSize: number; step: number }) => {
      this.metrics.generation({ ...g, restart: this.generations > 0 });
      this.history.generation(g);
      this.generations += 1;
    });
    events.on('aborted', () => this.metrics.stepAborted());
    events.on('progress', (p: ProgressEvent) => this.metrics.epoch(p.epoch + 1));
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
  }
}
