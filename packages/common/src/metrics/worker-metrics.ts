// A worker's Prometheus metrics (DESIGN §7): step time by phase, samples, data-plane bytes, dropped
// and stale messages, aborted steps, restarts, and gauges for loss, world size, generation, the last
// all-reduce's bus bandwidth and the tensors held. Every series carries `ddp_job`, `worker` (the
// stable worker id) and `rank` (its rank in the current generation, "-1" while it is not a member).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MessageObserver } from '../protocol/index.js';
import { busBandwidth } from './bandwidth.js';
import { countingMessageObserver, invalidMessagesCounter } from './message-metrics.js';
import { collectProcessMetrics } from './process-metrics.js';
import { STEP_PHASES, STEP_SECONDS_BUCKETS, type StepPhase } from './phases.js';

export interface WorkerMetricsOptions {
  job: string;
  workerId: string;
  /** How many tensors the process holds (tf.memory().numTensors), read at every scrape. */
  tensors?: () => number;
  /** Also export the process metrics (CPU, memory, event loop, GC); default true. */
  processMetrics?: boolean;
}

export interface StepObservation {
  /** Seconds spent in each phase; a phase not given was not measured for this step. */
  timings: Partial<Record<StepPhase, number>>;
  /** Samples this rank trained on. */
  samples: number;
  /** Sum of the per-sample losses of those samples. */
  lossSum: number;
  /** Bytes of the fp32 gradient buffer the step all-reduced. */
  gradientBytes: number;
  worldSize: number;
}

export interface WorkerMetrics {
  readonly registry: Registry;
  /** True once the worker has joined a generation as a member (what /readyz reports). */
  readonly ready: boolean;
  /** An observer counting into these metrics that passes every call on to `next` (e.g. the one that logs). */
  observer(next?: MessageObserver): MessageObserver;
  /** The worker joined generation `generation` as `rank` (-1: not a member). */
  joined(membership: { generation: number; rank: number; worldSize: number }): void;
  step(s: StepObservation): void;
  stepAborted(): void;
}

export function createWorkerMetrics(options: WorkerMetricsOptions): WorkerMetrics {
  const registry = new Registry();
  const labels = (rank: number) => ({ ddp_job: options.job, worker: options.workerId, rank: String(rank) });
  registry.setDefaultLabels(labels(-1));
  if (options.processMetrics ?? true) collectProcessMetrics(registry);
  const registers = [registry];

  const phaseSeconds = new Histogram({
    name: 'ddp_step_phase_seconds',
    help: 'Seconds a training step spent in each phase on this rank (wait: between its last report and the next step command)',
    labelNames: ['phase'],
    buckets: STEP_SECONDS_BUCKETS,
    registers,
  });
  for (const phase of STEP_PHASES) phaseSeconds.zero({ phase });
  const samples = new Counter({
    name: 'ddp_samples_total',
    help: 'Training samples this rank computed gradients on',
    registers,
  });
  const bytesSent = new Counter({
    name: 'ddp_bytes_sent_total',
    help: 'Payload bytes this rank published on the data plane (gradient and broadcast chunks)',
    registers,
  });
  const bytesReceived = new Counter({
    name: 'ddp_bytes_received_total',
    help: 'Payload bytes this rank received on the data plane',
    registers,
  });
  const stale = new Counter({
    name: 'ddp_stale_messages_total',
    help: 'Well-formed chunks of an operation that had already ended, discarded',
    registers,
  });
  const invalid = invalidMessagesCounter(registry);
  const aborted = new Counter({
    name: 'ddp_aborted_steps_total',
    help: 'Training steps that failed on this rank and were left unapplied',
    registers,
  });
  const restarts = new Counter({
    name: 'ddp_restarts_total',
    help: 'Generations this worker joined as a member after its first (membership changes it went through)',
    registers,
  });
  const loss = new Gauge({
    name: 'ddp_loss',
    help: "Mean training loss of this rank's samples in the last step",
    registers,
  });
  const worldSize = new Gauge({
    name: 'ddp_world_size',
    help: 'Ranks in the generation this worker belongs to',
    registers,
  });
  const generation = new Gauge({ name: 'ddp_generation', help: 'Membership generation this worker is in', registers });
  const busbw = new Gauge({
    name: 'ddp_allreduce_busbw_bytes_per_second',
    help: 'Bus bandwidth of the last gradient all-reduce: bytes / seconds * 2(N-1)/N',
    registers,
  });
  const tensors = options.tensors;
  new Gauge({
    name: 'ddp_tensors',
    help: 'Tensors this process holds (tf.memory().numTensors); a steady rise is a leak',
    registers,
    collect: tensors
      ? function (this: Gauge) {
          this.set(tensors());
        }
      : undefined,
  });

  let joinedAny = false;
  let member = false;
  return {
    registry,
    get ready() {
      return member;
    },
    observer: (next) => countingMessageObserver({ invalid, stale, bytesIn: bytesReceived, bytesOut: bytesSent }, next),
    joined(m) {
      member = m.rank >= 0;
      if (member && joinedAny) restarts.inc();
      joinedAny ||= member;
      registry.setDefaultLabels(labels(m.rank));
      generation.set(m.generation);
      worldSize.set(member ? m.worldSize : 0);
    },
    step(s) {
      for (const phase of STEP_PHASES) {
        const seconds = s.timings[phase];
        if (seconds !== undefined && Number.isFinite(seconds)) phaseSeconds.observe({ phase }, Math.max(0, seconds));
      }
      samples.inc(s.samples);
      if (s.samples > 0) loss.set(s.lossSum / s.samples);
      const allreduce = s.timings.allreduce;
      if (allreduce !== undefined && s.worldSize > 1) busbw.set(busBandwidth(s.gradientBytes, allreduce, s.worldSize));
    },
    stepAborted: () => aborted.inc(),
  };
}
