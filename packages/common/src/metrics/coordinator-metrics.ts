// The coordinator's Prometheus metrics: the job as a whole (steps, samples, loss, epoch, world size,
// generation, validation metrics, step time as the coordinator sees it, the estimated time left,
// the workers flagged as stragglers) and the control messages it dropped. Every series carries `ddp_job`.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MessageObserver } from '../protocol/index.js';
import { countingMessageObserver, invalidMessagesCounter } from './message-metrics.js';
import { collectProcessMetrics } from './process-metrics.js';
import { STEP_SECONDS_BUCKETS } from './phases.js';

export interface CoordinatorMetricsOptions {
  job: string;
  /** Also export the process metrics (CPU, memory, event loop, GC); default true. */
  processMetrics?: boolean;
}

export interface CoordinatorMetrics {
  readonly registry: Registry;
  /** An observer counting dropped messages that passes every call on to `next`. */
  observer(next?: MessageObserver): MessageObserver;
  /** A generation formed; `restart` when it replaced an earlier one. */
  generation(g: { generation: number; worldSize: number; restart: boolean }): void;
  /** An epoch (counting from 1, as the progress line does) started. */
  epoch(epoch: number): void;
  /** A step completed on every rank: seconds from its command to the last report, its samples and mean loss. */
  step(s: { seconds: number; samples: number; loss: number }): void;
  stepAborted(): void;
  /** The estimated seconds left to the end of the job, as the progress line and /status show it. */
  eta(seconds: number): void;
  /** Whether worker `workerId` is flagged as a straggler now (0 once it took part in a step unflagged). */
  straggler(workerId: string, flagged: boolean): void;
  validation(metrics: Record<string, number>): void;
}

export function createCoordinatorMetrics(options: CoordinatorMetricsOptions): CoordinatorMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ ddp_job: options.job });
  if (options.processMetrics ?? true) collectProcessMetrics(registry);
  const registers = [registry];

  const steps = new Counter({ name: 'ddp_job_steps_total', help: 'Training steps completed on every rank', registers });
  const samples = new Counter({
    name: 'ddp_job_samples_total',
    help: 'Training samples of completed steps',
    registers,
  });
  const aborted = new Counter({
    name: 'ddp_job_aborted_steps_total',
    help: 'Training steps aborted on all ranks (a rank failed or missed the deadline)',
    registers,
  });
  const restarts = new Counter({
    name: 'ddp_job_restarts_total',
    help: 'Generations formed after the first (the job went on with a new membership)',
    registers,
  });
  const loss = new Gauge({
    name: 'ddp_job_loss',
    help: 'Mean training loss over all ranks of the last step',
    registers,
  });
  const epoch = new Gauge({ name: 'ddp_job_epoch', help: 'Epoch in training, counting from 1', registers });
  const worldSize = new Gauge({ name: 'ddp_job_world_size', help: 'Ranks in the current generation', registers });
  const generation = new Gauge({ name: 'ddp_job_generation', help: 'Current membership generation', registers });
  const validation = new Gauge({
    name: 'ddp_job_validation',
    help: 'Validation metrics after the last epoch (metric: loss, accuracy, precision, recall, f1)',
    labelNames: ['metric'],
    registers,
  });
  const stepSeconds = new Histogram({
    name: 'ddp_job_step_seconds',
    help: 'Seconds from a step command to the last rank reporting the step done',
    buckets: STEP_SECONDS_BUCKETS,
    registers,
  });
  const eta = new Gauge({
    name: 'ddp_job_eta_seconds',
    help: 'Estimated seconds left to the end of training, from the recent samples/s',
    registers,
  });
  // NaN, not 0, until the first rate is known: an estimate of 0 would read as "done".
  eta.set(NaN);
  const straggler = new Gauge({
    name: 'ddp_straggler',
    help: "1 while the worker is flagged as a straggler (its compute phase beyond the other ranks' median for stragglers.steps steps in a row), else 0",
    labelNames: ['worker'],
    registers,
  });
  const invalid = invalidMessagesCounter(registry);

  return {
    registry,
    observer: (next) => countingMessageObserver({ invalid }, next),
    generation(g) {
      if (g.restart) restarts.inc();
      generation.set(g.generation);
      worldSize.set(g.worldSize);
    },
    epoch: (n) => epoch.set(n),
    step(s) {
      steps.inc();
      samples.inc(s.samples);
      loss.set(s.loss);
      stepSeconds.observe(Math.max(0, s.seconds));
    },
    stepAborted: () => aborted.inc(),
    eta: (seconds) => eta.set(Number.isFinite(seconds) ? Math.max(0, seconds) : NaN),
    straggler: (workerId, flagged) => straggler.set({ worker: workerId }, flagged ? 1 : 0),
    validation(m) {
      for (const [metric, value] of Object.entries(m)) validation.set({ metric }, value);
    },
  };
}
