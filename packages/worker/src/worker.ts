// A worker process: one replica of the model. It joins the job, then executes the coordinator's
// commands one at a time: form a generation (collective + weights from rank 0), train steps
// (gradients of its slice → all-reduce → apply), evaluate its slice, ship the model, stop.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Msg } from '@nats-io/transport-node';
import {
  commandSchema,
  connectNats,
  createLogger,
  createModel,
  createNatsCollective,
  createCommHook,
  type CommHook,
  type ResidualPolicy,
  datasetTokenizer,
  splitEvenly,
  createCountingObserver,
  createWorkerMetrics,
  featureSize,
  labelSize,
  startMetricsServer,
  type MetricsServer,
  type WorkerMetrics,
  ChunkAssembler,
  createOptimizer,
  setOptimizerState,
  type ScheduledOptimizer,
  decodeMessage,
  encodeMessage,
  heartbeatSchema,
  jobSubjects,
  maxPayload,
  parameterHash,
  reportSchema,
  selectBackend,
  setLearningRate,
  sliceIndices,
  GradientStep,
  type Collective,
  type Command,
  type JobSpec,
  type Logger,
  type MessageObserver,
  type NatsConnection,
  type NatsOptions,
  type Report,
  type BuiltModel,
  type Tf,
} from '@tfjs-ddp/common';
import type { Optimizer } from '@tensorflow/tfjs';
import { BatchBuffers, range } from './batch.js';
import { CommandQueue } from './command-queue.js';
import { evaluateSlice, yieldToEventLoop } from './evaluation.js';
import { loadJobData, datasetSizes, type JobData } from './job-data.js';
import { register, RegistrationRefusedError, type RegistrationRequest } from './registration.js';
import { shipFiles, shipModel } from './artifacts.js';
import { asFloats, decodeState, encodeState } from './state.js';

export interface WorkerOptions {
  spec: JobSpec;
  specHash: string;
  nats: NatsOptions;
  backend: string;
  /** Stable identity across restarts (e.g. the pod name); random when omitted. */
  workerId?: string;
  log?: Logger;
  observer?: MessageObserver;
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

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export async function runWorker(opts: WorkerOptions): Promise<WorkerResult> {
  const spec = opts.spec;
  const workerId = opts.workerId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const log = opts.log ?? createLogger(`worker ${workerId}`);
  const backend = await selectBackend(opts.backend, log);
  const tf = backend.tf;
  const nc = await connectNats({ name: `tfjs-ddp-worker-${workerId}`, ...opts.nats });
  const metrics =
    opts.metrics ?? createWorkerMetrics({ job: spec.name, workerId, tensors: () => tf.memory().numTensors });
  let metricsServer: MetricsServer | undefined;
  try {
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
    const runtime = new WorkerRuntime({
      nc,
      tf,
      spec,
      workerId,
      log,
      step,
      data,
      built,
      observer: metrics.observer(opts.observer ?? createCountingObserver({ log: log.child('collective') })),
      metrics,
      registration: {
        job: spec.name,
        workerId,
        specHash: opts.specHash,
        backend: backend.name,
        sizes: datasetSizes(data),
      },
    });
    const sub = nc.subscribe(subjects.control, { callback: (_e, m) => runtime.receive(m) });
    await nc.flush();
    await runtime.register();
    const beat = setInterval(() => runtime.heartbeat(), opts.heartbeatMs ?? 1_000);
    void runtime.watchConnection();
    try {
      return await runtime.run();
    } finally {
      clearInterval(beat);
      sub.unsubscribe();
      await runtime.close();
      built.model.dispose();
    }
  } finally {
    await metricsServer?.close();
    await nc.drain().catch(() => nc.close());
  }
}

interface RuntimeParts {
  nc: NatsConnection;
  tf: Tf;
  spec: JobSpec;
  workerId: string;
  log: Logger;
  step: GradientStep;
  data: JobData;
  built: BuiltModel;
  observer: MessageObserver;
  metrics: WorkerMetrics;
  registration: RegistrationRequest;
}

class WorkerRuntime {
  private readonly queue = new CommandQueue<Command>();
  /** Aborted by the coordinator's stop: a registration still retrying gives up, the stop is next. */
  private readonly stopped = new AbortController();
  private readonly subjects;
  private readonly grad: Float32Array;
  private readonly weights: Float32Array;
  private best?: Float32Array;
  private readonly batches;
  /** Reduces each step's gradient (the job's allreduce.compression); its state travels with the replica's. */
  private readonly hook: CommHook;
  private collective?: Collective;
  private gen = 0;
  private rank = -1;

  private readonly nc: NatsConnection;
  private readonly tf: Tf;
  private readonly spec: JobSpec;
  private readonly workerId: string;
  private readonly log: Logger;
  private readonly step: GradientStep;
  private scheduled: ScheduledOptimizer;
  private readonly data: JobData;
  private readonly built: BuiltModel;
  private readonly observer: MessageObserver;
  private readonly registration: RegistrationRequest;
  /** The coordinator process this worker registered with. */
  private instance = '';
  /** That coordinator's generation when it accepted this worker: every later one must include it. */
  private registeredAt = 0;
  /** Global step of the last update this replica applied; -1 before the first. */
  private appliedStep = -1;
  private readonly loading = new ChunkAssembler();
  private readonly metrics: WorkerMetrics;
  /** When this rank reported its last step (performance.now()); unset after any other command. */
  private lastStepReport?: number;

  constructor(parts: RuntimeParts) {
    ({ nc: this.nc, tf: this.tf, spec: this.spec, workerId: this.workerId, log: this.log, step: this.step } = parts);
    ({ data: this.data, built: this.built, registration: this.registration } = parts);
    // Drops are counted, and logged at most every few seconds per reason: garbage must not flood the log.
    this.observer = parts.observer;
    this.metrics = parts.metrics;
    this.scheduled = createOptimizer(this.spec.optimizer);
    this.subjects = jobSubjects(this.spec.name);
    this.grad = new Float32Array(this.step.size);
    this.weights = new Float32Array(this.step.size);
    this.batches = new BatchBuffers(this.tf);
    this.hook = createCommHook(
      this.spec.allreduce.compression,
      this.step.variables.map((v) => v.shape),
      { dtype: this.spec.allreduce.dtype, seed: this.spec.seed },
    );
  }

  receive(m: Msg): void {
    const r = decodeMessage(commandSchema, m.data, { maxBytes: maxPayload(this.nc), job: this.spec.name });
    if (!r.ok) {
      this.observer.invalid(r.reason, r.detail, m.subject);
      return;
    }
    const cmd = r.value;
    // A step blocked in the all-reduce must be released now (queued behind it, the abort would wait
    // forever), and a step still computing must not enter the aborted all-reduce later.
    if (cmd.type === 'abort' && cmd.gen === this.gen) this.collective?.abort(cmd.reason, { before: cmd.before });
    if (cmd.type === 'hello' && cmd.instance !== this.instance) this.collective?.abort('a new coordinator started');
    if (cmd.type === 'stop') this.stopped.abort(new Error(`the coordinator stopped the job: ${cmd.reason}`));
    this.queue.push(cmd);
  }

  /** Messages of the step in flight may have been lost while NATS was away: abort it; the coordinator redoes it. */
  async watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'reconnect') this.collective?.abort('the NATS connection was re-established mid-step');
    }
  }

  async register(): Promise<void> {
    ({ instance: this.instance, generation: this.registeredAt } = await register(
      this.nc,
      this.subjects,
      this.registration,
      this.log,
      this.stopped.signal,
    ));
  }

  get optimizer(): Optimizer {
    return this.scheduled.optimizer;
  }

  heartbeat(): void {
    const tensors = this.tf.memory().numTensors;
    this.nc.publish(
      this.subjects.heartbeat,
      encodeMessage(heartbeatSchema, {
        type: 'heartbeat',
        job: this.spec.name,
        workerId: this.workerId,
        gen: this.gen,
        rank: this.rank,
        tensors,
      }),
    );
  }

  private report(r: DistributiveOmit<Report, 'job' | 'workerId'>): void {
    this.nc.publish(
      this.subjects.report,
      encodeMessage(reportSchema, { ...r, job: this.spec.name, workerId: this.workerId } as Report),
    );
  }

  async run(): Promise<{ reason: string; failed: boolean }> {
    for await (const cmd of this.queue) {
      if (cmd.type === 'stop') {
        this.log.info('stopping', { reason: cmd.reason, failed: cmd.failed });
        return { reason: cmd.reason, failed: cmd.failed };
      }
      if (cmd.type === 'hello') {
        if (cmd.instance !== this.instance) await this.rejoin();
        continue;
      }
      if (cmd.type === 'abort') continue;
      // Left out of a generation formed after it was accepted: the coordinator dropped this worker
      // (frozen, cut off). It registers again and joins at the next step boundary. Only a generation
      // command says so: any other command of an unknown generation is ignored, as forged or stale.
      if (cmd.type === 'generation' && cmd.gen > this.registeredAt && !cmd.members.includes(this.workerId)) {
        const refused = await this.registerAgain(cmd.gen);
        if (refused) return { reason: refused, failed: false };
        continue;
      }
      if (cmd.type !== 'generation' && cmd.gen !== this.gen) continue;
      if (cmd.type !== 'generation' && this.rank < 0) continue;
      if (cmd.type !== 'step') this.lastStepReport = undefined;
      try {
        await this.handle(cmd);
      } catch (err) {
        const e = err as Error;
        if (cmd.type === 'step') this.metrics.stepAborted();
        this.log.error(`${cmd.type} failed`, { error: e.message });
        this.report({
          type: 'failed',
          gen: this.gen,
          rank: Math.max(0, this.rank),
          step: cmd.type === 'step' ? cmd.step : 0,
          error: e.message,
        });
      }
    }
    return { reason: 'the command stream ended', failed: true };
  }

  async close(): Promise<void> {
    this.queue.close();
    await this.collective?.close();
    this.scheduled.dispose();
  }

  /**
   * Out of the membership since generation `gen`: leave the old generation and register again.
   * Returns the coordinator's reason when it refuses (a replacement took the place).
   */
  private async registerAgain(gen: number): Promise<string | undefined> {
    this.log.warn('dropped from the job (not a member since this generation); registering again', {
      generation: gen,
      previous: this.gen,
    });
    await this.collective?.close();
    this.collective = undefined;
    this.gen = gen;
    this.rank = -1;
    this.metrics.joined({ generation: gen, rank: -1, worldSize: 0 });
    try {
      await this.register();
      return undefined;
    } catch (err) {
      // Stopped meanwhile: the stop command is next in the queue.
      if (this.stopped.signal.aborted) return undefined;
      if (!(err instanceof RegistrationRefusedError)) throw err;
      this.log.warn('not readmitted; exiting', { reason: err.message });
      return err.message;
    }
  }

  /** Another coordinator took over: leave the generation and register with it. */
  private async rejoin(): Promise<void> {
    this.log.info('a new coordinator started; registering again', { previous: this.instance });
    await this.collective?.close();
    this.collective = undefined;
    this.rank = -1;
    await this.register().catch((err: unknown) => {
      // Stopped meanwhile: the stop command is next in the queue.
      if (!this.stopped.signal.aborted) throw err;
    });
  }

  private async handle(cmd: Exclude<Command, { type: 'stop' | 'hello' | 'abort' }>): Promise<void> {
    switch (cmd.type) {
      case 'generation':
        return this.joinGeneration(cmd.gen, cmd.members);
      case 'sync':
        return this.sync(cmd.op, cmd.root);
      case 'checkpoint':
        return this.checkpoint(cmd.id);
      case 'load':
        return this.load(cmd);
      case 'step':
        return this.trainStep(cmd);
      case 'eval':
        return this.evaluate(cmd.id, cmd.split, cmd.slices[this.rank]);
      case 'snapshot':
        this.best ??= new Float32Array(this.step.size);
        await this.step.getWeightsAsync(this.best);
        return this.report({ type: 'done', gen: this.gen, id: cmd.id });
      case 'restore':
        // A worker that joined after the snapshot has none; the coordinator then has a rank that
        // does broadcast its state.
        if (!this.best) {
          this.log.info('no snapshot of the best weights here (joined after it was taken)');
          return this.report({ type: 'done', gen: this.gen, id: cmd.id, restored: false });
        }
        this.step.setWeights(this.best);
        return this.report({ type: 'done', gen: this.gen, id: cmd.id, restored: true });
      case 'save':
        return this.save(cmd.id, cmd.predictSamples);
    }
  }

  private async joinGeneration(gen: number, members: string[]): Promise<void> {
    await this.collective?.close();
    this.collective = undefined;
    this.gen = gen;
    this.rank = members.indexOf(this.workerId);
    this.metrics.joined({ generation: gen, rank: this.rank, worldSize: members.length });
    if (this.rank < 0) {
      this.log.info('not a member of this generation; waiting', { generation: gen });
      return;
    }
    this.collective = await createNatsCollective(this.nc, {
      job: this.spec.name,
      generation: gen,
      rank: this.rank,
      worldSize: members.length,
      timeoutMs: this.spec.timeouts.stepMs,
      chunkBytes: this.spec.allreduce.chunkBytes,
      observer: this.observer,
      log: this.log.child('collective'),
    });
    await this.nc.flush();
    this.log.info('joined generation', { generation: gen, rank: this.rank, worldSize: members.length });
    this.report({ type: 'joined', gen, rank: this.rank, appliedStep: this.appliedStep });
  }

  /** The root's whole state (parameters, optimizer slots, last applied step) to every member. */
  private async sync(op: number, root: number): Promise<void> {
    const c = this.requireCollective();
    // The length travels as raw uint32 bits: the broadcast copies bytes, and a float cannot count past 2^24 exactly.
    const size = new Float32Array(1);
    const length = new Uint32Array(size.buffer);
    let state: Float32Array = new Float32Array(0);
    if (this.rank === root) {
      await this.step.getWeightsAsync(this.weights);
      const bytes = await encodeState(this.weights, this.optimizer, this.appliedStep, this.hook.state());
      length[0] = bytes.length;
      state = asFloats(bytes);
    }
    await c.broadcast(size, { root, op });
    if (this.rank !== root) state = new Float32Array(Math.ceil(length[0] / 4));
    await c.broadcast(state, { root, op: op + 1 });
    // Residuals are per rank: survivors keep theirs, joiners start from zero.
    // The root's weights are still the ones it read above; the others read what they received.
    if (this.rank !== root) {
      await this.applyState(new Uint8Array(state.buffer, 0, length[0]), 'keep');
      await this.step.getWeightsAsync(this.weights);
    }
    this.report({ type: 'ready', gen: this.gen, rank: this.rank, hash: parameterHash(this.weights) });
  }

  private async applyState(bytes: Uint8Array, residual: ResidualPolicy): Promise<void> {
    const state = decodeState(bytes, this.step.size);
    this.hook.load(state.hook, residual);
    this.step.setWeights(state.weights);
    // tfjs replaces optimizer slots without freeing the old ones: restore into a fresh optimizer.
    this.scheduled.dispose();
    this.scheduled = createOptimizer(this.spec.optimizer);
    await setOptimizerState(this.optimizer, state.optimizer);
    this.appliedStep = state.appliedStep;
  }

  private async checkpoint(id: number): Promise<void> {
    if (this.rank !== 0) return;
    await this.step.getWeightsAsync(this.weights);
    const bytes = await encodeState(this.weights, this.optimizer, this.appliedStep, this.hook.state());
    await shipFiles(this.nc, this.subjects.report, this.spec.name, this.workerId, id, [
      { name: 'state.bin', data: bytes },
    ]);
    this.report({ type: 'saved', id, files: [{ name: 'state.bin', bytes: bytes.length }], predictions: [] });
  }

  private async load(cmd: Extract<Command, { type: 'load' }>): Promise<void> {
    const name = `load-${cmd.id}`;
    if (!this.loading.add(name, cmd.index, cmd.total, cmd.data)) return;
    const bytes = this.loading.take(name);
    // The checkpoint holds rank 0's residual: one rank takes it, so it is applied once, not N times.
    await this.applyState(bytes, this.rank === 0 ? 'take' : 'clear');
    this.report({ type: 'ready', gen: this.gen, rank: this.rank, hash: await this.step.hashAsync(this.weights) });
  }

  private async trainStep(cmd: Extract<Command, { type: 'step' }>): Promise<void> {
    const c = this.requireCollective();
    const tf = this.tf;
    const t0 = performance.now();
    const wait = this.lastStepReport === undefined ? 0 : (t0 - this.lastStepReport) / 1000;
    const [start, count] = cmd.slices[this.rank] ?? [0, 0];
    const indices = sliceIndices(this.spec.seed, cmd.epoch, this.data.train.count, { start, count });
    // The slice runs as accumulationSteps micro-batches whose gradients add up in this.grad.
    let lossSum = 0;
    let gather = 0;
    let readback = 0;
    // The first micro-batch writes the buffer, the others add to it; with none (an empty slice) it
    // is zeroed, so this rank still contributes zeros.
    let written = false;
    for (const part of splitEvenly(0, indices.length, this.spec.accumulationSteps)) {
      if (part.count === 0) continue;
      if (part.start > 0) await yieldToEventLoop();
      const g0 = performance.now();
      const { x, y } = this.batches.tensors(this.data.train, indices.subarray(part.start, part.start + part.count));
      gather += performance.now() - g0;
      try {
        const result = written
          ? await this.step.accumulateAsync(x, y, this.grad)
          : await this.step.computeAsync(x, y, this.grad);
        written = true;
        lossSum += result.lossSum;
        readback += result.readbackSeconds;
      } finally {
        tf.dispose([x, y]);
      }
    }
    if (!written) this.grad.fill(0);
    const t1 = t0 + gather;
    const t2 = performance.now();
    await this.hook.reduce(this.grad, c, { op: cmd.op });
    const t3 = performance.now();
    // The reduced buffer is bit-identical on every rank, so every rank decides alike to skip.
    const nonFinite = !allFinite(this.grad);
    let gradNorm: number | undefined;
    if (nonFinite) this.log.warn('NaN or Inf in the reduced gradient; update skipped', { step: cmd.step });
    else {
      setLearningRate(this.optimizer, cmd.lr);
      const { optimizer } = this.spec;
      ({ gradNorm } = this.step.apply(this.grad, cmd.globalCount, this.optimizer, {
        clipNorm: optimizer.clipNorm,
        weightDecay: optimizer.weightDecay,
        learningRate: cmd.lr,
      }));
      this.appliedStep = cmd.step;
    }
    let hash: string | undefined;
    if (cmd.hash) hash = await this.step.hashAsync(this.weights);
    const t4 = performance.now();
    const timings = {
      data: (t1 - t0) / 1000,
      compute: Math.max(0, (t2 - t1) / 1000 - readback),
      readback,
      allreduce: (t3 - t2) / 1000,
      apply: (t4 - t3) / 1000,
      wait,
    };
    const memory = tf.memory();
    this.report({
      type: 'stepDone',
      gen: this.gen,
      rank: this.rank,
      step: cmd.step,
      lossSum,
      count,
      hash,
      nonFinite,
      timings,
      startedAt: performance.timeOrigin + t0,
      tensors: memory.numTensors,
      gradNorm,
      // rss() alone: process.memoryUsage() walks the whole heap, too dear for every step.
      memory: { rssBytes: process.memoryUsage.rss(), tensorBytes: memory.numBytes },
    });
    this.lastStepReport = performance.now();
    this.metrics.step({
      timings,
      samples: count,
      lossSum,
      gradientBytes: this.grad.byteLength,
      worldSize: c.worldSize,
    });
  }

  private async evaluate(id: number, split: 'validation' | 'test', slice: [number, number] | undefined): Promise<void> {
    const ds = split === 'validation' ? this.data.validation : this.data.test;
    const [start, count] = slice ?? [0, 0];
    if (!ds) throw new Error(`asked to evaluate the ${split} split, which this job does not define`);
    // An empty slice sums to zeros.
    const sums = await evaluateSlice(
      this.tf,
      this.built.model,
      this.built.loss,
      this.built.metrics,
      ds,
      start,
      count,
      this.batches,
      this.evalBatchSize(),
    );
    this.report({ type: 'evalDone', gen: this.gen, id, ...sums });
  }

  private async save(id: number, predictSamples: number): Promise<void> {
    if (this.rank !== 0) return;
    const files = await shipModel(this.nc, this.subjects.report, this.spec.name, this.workerId, id, this.built.model);
    const predictions: number[][] = [];
    const test = this.data.test;
    if (test && predictSamples > 0) {
      const tf = this.tf;
      const n = Math.min(predictSamples, test.count);
      const idx = range(0, n);
      const { x, y } = this.batches.tensors(test, idx);
      const pred = tf.tidy(() => tf.reshape(this.built.model.predict(x, { training: false }), [n, -1]));
      predictions.push(...((await pred.array()) as number[][]));
      tf.dispose([x, y, pred]);
    }
    this.report({ type: 'saved', id, files, predictions, fit: await this.regressionFit() });
  }

  /** A one-feature regression (mse): up to 200 test (else train) points and their predictions, for the report. */
  private async regressionFit(): Promise<[number, number, number][] | undefined> {
    const ds = this.data.test ?? this.data.train;
    const oneFeature = featureSize(ds) === 1 && labelSize(ds) === 1;
    if (this.built.lossName !== 'mse' || !oneFeature || ds.count === 0) return undefined;
    const n = Math.min(200, ds.count);
    const idx = new Int32Array(n).map((_, i) => Math.floor((i * ds.count) / n));
    const { x, y } = this.batches.tensors(ds, idx);
    const pred = this.tf.tidy(() => this.tf.reshape(this.built.model.predict(x, { training: false }), [n]));
    const [xs, ys, ps] = await Promise.all([x.data(), y.data(), pred.data()]);
    this.tf.dispose([x, y, pred]);
    return Array.from(idx, (_, i) => [xs[i], ys[i], ps[i]] as [number, number, number]);
  }

  /**
   * A job accumulates gradients because a whole batch does not fit; its evaluation batches are then
   * no larger than a micro-batch either.
   */
  private evalBatchSize(): number | undefined {
    const { batchSize, accumulationSteps } = this.spec;
    return accumulationSteps > 1 ? Math.ceil(batchSize / accumulationSteps) : undefined;
  }

  private requireCollective(): Collective {
    if (!this.collective) throw new Error(`no collective for generation ${this.gen}; this worker is not a member`);
    return this.collective;
  }
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}
