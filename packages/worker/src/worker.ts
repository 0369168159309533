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
  createOptimizer,
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
import { BatchBuffers } from './batch.js';
import { CommandQueue } from './command-queue.js';
import { evaluateSlice } from './evaluation.js';
import { loadJobData, datasetSizes, type JobData } from './job-data.js';
import { register } from './registration.js';
import { shipModel } from './artifacts.js';

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
  try {
    const data = await loadJobData(spec, nc);
    log.info('data loaded', datasetSizes(data));
    const built = await createModel(spec.model, tf, {
      seed: spec.seed,
      loss: spec.loss,
      metrics: spec.metrics.length > 0 ? spec.metrics : undefined,
      inputShape: data.train.featureShape,
    });
    const step = new GradientStep(built.model, built.loss);
    log.info('model built', { parameters: step.size, loss: built.lossName });
    const optimizer = createOptimizer(spec.optimizer, 1);
    const subjects = jobSubjects(spec.name);
    const runtime = new WorkerRuntime({
      nc,
      tf,
      spec,
      workerId,
      log,
      step,
      optimizer: optimizer.optimizer,
      data,
      built,
      observer: opts.observer,
    });
    const sub = nc.subscribe(subjects.control, { callback: (_e, m) => runtime.receive(m) });
    await nc.flush();
    await register(
      nc,
      subjects,
      { job: spec.name, workerId, specHash: opts.specHash, backend: backend.name, sizes: datasetSizes(data) },
      log,
    );
    const beat = setInterval(() => runtime.heartbeat(), opts.heartbeatMs ?? 1_000);
    try {
      return await runtime.run();
    } finally {
      clearInterval(beat);
      sub.unsubscribe();
      await runtime.close();
      optimizer.dispose();
      built.model.dispose();
    }
  } finally {
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
  optimizer: Optimizer;
  data: JobData;
  built: BuiltModel;
  observer?: MessageObserver;
}

class WorkerRuntime {
  private readonly queue = new CommandQueue<Command>();
  private readonly subjects;
  private readonly grad: Float32Array;
  private readonly weights: Float32Array;
  private best?: Float32Array;
  private readonly batches;
  private collective?: Collective;
  private gen = 0;
  private rank = -1;

  private readonly nc: NatsConnection;
  private readonly tf: Tf;
  private readonly spec: JobSpec;
  private readonly workerId: string;
  private readonly log: Logger;
  private readonly step: GradientStep;
  private readonly optimizer: Optimizer;
  private readonly data: JobData;
  private readonly built: BuiltModel;
  private readonly observer?: MessageObserver;

  constructor(parts: RuntimeParts) {
    ({ nc: this.nc, tf: this.tf, spec: this.spec, workerId: this.workerId, log: this.log, step: this.step } = parts);
    ({ optimizer: this.optimizer, data: this.data, built: this.built, observer: this.observer } = parts);
    this.subjects = jobSubjects(this.spec.name);
    this.grad = new Float32Array(this.step.size);
    this.weights = new Float32Array(this.step.size);
    this.batches = new BatchBuffers(this.tf);
  }

  receive(m: Msg): void {
    const r = decodeMessage(commandSchema, m.data, { maxBytes: maxPayload(this.nc), job: this.spec.name });
    if (!r.ok) {
      this.observer?.invalid(r.reason, r.detail, m.subject);
      this.log.warn('dropped invalid command', { reason: r.reason, detail: r.detail });
      return;
    }
    this.queue.push(r.value);
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
      if (cmd.type !== 'generation' && cmd.gen !== this.gen) continue;
      if (cmd.type !== 'generation' && this.rank < 0) continue;
      try {
        await this.handle(cmd);
      } catch (err) {
        const e = err as Error;
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
  }

  private async handle(cmd: Exclude<Command, { type: 'stop' }>): Promise<void> {
    switch (cmd.type) {
      case 'generation':
        return this.joinGeneration(cmd.gen, cmd.members);
      case 'sync':
        return this.sync(cmd.op);
      case 'step':
        return this.trainStep(cmd);
      case 'eval':
        return this.evaluate(cmd.id, cmd.split, cmd.slices[this.rank]);
      case 'snapshot':
        this.best ??= new Float32Array(this.step.size);
        this.step.getWeights(this.best);
        return this.report({ type: 'done', gen: this.gen, id: cmd.id });
      case 'restore':
        if (!this.best) throw new Error('restore asked for, but no snapshot was taken');
        this.step.setWeights(this.best);
        return this.report({ type: 'done', gen: this.gen, id: cmd.id });
      case 'save':
        return this.save(cmd.id, cmd.predictSamples);
    }
  }

  private async joinGeneration(gen: number, members: string[]): Promise<void> {
    await this.collective?.close();
    this.collective = undefined;
    this.gen = gen;
    this.rank = members.indexOf(this.workerId);
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
    this.report({ type: 'joined', gen, rank: this.rank });
  }

  private async sync(op: number): Promise<void> {
    const c = this.requireCollective();
    if (this.rank === 0) this.step.getWeights(this.weights);
    await c.broadcast(this.weights, { root: 0, op });
    if (this.rank !== 0) this.step.setWeights(this.weights);
    this.report({ type: 'ready', gen: this.gen, rank: this.rank, hash: parameterHash(this.weights) });
  }

  private async trainStep(cmd: Extract<Command, { type: 'step' }>): Promise<void> {
    const c = this.requireCollective();
    const tf = this.tf;
    const t0 = performance.now();
    const [start, count] = cmd.slices[this.rank] ?? [0, 0];
    const indices = sliceIndices(this.spec.seed, cmd.epoch, this.data.train.count, { start, count });
    const { x, y } = this.batches.tensors(this.data.train, indices);
    const t1 = performance.now();
    let lossSum: number;
    try {
      lossSum = this.step.compute(x, y, this.grad).lossSum;
    } finally {
      tf.dispose([x, y]);
    }
    const t2 = performance.now();
    await c.allReduce(this.grad, { op: cmd.op, dtype: this.spec.allreduce.dtype });
    const t3 = performance.now();
    setLearningRate(this.optimizer, cmd.lr);
    this.step.apply(this.grad, cmd.globalCount, this.optimizer);
    let hash: string | undefined;
    if (cmd.hash) hash = this.step.hash(this.weights);
    const t4 = performance.now();
    this.report({
      type: 'stepDone',
      gen: this.gen,
      rank: this.rank,
      step: cmd.step,
      lossSum,
      count,
      hash,
      timings: {
        data: (t1 - t0) / 1000,
        compute: (t2 - t1) / 1000,
        readback: 0,
        allreduce: (t3 - t2) / 1000,
        apply: (t4 - t3) / 1000,
      },
      tensors: tf.memory().numTensors,
    });
  }

  private async evaluate(id: number, split: 'validation' | 'test', slice: [number, number] | undefined): Promise<void> {
    const ds = split === 'validation' ? this.data.validation : this.data.test;
    const [start, count] = slice ?? [0, 0];
    if (!ds && count > 0) throw new Error(`asked to evaluate the ${split} split, which this job does not define`);
    const sums =
      ds && count > 0
        ? await evaluateSlice(
            this.tf,
            this.built.model,
            this.built.loss,
            this.built.metrics,
            ds,
            start,
            count,
            this.batches,
          )
        : { lossSum: 0, count: 0, correct: 0, tp: 0, fp: 0, tn: 0, fn: 0 };
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
      const idx = new Int32Array(n).map((_, i) => i);
      const { x, y } = this.batches.tensors(test, idx);
      const pred = tf.tidy(() => tf.reshape(this.built.model.predict(x, { training: false }), [n, -1]));
      predictions.push(...((await pred.array()) as number[][]));
      tf.dispose([x, y, pred]);
    }
    this.report({ type: 'saved', id, files, predictions });
  }

  private requireCollective(): Collective {
    if (!this.collective) throw new Error(`no collective for generation ${this.gen}; this worker is not a member`);
    return this.collective;
  }
}
