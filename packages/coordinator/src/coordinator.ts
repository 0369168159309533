// The coordinator's job loop: rendezvous, then per epoch the step clock over the data plan,
// validation, early stopping, and at the end test evaluation, the saved model and the summary.
// It holds no model itself: workers report sums, rank 0 ships the trained model's files.
import { EventEmitter } from 'node:events';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  DataPlan,
  commandSchema,
  connectNats,
  createLogger,
  decodeMessage,
  encodeMessage,
  heartbeatSchema,
  jobSubjects,
  learningRateAt,
  maxPayload,
  registerReplySchema,
  registerRequestSchema,
  reportSchema,
  type Command,
  type JobSpec,
  type Logger,
  type MessageObserver,
  type NatsOptions,
  type Report,
} from '@tfjs-ddp/common';
import { ArtifactReceiver } from './artifacts.js';
import { EarlyStopping } from './early-stopping.js';
import { addSums, emptySums, metricsFromSums, type EvalSums } from './evaluation.js';
import { Throughput, formatProgress, type ProgressEvent } from './progress.js';
import { startStatusServer, type StatusServer } from './status-server.js';
import { JobFailedError, StepFailedError } from './errors.js';

export interface CoordinatorOptions {
  spec: JobSpec;
  specHash: string;
  /** A connection to reuse, or options to open one. */
  nats: NatsConnection | NatsOptions;
  /** HOST:PORT for GET /status; omitted: no HTTP server. */
  statusAddr?: string;
  log?: Logger;
  observer?: MessageObserver;
}

export interface EpochSummary {
  epoch: number;
  trainLoss: number;
  samples: number;
  seconds: number;
  samplesPerSec: number;
  validation?: Record<string, number>;
}

export interface JobSummary {
  job: string;
  specHash: string;
  status: 'completed' | 'stopped-early';
  backends: Record<string, string>;
  worldSize: number;
  generation: number;
  epochs: EpochSummary[];
  bestEpoch?: number;
  test?: Record<string, number>;
  steps: number;
  samplesPerSec: number;
  wallSeconds: number;
  output: string;
  files: string[];
  predictions: number[][];
  /** tf.memory().numTensors per rank after step 10 and after the last step: equal when nothing leaks. */
  tensorsHeld: { early: number[]; end: number[] };
}

interface Member {
  workerId: string;
  backend: string;
  sizes: { train: number; validation: number; test: number };
  lastSeen: number;
}

const MAX_CONTROL_BYTES = 1 << 20;

export class Coordinator extends EventEmitter {
  private readonly log: Logger;
  private readonly spec: JobSpec;
  private nc!: NatsConnection;
  private ownsConnection = false;
  private readonly subs: Subscription[] = [];
  private readonly registered = new Map<string, Member>();
  private members: string[] = [];
  private generation = 0;
  private nextOp = 1;
  private nextId = 1;
  private readonly waiters = new Set<(r: Report) => void>();
  private status: Record<string, unknown> = { state: 'starting' };
  private statusServer?: StatusServer;
  private readonly subjects;
  private abortError?: Error;
  private readonly aborters = new Set<(err: Error) => void>();

  constructor(private readonly opts: CoordinatorOptions) {
    super();
    this.spec = opts.spec;
    this.log = opts.log ?? createLogger('coordinator');
    this.subjects = jobSubjects(this.spec.name);
  }

  /** Fails the running job: every wait in progress rejects with `reason`. */
  abort(reason: string): void {
    if (this.abortError) return;
    this.abortError = new JobFailedError(reason);
    for (const a of [...this.aborters]) a(this.abortError);
  }

  /** The worker id holding `rank` in the current generation. */
  memberAt(rank: number): string | undefined {
    return this.members[rank];
  }

  get worldSize(): number {
    return this.members.length;
  }

  get statusAddress(): string | undefined {
    return this.statusServer?.address;
  }

  /** Runs the whole job; resolves with its summary, rejects with a JobFailedError. */
  async run(): Promise<JobSummary> {
    const started = performance.now();
    await this.open();
    try {
      this.setStatus({ state: 'rendezvous' });
      await this.rendezvous();
      const summary = await this.train(started);
      await this.broadcastCommand({ type: 'stop', reason: 'job completed', failed: false });
      this.setStatus({ state: 'completed' });
      return summary;
    } catch (err) {
      const reason = (err as Error).message;
      this.setStatus({ state: 'failed', error: reason });
      await this.broadcastCommand({ type: 'stop', reason, failed: true }).catch(() => {});
      throw err instanceof JobFailedError ? err : new JobFailedError(reason, { cause: err });
    } finally {
      await this.close();
    }
  }

  private async open(): Promise<void> {
    if ('publish' in this.opts.nats) this.nc = this.opts.nats;
    else {
      this.nc = await connectNats({ name: `tfjs-ddp-coordinator-${this.spec.name}`, ...this.opts.nats });
      this.ownsConnection = true;
    }
    if (this.opts.statusAddr) {
      this.statusServer = await startStatusServer(this.opts.statusAddr, {
        status: () => ({ job: this.spec.name, ...this.status }),
        ready: () => this.status.state === 'training',
      });
      this.log.info('status endpoint', { url: `http://${this.statusServer.address}/status` });
    }
    this.subs.push(this.nc.subscribe(this.subjects.register, { callback: (_e, m) => this.onRegister(m) }));
    this.subs.push(this.nc.subscribe(this.subjects.heartbeat, { callback: (_e, m) => this.onHeartbeat(m) }));
    this.subs.push(this.nc.subscribe(this.subjects.report, { callback: (_e, m) => this.onReport(m) }));
    await this.nc.flush();
  }

  private async close(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    await this.statusServer?.close();
    if (this.ownsConnection) await this.nc.close();
  }

  private setStatus(patch: Record<string, unknown>): void {
    this.status = { ...this.status, ...patch };
  }

  private decode<T>(schema: Parameters<typeof decodeMessage>[0], m: Msg, maxBytes = MAX_CONTROL_BYTES): T | undefined {
    const r = decodeMessage(schema, m.data, { maxBytes, job: this.spec.name });
    if (!r.ok) {
      this.opts.observer?.invalid(r.reason, r.detail, m.subject);
      this.log.warn('dropped invalid message', { subject: m.subject, reason: r.reason, detail: r.detail });
      return undefined;
    }
    return r.value as T;
  }

  private onRegister(m: Msg): void {
    const refuse = (workerId: string, reason: string) => {
      this.log.warn('refused worker', { workerId, reason });
      if (m.reply)
        m.respond(
          encodeMessage(registerReplySchema, { type: 'registered', job: this.spec.name, accepted: false, reason }),
        );
    };
    const decoded = decodeMessage(registerRequestSchema, m.data, { maxBytes: MAX_CONTROL_BYTES, job: this.spec.name });
    if (!decoded.ok) {
      this.opts.observer?.invalid(decoded.reason, decoded.detail, m.subject);
      // A worker of another version gets an answer, so it fails at once instead of waiting forever.
      if (decoded.reason === 'version') refuse('(unknown)', `protocol version mismatch: ${decoded.detail}`);
      else
        this.log.warn('dropped invalid message', {
          subject: m.subject,
          reason: decoded.reason,
          detail: decoded.detail,
        });
      return;
    }
    const req = decoded.value;
    if (req.specHash !== this.opts.specHash)
      return refuse(
        req.workerId,
        `job spec differs: worker has spec hash ${req.specHash}, coordinator has ${this.opts.specHash}; give every process the same job file`,
      );
    const first = [...this.registered.values()][0];
    if (first && JSON.stringify(first.sizes) !== JSON.stringify(req.sizes)) {
      return refuse(
        req.workerId,
        `dataset sizes differ: this worker loaded ${JSON.stringify(req.sizes)}, others ${JSON.stringify(first.sizes)}; every worker must read the same data`,
      );
    }
    const known = this.registered.get(req.workerId);
    if (!known && this.registered.size >= this.spec.workers.max)
      return refuse(req.workerId, `the job already has workers.max = ${this.spec.workers.max} workers`);
    this.registered.set(req.workerId, {
      workerId: req.workerId,
      backend: req.backend,
      sizes: req.sizes,
      lastSeen: Date.now(),
    });
    this.log.info('worker registered', {
      workerId: req.workerId,
      backend: req.backend,
      host: req.host,
      registered: this.registered.size,
      min: this.spec.workers.min,
    });
    m.respond(encodeMessage(registerReplySchema, { type: 'registered', job: this.spec.name, accepted: true }));
    this.emit('registered', req.workerId);
  }

  private onHeartbeat(m: Msg): void {
    const hb = this.decode<{ workerId: string }>(heartbeatSchema, m);
    const member = hb && this.registered.get(hb.workerId);
    if (member) member.lastSeen = Date.now();
  }

  private onReport(m: Msg): void {
    // Reports include the model's files in chunks as large as the server allows.
    const r = this.decode<Report>(reportSchema, m, maxPayload(this.nc));
    if (!r) return;
    for (const w of [...this.waiters]) w(r);
  }

  private async broadcastCommand(cmd: DistributiveOmit<Command, 'job'>): Promise<void> {
    const full = { ...cmd, job: this.spec.name } as Command;
    this.nc.publish(this.subjects.control, encodeMessage(commandSchema, full));
    await this.nc.flush();
  }

  /**
   * Waits until every current member sent a report matching `accept`. A `failed` report of the
   * current generation, or the deadline, rejects with an error naming the ranks that did not answer.
   */
  private collect<R extends Report>(
    what: string,
    accept: (r: Report) => r is R,
    timeoutMs: number,
  ): Promise<Map<number, R>> {
    const got = new Map<number, R>();
    const world = this.members.length;
    return new Promise((resolve, reject) => {
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        this.aborters.delete(finish);
        if (err) reject(err);
        else resolve(got);
      };
      const waiter = (r: Report) => {
        if (r.type === 'failed' && r.gen === this.generation) {
          finish(new StepFailedError(`${what} failed on rank ${r.rank} (${r.workerId}): ${r.error}`, [r.rank]));
          return;
        }
        if (!accept(r)) return;
        const rank = this.members.indexOf(r.workerId);
        if (rank < 0) return;
        got.set(rank, r);
        if (got.size === world) finish();
      };
      const timer = setTimeout(() => {
        const missing = this.members.map((_, i) => i).filter((i) => !got.has(i));
        finish(
          new StepFailedError(
            `${what} timed out after ${timeoutMs} ms: no report from rank${missing.length > 1 ? 's' : ''} ${missing
              .map((i) => `${i} (${this.members[i]})`)
              .join(', ')}`,
            missing,
          ),
        );
      }, timeoutMs);
      this.waiters.add(waiter);
      this.aborters.add(finish);
      if (this.abortError) finish(this.abortError);
    });
  }

  private async rendezvous(): Promise<void> {
    const { min, max } = this.spec.workers;
    const timeoutMs = this.spec.timeouts.rendezvousMs;
    this.log.info('waiting for workers', { min, max, timeoutMs });
    const deadline = Date.now() + timeoutMs;
    while (this.registered.size < min) {
      if (this.abortError) throw this.abortError;
      if (Date.now() > deadline) {
        throw new JobFailedError(
          `only ${this.registered.size} of workers.min = ${min} workers registered within ${timeoutMs} ms; ` +
            `start more workers (tfjs-ddp worker --job FILE --nats URL) or lower workers.min`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.formGeneration(0);
  }

  private async formGeneration(step: number): Promise<void> {
    this.generation += 1;
    // Ranks follow worker ids, not arrival order, so a rerun with the same workers sums in the same order.
    this.members = [...this.registered.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const joined = this.collect(
      'joining generation',
      (r): r is Extract<Report, { type: 'joined' }> => r.type === 'joined' && r.gen === this.generation,
      this.spec.timeouts.stepMs,
    );
    await this.broadcastCommand({ type: 'generation', gen: this.generation, members: this.members, step });
    await joined;
    const op = this.nextOp++;
    const ready = this.collect(
      'initial weight broadcast',
      (r): r is Extract<Report, { type: 'ready' }> => r.type === 'ready' && r.gen === this.generation,
      this.spec.timeouts.stepMs,
    );
    await this.broadcastCommand({ type: 'sync', gen: this.generation, op });
    const reports = await ready;
    const hashes = new Set([...reports.values()].map((r) => r.hash));
    if (hashes.size !== 1) {
      throw new JobFailedError(
        `replicas differ after the initial broadcast: ${[...reports.values()].map((r) => `rank ${r.rank}: ${r.hash}`).join(', ')}`,
      );
    }
    this.log.info('generation formed', {
      generation: this.generation,
      worldSize: this.members.length,
      members: this.members.join(','),
    });
    this.setStatus({ generation: this.generation, worldSize: this.members.length, members: this.members });
  }

  private sizes(): Member['sizes'] {
    const first = [...this.registered.values()][0];
    if (!first) throw new JobFailedError('no worker registered');
    return first.sizes;
  }

  private async evaluate(split: 'validation' | 'test', size: number): Promise<Record<string, number>> {
    const world = this.members.length;
    const slices: [number, number][] = [];
    for (let r = 0; r < world; r++) {
      const start = Math.floor((r * size) / world);
      slices.push([start, Math.floor(((r + 1) * size) / world) - start]);
    }
    const id = this.nextId++;
    const done = this.collect(
      `${split} evaluation`,
      (r): r is Extract<Report, { type: 'evalDone' }> => r.type === 'evalDone' && r.id === id,
      this.spec.timeouts.stepMs * 4,
    );
    await this.broadcastCommand({ type: 'eval', gen: this.generation, id, split, slices });
    let sums: EvalSums = emptySums();
    for (const r of (await done).values()) sums = addSums(sums, r);
    return metricsFromSums(sums, this.spec.metrics);
  }

  private async simple(type: 'snapshot' | 'restore'): Promise<void> {
    const id = this.nextId++;
    const done = this.collect(
      type,
      (r): r is Extract<Report, { type: 'done' }> => r.type === 'done' && r.id === id,
      this.spec.timeouts.stepMs,
    );
    await this.broadcastCommand({ type, gen: this.generation, id });
    await done;
  }

  private async train(started: number): Promise<JobSummary> {
    const spec = this.spec;
    const sizes = this.sizes();
    const plan = new DataPlan({ size: sizes.train, batchSize: spec.batchSize, seed: spec.seed });
    const stepsPerEpoch = plan.stepsPerEpoch;
    const epochs: EpochSummary[] = [];
    const early = spec.earlyStopping ? new EarlyStopping(spec.earlyStopping) : undefined;
    const throughput = new Throughput();
    let globalStep = 0;
    let trainSamples = 0;
    let trainSeconds = 0;
    let stoppedEarly = false;
    const tensorsHeld: JobSummary['tensorsHeld'] = { early: [], end: [] };
    this.setStatus({ state: 'training', epochs: spec.epochs, stepsPerEpoch });

    for (let epoch = 0; epoch < spec.epochs; epoch++) {
      const epochStart = performance.now();
      let lossSum = 0;
      let samples = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        const world = this.members.length;
        const step = plan.nextStep(world);
        const op = this.nextOp++;
        const hash = spec.hashCheckEvery > 0 && (globalStep + 1) % spec.hashCheckEvery === 0;
        const done = this.collect(
          `step ${globalStep}`,
          (r): r is Extract<Report, { type: 'stepDone' }> =>
            r.type === 'stepDone' && r.step === globalStep && r.gen === this.generation,
          spec.timeouts.stepMs,
        );
        await this.broadcastCommand({
          type: 'step',
          gen: this.generation,
          step: globalStep,
          epoch: step.epoch,
          op,
          slices: step.slices.map((sl) => [sl.start, sl.count] as [number, number]),
          globalCount: step.globalCount,
          lr: learningRateAt(spec.optimizer, globalStep, world),
          hash,
        });
        const reports = await done;
        if (hash) this.checkHashes(reports, globalStep);
        const held = [...reports.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r.tensors);
        if (globalStep <= 10) tensorsHeld.early = held;
        tensorsHeld.end = held;
        let stepLoss = 0;
        for (const r of reports.values()) stepLoss += r.lossSum;
        lossSum += stepLoss;
        samples += step.globalCount;
        throughput.add(step.globalCount);
        globalStep += 1;
        const elapsed = (performance.now() - epochStart) / 1000;
        const rate = throughput.rate() || samples / Math.max(elapsed, 1e-9);
        const remainingSteps = (spec.epochs - epoch - 1) * stepsPerEpoch + (stepsPerEpoch - s - 1);
        const progress: ProgressEvent = {
          epoch,
          epochs: spec.epochs,
          step: s + 1,
          stepsPerEpoch,
          globalStep,
          loss: step.globalCount > 0 ? stepLoss / step.globalCount : 0,
          samplesPerSec: rate,
          etaSec: rate > 0 ? (remainingSteps * spec.batchSize) / rate : Infinity,
          worldSize: world,
          generation: this.generation,
        };
        this.setStatus({ progress, line: formatProgress(progress) });
        this.emit('progress', progress);
      }
      const seconds = (performance.now() - epochStart) / 1000;
      trainSamples += samples;
      trainSeconds += seconds;
      const summary: EpochSummary = {
        epoch,
        trainLoss: samples > 0 ? lossSum / samples : 0,
        samples,
        seconds,
        samplesPerSec: samples / seconds,
      };
      if (sizes.validation > 0) summary.validation = await this.evaluate('validation', sizes.validation);
      epochs.push(summary);
      this.log.info('epoch done', {
        epoch: epoch + 1,
        trainLoss: summary.trainLoss.toFixed(5),
        samplesPerSec: Math.round(summary.samplesPerSec),
        ...prefixed('val_', summary.validation),
      });
      this.emit('epoch', summary);
      if (early) {
        const metrics = { loss: summary.trainLoss, ...prefixed('val_', summary.validation) };
        const { improved, stop } = early.observe(epoch, metrics);
        if (improved && spec.earlyStopping?.restoreBestWeights) await this.simple('snapshot');
        if (stop) {
          stoppedEarly = true;
          this.log.info('early stopping', {
            epoch: epoch + 1,
            monitor: spec.earlyStopping?.monitor,
            best: early.bestValue,
            bestEpoch: early.bestEpochIndex + 1,
          });
          break;
        }
      }
    }
    if (early && stoppedEarly && spec.earlyStopping?.restoreBestWeights) await this.simple('restore');

    const test = sizes.test > 0 ? await this.evaluate('test', sizes.test) : undefined;
    if (test) this.log.info('test evaluation', test);
    const { files, predictions } = await this.saveModel(Math.min(sizes.test, 16));
    const result: JobSummary = {
      job: spec.name,
      specHash: this.opts.specHash,
      status: stoppedEarly ? 'stopped-early' : 'completed',
      backends: Object.fromEntries([...this.registered.values()].map((m) => [m.workerId, m.backend])),
      worldSize: this.members.length,
      generation: this.generation,
      epochs,
      bestEpoch: early ? early.bestEpochIndex : undefined,
      test,
      steps: globalStep,
      samplesPerSec: trainSeconds > 0 ? trainSamples / trainSeconds : 0,
      wallSeconds: (performance.now() - started) / 1000,
      output: spec.output,
      files,
      predictions,
      tensorsHeld,
    };
    await writeJsonAtomic(join(spec.output, 'summary.json'), result);
    this.log.info('summary written', { path: join(spec.output, 'summary.json') });
    return result;
  }

  private checkHashes(reports: Map<number, Extract<Report, { type: 'stepDone' }>>, step: number): void {
    const ref = reports.get(0)?.hash;
    const drifted = [...reports.entries()].filter(([, r]) => r.hash !== ref).map(([rank]) => rank);
    if (drifted.length > 0) {
      throw new JobFailedError(
        `parameter drift at step ${step}: rank${drifted.length > 1 ? 's' : ''} ${drifted.join(', ')} differ from rank 0 (hash ${ref}); replicas must stay bit-identical`,
      );
    }
  }

  private async saveModel(predictSamples: number): Promise<{ files: string[]; predictions: number[][] }> {
    const id = this.nextId++;
    const receiver = new ArtifactReceiver();
    const rank0 = this.members[0];
    let saved: Extract<Report, { type: 'saved' }> | undefined;
    const result = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new JobFailedError(
            `rank 0 (${rank0}) did not deliver the trained model within ${this.spec.timeouts.stepMs * 4} ms${saved ? `; missing files: ${receiver.missing(saved.files.map((f) => f.name)).join(', ')}` : ''}`,
          ),
        );
      }, this.spec.timeouts.stepMs * 4);
      const waiter = (r: Report) => {
        if (r.type === 'failed' && r.workerId === rank0) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(new JobFailedError(`saving the model failed on rank 0: ${r.error}`));
          return;
        }
        if ((r.type !== 'artifact' && r.type !== 'saved') || r.id !== id || r.workerId !== rank0) return;
        if (r.type === 'artifact') receiver.add(r.name, r.index, r.total, r.data);
        else saved = r;
        if (saved && receiver.complete(saved.files.map((f) => f.name))) {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        }
      };
      this.waiters.add(waiter);
    });
    await this.broadcastCommand({ type: 'save', gen: this.generation, id, predictSamples });
    await result;
    const modelDir = join(this.spec.output, 'model');
    const files = await receiver.writeAll(modelDir);
    this.log.info('model saved', { dir: modelDir, files: files.join(',') });
    return { files: files.map((f) => join('model', f)), predictions: saved?.predictions ?? [] };
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function prefixed(prefix: string, m: Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m ?? {})) out[prefix + k] = v;
  return out;
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await rename(tmp, path);
}

export async function runCoordinator(opts: CoordinatorOptions): Promise<JobSummary> {
  return new Coordinator(opts).run();
}
