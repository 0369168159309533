// A worker process: one replica of the model. It loads the job's data, builds the model, registers
// with the coordinator and handles its commands until the stop: generations (collective and state
// sync), training steps (gradients of its slice -> all-reduce -> apply), evaluation of its slice,
// checkpoints and the trained model. The parts: membership.ts, dispatch.ts, training-step.ts,
// replica.ts, evaluation.ts, rank0-files.ts and heartbeats.ts (sent from a thread of their own).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import {
  connectNats,
  connectServerPool,
  createCountingObserver,
  createLogger,
  createModel,
  createWorkerMetrics,
  datasetTokenizer,
  GradientStep,
  jobSubjects,
  selectBackend,
  startMetricsServer,
  type JobSpec,
  type Logger,
  type MessageObserver,
  type MetricsServer,
  type NatsOptions,
  type NatsServerPool,
  type WorkerMetrics,
} from '@tfjs-ddp/common';
import { BatchBuffers } from './batch.js';
import { Dispatcher } from './dispatch.js';
import { Heartbeats } from './heartbeats.js';
import { loadJobData, datasetSizes } from './job-data.js';
import { WorkerMembership } from './membership.js';
import { Rank0Files } from './rank0-files.js';
import { Replica } from './replica.js';
import { TrainingStep } from './training-step.js';

export interface WorkerOptions {
  spec: JobSpec;
  specHash: string;
  nats: NatsOptions;
  backend: string;
  /** Stable identity across restarts (e.g. the pod name); random when omitted. */
  workerId?: string;
  log?: Logger;
  observer?: MessageObserver;
  /** Period of the heartbeats (sent from their own thread); default a quarter of faults.heartbeatTimeoutMs, at most 1 s. */
  heartbeatMs?: number;
  /** HOST:PORT for /metrics, /healthz and /readyz (port 0 picks a free one); omitted: no HTTP server. */
  metricsAddr?: string;
  /** Metrics to record into (a test reads them in process); default: a registry of this worker's own. */
  metrics?: WorkerMetrics;
}

export interface WorkerResult {
  /** The coordinator's reason for stopping. */
  reason: string;
  failed: boolean;
}

export async function runWorker(opts: WorkerOptions): Promise<WorkerResult> {
  const spec = opts.spec;
  const workerId = opts.workerId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const log = opts.log ?? createLogger(`worker ${workerId}`);
  const backend = await selectBackend(opts.backend, log);
  const tf = backend.tf;
  const natsOptions = { name: `tfjs-ddp-worker-${workerId}`, ...opts.nats };
  const nc = await connectNats(natsOptions);
  const metrics =
    opts.metrics ?? createWorkerMetrics({ job: spec.name, workerId, tensors: () => tf.memory().numTensors });
  let metricsServer: MetricsServer | undefined;
  let servers: NatsServerPool | undefined;
  try {
    // The all-reduce's connections, one to each listed server (just `nc` when one is listed).
    servers = await connectServerPool(natsOptions, nc);
    if (opts.metricsAddr) {
      metricsServer = await startMetricsServer(opts.metricsAddr, {
        registry: metrics.registry,
        ready: () => metrics.ready,
      });
      log.info('metrics endpoint', { url: metricsServer.url });
    }
    const data = await loadJobData(spec, nc);
    log.info('data loaded', datasetSizes(data));
    const built = await createModel(spec.model, tf, {
      seed: spec.seed,
      loss: spec.loss,
      metrics: spec.metrics.length > 0 ? spec.metrics : undefined,
      inputShape: data.train.featureShape,
      tokenizer: datasetTokenizer(data.train),
    });
    const step = new GradientStep(built.model, built.loss);
    log.info(built.description ?? 'model built', { parameters: step.size, loss: built.lossName });
    const subjects = jobSubjects(spec.name);
    // Drops are counted, and logged at most every few seconds per reason: garbage must not flood the log.
    const observer = metrics.observer(opts.observer ?? createCountingObserver({ log: log.child('collective') }));
    const stopped = new AbortController();
    const membership = new WorkerMembership({
      nc,
      servers,
      spec,
      subjects,
      workerId,
      log,
      observer,
      metrics,
      registration: {
        job: spec.name,
        workerId,
        specHash: opts.specHash,
        backend: backend.name,
        sizes: datasetSizes(data),
      },
      stopped: stopped.signal,
    });
    const replica = new Replica(step, spec, (name, kind, detail) => {
      if (kind === 'expired') log.warn('dropped a partial checkpoint load', { name, reason: detail });
      else observer.invalid(kind, `load chunk of ${name}: ${detail}`, subjects.control);
    });
    // One set of host batch buffers for training, evaluation and predictions: they run one at a time.
    const batches = new BatchBuffers(tf);
    const parts = { nc, tf, spec, workerId, built, data, replica, batches, log, metrics };
    const dispatcher = new Dispatcher({
      ...parts,
      subjects,
      observer,
      membership,
      training: new TrainingStep(parts),
      files: new Rank0Files({ ...parts, subject: subjects.report }),
      evaluation: parts,
      stopped,
    });
    const sub = nc.subscribe(subjects.control, { callback: (_e, m) => dispatcher.receive(m) });
    await nc.flush();
    await membership.register();
    // Several beats per timeout, so one late beat (a loaded machine, a slow network) is not a loss.
    const heartbeats = await Heartbeats.start({
      nats: natsOptions,
      subject: subjects.heartbeat,
      job: spec.name,
      workerId,
      everyMs: opts.heartbeatMs ?? Math.min(1_000, Math.floor(spec.faults.heartbeatTimeoutMs / 4)),
      log,
      state: () => ({ gen: membership.gen, rank: membership.rank, tensors: tf.memory().numTensors }),
    });
    void dispatcher.watchConnection();
    try {
      const running = dispatcher.run();
      // A failed heartbeat thread ends the worker; the command loop then ends with the queue closed below.
      running.catch(() => {});
      return await Promise.race([running, heartbeats.failed]);
    } finally {
      await heartbeats.stop();
      sub.unsubscribe();
      dispatcher.close();
      await membership.close();
      replica.dispose();
      built.model.dispose();
    }
  } finally {
    await metricsServer?.close();
    await servers?.close();
    await nc.drain().catch(() => nc.close());
  }
}
