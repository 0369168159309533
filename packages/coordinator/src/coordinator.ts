// The coordinator's job loop: rendezvous, then per epoch the step clock over the data plan,
// validation, early stopping, and at the end test evaluation, the saved model and the summary.
// It holds no model itself: workers report sums, rank 0 ships the trained model's files.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  COMM_HOOK_OPS,
  ChunkAssembler,
  DataPlan,
  splitChunks,
  type PlannedStep,
  commandSchema,
  connectNats,
  createCountingObserver,
  createLogger,
  decodeMessage,
  encodeMessage,
  heartbeatSchema,
  jobSubjects,
  isLanguageModelJob,
  learningRateAt,
  maxPayload,
  splitEvenly,
  registerReplySchema,
  registerRequestSchema,
  reportSchema,
  type Command,
  type JobSpec,
  type Logger,
  type MessageObserver,
  type MetricsRegistry,
  startMetricsServer,
  writeFileAtomic,
  type MetricsServer,
  type NatsOptions,
  type Report,
} from '@tfjs-ddp/common';
import { writeAssembled } from './artifacts.js';
import { CheckpointStore } from './checkpoints.js';
import { DirectoryStorage, ObjectStoreStorage } from './checkpoint-storage.js';
import { EarlyStopping } from './early-stopping.js';
import { addSums, emptySums, metricsFromSums, type EvalSums } from './evaluation.js';
import { Throughput, formatProgress, type ProgressEvent } from './progress.js';
import { JobFailedError, StepFailedError } from './errors.js';
import { RunRecorder, writeReport, type RunHistory } from './report/index.js';

export interface CoordinatorOptions {
  spec: JobSpec;
  specHash: string;
  /** A connection to reuse, or options to open one. */
  nats: NatsConnection | NatsOptions;
  /** HOST:PORT for GET /status; omitted: no HTTP server. */
  statusAddr?: string;
  log?: Logger;
  observer?: MessageObserver;
  /** Workers to wait for before the first step, when more than workers.min are known to be coming (a local cluster). */
  gangSize?: number;
  /** Write a Chrome trace of every rank's step phases to this file (at the end, also when the job fails). */
  trace?: string;
}

export interface EpochSummary {
  /** Counted from 1, as in the log and the report. */
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
  /**
   * With earlyStopping.restoreBestWeights, after an early stop: whether the model holds the best
   * epoch's weights (false: every worker that held them was lost, and the last weights stayed).
   */
  bestWeightsRestored?: boolean;
  backends: Record<string, string>;
  worldSize: number;
  generation: number;
  epochs: EpochSummary[];
  /** With earlyStopping: the epoch with the best monitored value, counted from 1 like `epochs[].epoch`. */
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
  /** The largest resident memory and tensor bytes each worker reported after a step, by worker id. */
  memory: Record<string, { rssBytes: number; tensorBytes: number }>;
  /** Validation before the first step (evaluateAtStart, language models by default): where the curve starts. */
  startValidation?: Record<string, number>;
  /** Steps aborted and redone (a lost worker, a NATS reconnect, a timeout). */
  abortedSteps: number;
  /** Steps whose update every rank skipped for NaN/Inf in the reduced gradient. */
  nonFiniteSteps: number;
  /** Every membership generation: when it started, its members in rank order, whose state it took. */
  generations: GenerationRecord[];
  /** The data-plan ranges whose updates were applied, in order: [epoch, start, count]. */
  committed: [number, number, number][];
  /** The step a restarted coordinator resumed at, from a checkpoint. */
  resumedAtStep?: number;
  checkpoints: string[];
  /** The series report.html draws: per-step loss, samples/s per worker, phase means, world size. */
  history: RunHistory;
  /** A regression on one feature: test points [x, y, prediction] for the report's fitted line. */
  fit?: [number, number, number][];
}

export interface GenerationRecord {
  generation: number;
  step: number;
  members: string[];
  /** Rank whose state every member took (the one that had applied the most steps). */
  root: number;
  /** Parameter hash of every member right after it took the state, in rank order. */
  hashes: string[];
  reason: string;
}

interface Member {
  workerId: string;
  backend: string;
  lastSeen: number;
}

type DatasetSizes = { train: number; validation: number; test: number };

const MAX_CONTROL_BYTES = 1 << 20;
/** Attempts of one step, or of any other recovered wait (first try and redos), before the job fails. */
const MAX_ATTEMPTS = 4;

export class Coordinator extends EventEmitter {
  private readonly log: Logger;
  private readonly spec: JobSpec;
  private nc!: NatsConnection;
  private ownsConnection = false;
  private readonly subs: Subscription[] = [];
  private readonly registered = new Map<string, Member>();
  private datasetSizes?: DatasetSizes;
  private members: string[] = [];
  private generation = 0;
  private nextOp = 1;
  private nextId = 1;
  private readonly waiters = new Set<(r: Report) => void>();
  private status: Record<string, unknown> = { state: 'starting' };
  private statusServer?: MetricsServer;
  private readonly subjects;
  private abortError?: Error;
  private readonly aborters = new Set<(err: Error) => void>();
  /** Fails the collect in progress (not the job): a worker was lost or NATS reconnected. */
  private interruptError?: StepFailedError;
  private readonly interrupters = new Set<(err: StepFailedError) => void>();
  readonly instance = randomUUID().slice(0, 8);
  private checkpoints!: CheckpointStore;
  private readonly generations: GenerationRecord[] = [];
  private abortedSteps = 0;
  private lastCheckpoint?: string;
  /** Members that registered again (their process was restarted): they need a new generation. */
  private readonly restarted = new Set<string>();
  private readonly recorder: RunRecorder;
  private readonly observer: MessageObserver;

  constructor(private readonly opts: CoordinatorOptions) {
    super();
    this.spec = opts.spec;
    this.log = opts.log ?? createLogger('coordinator');
    this.subjects = jobSubjects(this.spec.name);
    this.recorder = new RunRecorder(this, { job: this.spec.name, trace: opts.trace, log: this.log });
    // Drops are counted, and logged at most every few seconds per reason: garbage must not flood the log.
    this.observer = this.recorder.observer(opts.observer ?? createCountingObserver({ log: this.log.child('invalid') }));
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

  /** The coordinator's Prometheus metrics (what /metrics serves), for callers without HTTP. */
  get metrics(): MetricsRegistry {
    return this.recorder.metrics.registry;
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
      await this.recorder.writeTrace();
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
      this.statusServer = await startMetricsServer(this.opts.statusAddr, {
        registry: this.metrics,
        ready: () => this.status.state === 'training',
        json: { '/status': () => ({ job: this.spec.name, ...this.status }) },
      });
      this.log.info('status endpoint', { url: `http://${this.statusServer.address}/status` });
    }
    this.subs.push(this.nc.subscribe(this.subjects.register, { callback: (_e, m) => this.onRegister(m) }));
    this.subs.push(this.nc.subscribe(this.subjects.heartbeat, { callback: (_e, m) => this.onHeartbeat(m) }));
    this.subs.push(this.nc.subscribe(this.subjects.report, { callback: (_e, m) => this.onReport(m) }));
    await this.nc.flush();
    const where = this.spec.checkpoint.dir ?? join(this.spec.output, 'checkpoints');
    const storage = where.startsWith('nats-obj://')
      ? new ObjectStoreStorage(this.nc, where)
      : new DirectoryStorage(where);
    this.checkpoints = new CheckpointStore(storage, this.spec.checkpoint.keep, this.log.child('checkpoints'));
    // Workers of an earlier coordinator of this job drop their generation and register with this one.
    await this.broadcastCommand({ type: 'hello', instance: this.instance });
    void this.watchConnection();
  }

  /** A reconnect may have lost messages of the step in flight: abort it, so it is redone. */
  private async watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'reconnect') {
        this.log.warn('NATS connection re-established; the step in flight is redone');
        // Heartbeats could not arrive during the outage; that silence is not the workers' fault.
        for (const m of this.registered.values()) m.lastSeen = Date.now();
        this.interrupt(new StepFailedError('the NATS connection was re-established mid-step', []));
      }
    }
  }

  private interrupt(err: StepFailedError): void {
    if (this.interrupters.size === 0) return;
    for (const i of [...this.interrupters]) i(err);
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
      this.observer.invalid(r.reason, r.detail, m.subject);
      return undefined;
    }
    return r.value as T;
  }

  private onRegister(m: Msg): void {
    const refuse = (workerId: string, reason: string) => {
      this.log.warn('refused worker', { workerId, reason });
      if (m.reply)
        m.respond(
          encodeMessage(registerReplySchema, {
            type: 'registered',
            job: this.spec.name,
            accepted: false,
            reason,
            instance: this.instance,
          }),
        );
    };
    const decoded = decodeMessage(registerRequestSchema, m.data, { maxBytes: MAX_CONTROL_BYTES, job: this.spec.name });
    if (!decoded.ok) {
      this.observer.invalid(decoded.reason, decoded.detail, m.subject);
      // A worker of another version gets an answer, so it fails at once instead of waiting forever.
      if (decoded.reason === 'version') refuse('(unknown)', `protocol version mismatch: ${decoded.detail}`);
      return;
    }
    const req = decoded.value;
    if (req.specHash !== this.opts.specHash)
      return refuse(
        req.workerId,
        `job spec differs: worker has spec hash ${req.specHash}, coordinator has ${this.opts.specHash}; give every process the same job file`,
      );
    if (this.datasetSizes && JSON.stringify(this.datasetSizes) !== JSON.stringify(req.sizes)) {
      return refuse(
        req.workerId,
        `dataset sizes differ: this worker loaded ${JSON.stringify(req.sizes)}, others ${JSON.stringify(this.datasetSizes)}; every worker must read the same data`,
      );
    }
    const known = this.registered.get(req.workerId);
    if (!known && this.registered.size >= this.spec.workers.max)
      return refuse(req.workerId, `the job already has workers.max = ${this.spec.workers.max} workers`);
    this.registered.set(req.workerId, {
      workerId: req.workerId,
      backend: req.backend,
      lastSeen: Date.now(),
    });
    // Fixed by the first worker accepted, for the whole job: the data plan is built on it.
    this.datasetSizes ??= req.sizes;
    // A member registering again was restarted: its old process is gone, so is its part of the step in flight.
    const rank = this.members.indexOf(req.workerId);
    if (rank >= 0) {
      this.restarted.add(req.workerId);
      this.interrupt(new StepFailedError(`rank ${rank} (${req.workerId}) restarted and registered again`, [rank]));
    }
    this.log.info('worker registered', {
      workerId: req.workerId,
      backend: req.backend,
      host: req.host,
      registered: this.registered.size,
      min: this.spec.workers.min,
    });
    m.respond(
      encodeMessage(registerReplySchema, {
        type: 'registered',
        job: this.spec.name,
        accepted: true,
        instance: this.instance,
        generation: this.generation,
      }),
    );
    this.emit('registered', req.workerId);
  }

  private onHeartbeat(m: Msg): void {
    const hb = this.decode<{ workerId: string; gen: number }>(heartbeatSchema, m);
    if (!hb) return;
    // A restarted coordinator continues above any generation its workers still hold.
    if (hb.gen > this.generation && this.members.length === 0) this.generation = hb.gen;
    const member = this.registered.get(hb.workerId);
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
    try {
      await this.nc.flush();
    } catch (err) {
      // While NATS is away the client keeps the command and sends it after reconnecting; the reconnect
      // aborts the step in flight, so a command that still got lost is redone by the recovery.
      if (this.nc.isClosed()) throw err;
      this.log.warn('NATS is unreachable; the command is sent once the connection is back', {
        type: cmd.type,
        error: (err as Error).message,
      });
    }
  }

  /**
   * One wait on worker reports, registered before the caller sends its command: `onReport` sees
   * every report and settles the wait; the deadline, a lost member (`lost` names it) or an abort of
   * the job end it with an error.
   */
  private awaitReports<T>(wait: {
    timeoutMs: number;
    onReport(r: Report, done: (value: T) => void, fail: (err: Error) => void): void;
    onTimeout(): Error;
    lost(): Error | undefined;
  }): Promise<T> {
    const result = new Promise<T>((resolve, reject) => {
      const finish = (err?: Error, value?: T) => {
        clearTimeout(timer);
        clearInterval(watch);
        this.waiters.delete(waiter);
        this.aborters.delete(finish);
        this.interrupters.delete(finish);
        if (err) reject(err);
        else resolve(value as T);
      };
      const waiter = (r: Report) =>
        wait.onReport(
          r,
          (value) => finish(undefined, value),
          (err) => finish(err),
        );
      const timer = setTimeout(() => finish(wait.onTimeout()), wait.timeoutMs);
      // Heartbeats name a dead or stalled worker within seconds, long before the deadline.
      const watch = setInterval(() => {
        const err = wait.lost();
        if (err) finish(err);
      }, 200);
      this.waiters.add(waiter);
      this.aborters.add(finish);
      this.interrupters.add(finish);
      if (this.abortError) finish(this.abortError);
    });
    // Callers await it only after sending their command; an abort meanwhile must not be an unhandled rejection.
    result.catch(() => {});
    return result;
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
    const named = (ranks: number[]) => ranks.map((i) => `${i} (${this.members[i]})`).join(', ');
    return this.awaitReports({
      timeoutMs,
      onReport: (r, done, fail) => {
        if (r.type === 'failed' && r.gen === this.generation) {
          fail(new StepFailedError(`${what} failed on rank ${r.rank} (${r.workerId}): ${r.error}`, [r.rank]));
          return;
        }
        if (!accept(r)) return;
        const rank = this.members.indexOf(r.workerId);
        if (rank < 0) return;
        got.set(rank, r);
        if (got.size === world) done(got);
      },
      onTimeout: () => {
        const missing = this.members.map((_, i) => i).filter((i) => !got.has(i));
        return new StepFailedError(
          `${what} timed out after ${timeoutMs} ms: no report from rank${missing.length > 1 ? 's' : ''} ${named(missing)}`,
          missing,
        );
      },
      lost: () => {
        const lost = this.lostMembers().filter((rank) => !got.has(rank));
        if (lost.length === 0) return undefined;
        return new StepFailedError(
          `${what}: ${lost.map((r) => `rank ${r} (${this.members[r]})`).join(', ')} lost: no heartbeat for ` +
            `${this.spec.faults.heartbeatTimeoutMs} ms, and no report of ${what}`,
          lost,
        );
      },
    });
  }

  /** Ranks of the current generation whose heartbeats stopped. */
  private lostMembers(): number[] {
    const now = Date.now();
    return this.members
      .map((id, rank) => ({ rank, seen: this.registered.get(id)?.lastSeen ?? 0 }))
      .filter((m) => now - m.seen > this.spec.faults.heartbeatTimeoutMs)
      .map((m) => m.rank);
  }

  private async rendezvous(): Promise<void> {
    const gang = Math.min(this.spec.workers.max, Math.max(this.spec.workers.min, this.opts.gangSize ?? 0));
    await this.waitForWorkers(this.spec.timeouts.rendezvousMs, 'registered', gang);
  }

  /** Waits until `min` workers are registered, or fails after `timeoutMs`. */
  private async waitForWorkers(timeoutMs: number, what: string, min = this.spec.workers.min): Promise<void> {
    const { max } = this.spec.workers;
    this.log.info('waiting for workers', { registered: this.registered.size, min, max, timeoutMs });
    const deadline = Date.now() + timeoutMs;
    let hello = Date.now();
    while (this.registered.size < min) {
      if (this.abortError) throw this.abortError;
      if (Date.now() > deadline) {
        throw new JobFailedError(
          `only ${this.registered.size} of workers.min = ${min} workers ${what} within ${timeoutMs} ms; ` +
            `start more workers (tfjs-ddp worker --job FILE --nats URL) or lower workers.min` +
            (this.lastCheckpoint ? `; the last checkpoint is ${this.lastCheckpoint}` : ''),
        );
      }
      // Repeated, so workers of an earlier coordinator that missed the first one still come over.
      if (Date.now() - hello > 2_000) {
        hello = Date.now();
        await this.broadcastCommand({ type: 'hello', instance: this.instance });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Forms a new generation of the registered workers. Every member subscribes its collective, then
   * takes the state of the member that applied the most steps (or the checkpoint's state, when
   * `load` is given), so the survivors of an aborted step agree again. Returns the last step
   * applied in that state.
   */
  private async formGeneration(step: number, reason: string, load?: Uint8Array): Promise<number> {
    this.generation += 1;
    this.restarted.clear();
    // Ranks follow worker ids, not arrival order, so a rerun with the same workers sums in the same order.
    this.members = [...this.registered.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const gen = this.generation;
    const joined = this.collect(
      'joining generation',
      (r): r is Extract<Report, { type: 'joined' }> => r.type === 'joined' && r.gen === gen,
      this.spec.timeouts.stepMs,
    );
    await this.broadcastCommand({ type: 'generation', gen, members: this.members, step });
    const joins = await joined;
    let root = 0;
    for (const [rank, r] of joins) if (r.appliedStep > (joins.get(root)?.appliedStep ?? -1)) root = rank;
    const appliedStep = load ? step - 1 : (joins.get(root)?.appliedStep ?? -1);
    const reports = load
      ? await this.untilReady('loading the checkpoint', async () => {
          const id = this.nextId++;
          const chunks = splitChunks(load, maxPayload(this.nc));
          for (let index = 0; index < chunks.length; index++) {
            await this.broadcastCommand({ type: 'load', gen, id, index, total: chunks.length, data: chunks[index] });
          }
        })
      : await this.syncFrom(root, 'the state broadcast');
    const memberHashes = this.members.map((_, rank) => reports.get(rank)?.hash ?? '');
    this.generations.push({
      generation: gen,
      step,
      members: [...this.members],
      root: load ? -1 : root,
      hashes: memberHashes,
      reason,
    });
    this.log.info('generation formed', {
      generation: gen,
      worldSize: this.members.length,
      members: this.members.join(','),
      stateFrom: load ? 'checkpoint' : `rank ${root}`,
      reason,
    });
    this.setStatus({ generation: gen, worldSize: this.members.length, members: this.members });
    this.emit('generation', { generation: gen, worldSize: this.members.length, step });
    return appliedStep;
  }

  /**
   * After a failed step: abort it on every rank, drop the workers that stopped heartbeating, wait
   * (up to faults.rejoinTimeoutMs) while fewer than workers.min remain, and form a new generation.
   * Returns whether the failed step was applied after all (then it must not be redone).
   */
  private async recover(err: StepFailedError, step: number): Promise<boolean> {
    this.abortedSteps += 1;
    this.emit('aborted', { step, reason: err.message });
    this.log.warn('step aborted; recovering', { step, reason: err.message });
    // Every operation id handed out so far belongs to the failed attempt or an earlier one.
    await this.broadcastCommand({ type: 'abort', gen: this.generation, reason: err.message, before: this.nextOp });
    // Give every member a heartbeat period to show it is alive before membership is decided.
    await new Promise((r) => setTimeout(r, Math.min(2_000, this.spec.faults.heartbeatTimeoutMs)));
    for (const rank of this.lostMembers()) {
      const id = this.members[rank];
      this.log.warn('worker lost', { rank, workerId: id, heartbeatTimeoutMs: this.spec.faults.heartbeatTimeoutMs });
      this.registered.delete(id);
    }
    await this.waitForWorkers(this.spec.faults.rejoinTimeoutMs, 'remained or rejoined');
    const applied = await this.formGeneration(step, `recovery: ${err.message}`);
    return applied >= step;
  }

  /** Registered workers that are not members yet (newcomers, restarted workers) join at a step boundary. */
  private async admitNewcomers(step: number): Promise<void> {
    const waiting = [...this.registered.keys()].filter((id) => !this.members.includes(id) || this.restarted.has(id));
    if (waiting.length === 0) return;
    await this.formGeneration(step, `joined: ${waiting.join(', ')}`);
  }

  private sizes(): DatasetSizes {
    if (!this.datasetSizes) throw new JobFailedError('no worker registered');
    return this.datasetSizes;
  }

  private async evaluate(split: 'validation' | 'test', size: number): Promise<Record<string, number>> {
    const slices = splitEvenly(0, size, this.members.length).map((sl) => [sl.start, sl.count] as [number, number]);
    const id = this.nextId++;
    const done = this.collect(
      `${split} evaluation`,
      (r): r is Extract<Report, { type: 'evalDone' }> => r.type === 'evalDone' && r.id === id,
      this.spec.timeouts.stepMs * 4,
    );
    await this.broadcastCommand({ type: 'eval', gen: this.generation, id, split, slices });
    let sums: EvalSums = emptySums();
    for (const r of (await done).values()) sums = addSums(sums, r);
    const metrics = metricsFromSums(sums, this.spec.metrics);
    // A language model's loss is the mean per-token cross-entropy; its exponential is the perplexity.
    if (isLanguageModelJob(this.spec)) metrics.perplexity = Math.exp(metrics.loss);
    return metrics;
  }

  private async simple(type: 'snapshot' | 'restore'): Promise<Map<number, Extract<Report, { type: 'done' }>>> {
    const id = this.nextId++;
    const done = this.collect(
      type,
      (r): r is Extract<Report, { type: 'done' }> => r.type === 'done' && r.id === id,
      this.spec.timeouts.stepMs,
    );
    await this.broadcastCommand({ type, gen: this.generation, id });
    return done;
  }

  /**
   * Every member back to the best epoch's weights. The snapshot lives in the workers that took it;
   * members that joined later (or restarted) have none, and take the state of the lowest rank that
   * does. Returns false when no member holds it (all that took it are gone): the last weights stay.
   */
  private async restoreBest(bestEpoch: number): Promise<boolean> {
    const reports = await this.simple('restore');
    const holders = [...reports].filter(([, r]) => r.restored !== false).map(([rank]) => rank);
    if (holders.length === this.members.length) return true;
    if (holders.length === 0) {
      this.log.warn(
        `no worker holds the best weights (epoch ${bestEpoch + 1}): every worker that took the snapshot is gone; the model keeps the last weights`,
      );
      return false;
    }
    const root = Math.min(...holders);
    await this.syncFrom(root, 'the broadcast of the best weights');
    this.log.info('best weights restored', {
      epoch: bestEpoch + 1,
      from: `rank ${root}`,
      to: this.members
        .map((_, rank) => rank)
        .filter((rank) => !holders.includes(rank))
        .join(','),
    });
    return true;
  }

  /** Root's whole state to every member (the `sync` command); resolves once all report it, alike. */
  private syncFrom(root: number, what: string): Promise<Map<number, Extract<Report, { type: 'ready' }>>> {
    return this.untilReady(what, () =>
      this.broadcastCommand({ type: 'sync', gen: this.generation, op: this.takeOps(2), root }),
    );
  }

  /** Runs `send` with every member's `ready` awaited (registered first) and checks their hashes agree. */
  private async untilReady(
    what: string,
    send: () => Promise<void>,
  ): Promise<Map<number, Extract<Report, { type: 'ready' }>>> {
    const gen = this.generation;
    const ready = this.collect(
      what,
      (r): r is Extract<Report, { type: 'ready' }> => r.type === 'ready' && r.gen === gen,
      this.spec.timeouts.stepMs,
    );
    await send();
    const reports = await ready;
    this.checkReplicasEqual(reports, what);
    return reports;
  }

  /** A block of `n` collective operation ids, fresh for this job. */
  private takeOps(n: number): number {
    const op = this.nextOp;
    this.nextOp += n;
    return op;
  }

  /** Every rank's parameter hash equals rank 0's, or the job fails naming the ranks that drifted. */
  private checkReplicasEqual(reports: Map<number, { hash?: string }>, after: string): void {
    const ref = reports.get(0)?.hash;
    const drifted = [...reports.entries()].filter(([, r]) => r.hash !== ref).map(([rank]) => rank);
    if (drifted.length > 0) {
      throw new JobFailedError(
        `parameter drift after ${after}: rank${drifted.length > 1 ? 's' : ''} ${drifted.join(', ')} differ from rank 0 (hash ${ref}); replicas must stay bit-identical`,
      );
    }
  }

  private async train(started: number): Promise<JobSummary> {
    const spec = this.spec;
    const sizes = this.sizes();
    const plan = new DataPlan({ size: sizes.train, batchSize: spec.batchSize, seed: spec.seed });
    const stepsPerEpoch = plan.stepsPerEpoch;
    const totalSteps = stepsPerEpoch * spec.epochs;
    const hashDue = (globalStep: number) => spec.hashCheckEvery > 0 && (globalStep + 1) % spec.hashCheckEvery === 0;
    const early = spec.earlyStopping ? new EarlyStopping(spec.earlyStopping) : undefined;
    const throughput = new Throughput();
    const progress: TrainingProgress = {
      epochs: [],
      committed: [],
      nonFiniteSteps: 0,
      checkpoints: [],
      stoppedEarly: false,
    };
    let globalStep = 0;
    let trainSamples = 0;
    let trainSeconds = 0;
    let nonFiniteInARow = 0;
    let failedStep = -1;
    let failures = 0;
    let resumedAtStep: number | undefined;
    const tensorsHeld: JobSummary['tensorsHeld'] = { early: [], end: [] };
    const memory: JobSummary['memory'] = {};

    await this.checkpoints.clearIfCompleted();
    const resume = await this.checkpoints.latest(spec, this.opts.specHash);
    if (resume) {
      const m = resume.meta;
      plan.restore(m.cursor);
      globalStep = m.step;
      resumedAtStep = m.step;
      Object.assign(progress, m.progress as Partial<TrainingProgress>);
      if (early && m.progress.early) early.restore(m.progress.early as ReturnType<EarlyStopping['state']>);
      this.generation = Math.max(this.generation, m.generation);
      this.lastCheckpoint = resume.path;
      this.log.info('resuming from checkpoint', {
        path: resume.path,
        step: m.step,
        epoch: m.cursor.epoch,
        position: m.cursor.position,
      });
    }
    await this.formGeneration(globalStep, resume ? `resumed from ${resume.path}` : 'start', resume?.state);
    this.setStatus({ state: 'training', epochs: spec.epochs, stepsPerEpoch });
    const startValidation =
      sizes.validation > 0 && !resume && (spec.evaluateAtStart ?? isLanguageModelJob(spec))
        ? await this.withRecovery(globalStep, () => this.evaluate('validation', sizes.validation))
        : undefined;
    if (startValidation) this.log.info('validation before training', prefixed('val_', startValidation));

    const saveCheckpoint = async () => {
      const cursor = plan.cursor();
      const state = await this.withRecovery(globalStep, () => this.fetchState());
      const path = await this.checkpoints.save(
        {
          job: spec.name,
          specHash: this.opts.specHash,
          spec,
          step: globalStep,
          cursor,
          generation: this.generation,
          seed: spec.seed,
          progress: { ...progress, early: early?.state() },
        },
        state,
      );
      this.lastCheckpoint = path;
      // The store keeps the newest `keep`; the summary lists those, not the ones already deleted.
      progress.checkpoints = [...progress.checkpoints, path].slice(-spec.checkpoint.keep);
    };

    for (let epoch = plan.cursor().epoch; epoch < spec.epochs && !progress.stoppedEarly; epoch++) {
      const epochStart = performance.now();
      let lossSum = 0;
      let samples = 0;
      while (plan.cursor().epoch === epoch) {
        await this.withRecovery(globalStep, () => this.admitNewcomers(globalStep));
        const world = this.members.length;
        const step = plan.peek(world);
        let reports: Map<number, Extract<Report, { type: 'stepDone' }>> | undefined;
        try {
          reports = await this.runStep(globalStep, step, world, { totalSteps, hash: hashDue(globalStep) });
        } catch (err) {
          if (!(err instanceof StepFailedError)) throw err;
          // A step that fails again and again on live workers is broken, not unlucky: stop, saying why.
          failures = failedStep === globalStep ? failures + 1 : 1;
          failedStep = globalStep;
          if (failures >= MAX_ATTEMPTS) {
            throw new JobFailedError(`step ${globalStep} failed ${failures} times; the last time: ${err.message}`);
          }
          if (!(await this.recover(err, globalStep))) continue;
        }
        plan.advance();
        progress.committed.push([step.epoch, step.start, step.globalCount]);
        let stepLoss = 0;
        if (reports) {
          if (hashDue(globalStep)) this.checkReplicasEqual(reports, `step ${globalStep}`);
          const held = [...reports.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r.tensors);
          if (globalStep <= 10) tensorsHeld.early = held;
          tensorsHeld.end = held;
          for (const r of reports.values()) {
            if (!r.memory) continue;
            const peak = (memory[r.workerId] ??= { rssBytes: 0, tensorBytes: 0 });
            peak.rssBytes = Math.max(peak.rssBytes, r.memory.rssBytes);
            peak.tensorBytes = Math.max(peak.tensorBytes, r.memory.tensorBytes);
          }
          for (const r of reports.values()) stepLoss += r.lossSum;
          if ([...reports.values()].some((r) => r.nonFinite)) {
            progress.nonFiniteSteps += 1;
            nonFiniteInARow += 1;
            if (nonFiniteInARow > spec.faults.maxNonFiniteSteps) {
              throw new JobFailedError(
                `${nonFiniteInARow} steps in a row had NaN or Inf in the reduced gradient (the last at step ${globalStep}); ` +
                  `every rank skipped those updates. Lower the learning rate or check the data` +
                  (this.lastCheckpoint ? `; the last good checkpoint is ${this.lastCheckpoint}` : ''),
              );
            }
          } else {
            nonFiniteInARow = 0;
            // A skipped step's loss is Inf or NaN: it stays out of the epoch's mean, which then says something.
            lossSum += stepLoss;
            samples += step.globalCount;
          }
        }
        throughput.add(step.globalCount);
        globalStep += 1;
        const elapsed = (performance.now() - epochStart) / 1000;
        const rate = throughput.rate() || samples / Math.max(elapsed, 1e-9);
        const remainingSteps = (spec.epochs - epoch - 1) * stepsPerEpoch + (stepsPerEpoch - step.step - 1);
        const event: ProgressEvent = {
          epoch,
          epochs: spec.epochs,
          step: step.step + 1,
          stepsPerEpoch,
          globalStep,
          loss: step.globalCount > 0 ? stepLoss / step.globalCount : 0,
          samplesPerSec: rate,
          etaSec: rate > 0 ? (remainingSteps * spec.batchSize) / rate : Infinity,
          worldSize: world,
          generation: this.generation,
        };
        this.setStatus({ progress: event, line: formatProgress(event) });
        this.emit('progress', event);
        if (
          spec.checkpoint.everySteps > 0 &&
          globalStep % spec.checkpoint.everySteps === 0 &&
          plan.cursor().epoch === epoch
        ) {
          await saveCheckpoint();
        }
      }
      const seconds = (performance.now() - epochStart) / 1000;
      trainSamples += samples;
      trainSeconds += seconds;
      const summary: EpochSummary = {
        epoch: epoch + 1,
        trainLoss: samples > 0 ? lossSum / samples : 0,
        samples,
        seconds,
        samplesPerSec: samples / seconds,
      };
      if (sizes.validation > 0)
        summary.validation = await this.withRecovery(globalStep, () => this.evaluate('validation', sizes.validation));
      progress.epochs.push(summary);
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
        if (improved && spec.earlyStopping?.restoreBestWeights)
          await this.withRecovery(globalStep, () => this.simple('snapshot'));
        if (stop) {
          progress.stoppedEarly = true;
          this.log.info('early stopping', {
            epoch: epoch + 1,
            monitor: spec.earlyStopping?.monitor,
            best: early.bestValue,
            bestEpoch: early.bestEpochIndex + 1,
          });
        }
      }
      await saveCheckpoint();
    }
    let bestWeightsRestored: boolean | undefined;
    if (early && progress.stoppedEarly && spec.earlyStopping?.restoreBestWeights)
      bestWeightsRestored = await this.withRecovery(globalStep, () => this.restoreBest(early.bestEpochIndex));

    const test =
      sizes.test > 0 ? await this.withRecovery(globalStep, () => this.evaluate('test', sizes.test)) : undefined;
    if (test) this.log.info('test evaluation', test);
    const { files, predictions, fit } = await this.withRecovery(globalStep, () =>
      this.saveModel(isLanguageModelJob(spec) ? 0 : Math.min(sizes.test, 16)),
    );
    const result: JobSummary = {
      job: spec.name,
      specHash: this.opts.specHash,
      status: progress.stoppedEarly ? 'stopped-early' : 'completed',
      ...(bestWeightsRestored !== undefined && { bestWeightsRestored }),
      backends: Object.fromEntries([...this.registered.values()].map((m) => [m.workerId, m.backend])),
      worldSize: this.members.length,
      generation: this.generation,
      epochs: progress.epochs,
      bestEpoch: early ? early.bestEpochIndex + 1 : undefined,
      test,
      steps: globalStep,
      samplesPerSec: trainSeconds > 0 ? trainSamples / trainSeconds : 0,
      wallSeconds: (performance.now() - started) / 1000,
      output: spec.output,
      files,
      predictions,
      tensorsHeld,
      memory,
      startValidation,
      abortedSteps: this.abortedSteps,
      nonFiniteSteps: progress.nonFiniteSteps,
      generations: this.generations,
      committed: progress.committed,
      resumedAtStep,
      checkpoints: progress.checkpoints,
      history: this.recorder.runHistory(),
      fit,
    };
    await writeJsonAtomic(join(spec.output, 'summary.json'), result);
    await this.checkpoints.markCompleted(globalStep);
    this.log.info('summary written', { path: join(spec.output, 'summary.json') });
    await writeReport(join(spec.output, 'report.html'), result, spec);
    this.log.info('report written', { path: join(spec.output, 'report.html') });
    return result;
  }

  /** One training step on every member; rejects with StepFailedError when any rank fails or goes silent. */
  private async runStep(
    globalStep: number,
    step: PlannedStep,
    world: number,
    { totalSteps, hash }: { totalSteps: number; hash: boolean },
  ): Promise<Map<number, Extract<Report, { type: 'stepDone' }>>> {
    const gen = this.generation;
    const done = this.collect(
      `step ${globalStep}`,
      (r): r is Extract<Report, { type: 'stepDone' }> =>
        r.type === 'stepDone' && r.step === globalStep && r.gen === gen,
      this.spec.timeouts.stepMs,
    );
    const commandAt = performance.timeOrigin + performance.now();
    // A communication hook may run several collective operations per step: it gets a block of op ids.
    const op = this.takeOps(COMM_HOOK_OPS);
    await this.broadcastCommand({
      type: 'step',
      gen,
      step: globalStep,
      epoch: step.epoch,
      op,
      slices: step.slices.map((sl) => [sl.start, sl.count] as [number, number]),
      globalCount: step.globalCount,
      lr: learningRateAt(this.spec.optimizer, globalStep, world, totalSteps),
      hash,
    });
    const reports = await done;
    const doneAt = performance.timeOrigin + performance.now();
    this.emit('step', {
      step: globalStep,
      epoch: step.epoch,
      generation: gen,
      commandAt,
      doneAt,
      reports: [...reports.values()],
    });
    return reports;
  }

  /** Runs `fn`, and after a failure of a rank re-forms the generation and runs it again. */
  private async withRecovery<T>(step: number, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof StepFailedError) || attempt + 1 >= MAX_ATTEMPTS) throw err;
        await this.recover(err, step);
      }
    }
  }

  /** Rank 0's replica state (parameters, optimizer slots, last applied step), for a checkpoint. */
  private async fetchState(): Promise<Uint8Array> {
    const { assembler } = await this.receiveFromRank0('checkpoint', (id) =>
      this.broadcastCommand({ type: 'checkpoint', gen: this.generation, id }),
    );
    return assembler.take('state.bin');
  }

  private async saveModel(
    predictSamples: number,
  ): Promise<{ files: string[]; predictions: number[][]; fit?: [number, number, number][] }> {
    const { assembler, saved } = await this.receiveFromRank0('the trained model', (id) =>
      this.broadcastCommand({ type: 'save', gen: this.generation, id, predictSamples }),
    );
    const modelDir = join(this.spec.output, 'model');
    const files = await writeAssembled(
      assembler,
      saved.files.map((f) => f.name),
      modelDir,
    );
    this.log.info('model saved', { dir: modelDir, files: files.join(',') });
    return { files: files.map((f) => join('model', f)), predictions: saved.predictions, fit: saved.fit };
  }

  /**
   * Sends a command (through `send`, given a fresh id) that makes rank 0 ship files as artifact
   * chunks followed by a `saved` report, and collects them. Rank 0 failing or going silent
   * rejects with a StepFailedError, so the caller can recover and ask again.
   */
  private async receiveFromRank0(
    what: string,
    send: (id: number) => Promise<void>,
  ): Promise<{ assembler: ChunkAssembler; saved: Extract<Report, { type: 'saved' }> }> {
    const id = this.nextId++;
    const assembler = new ChunkAssembler();
    const rank0 = this.members[0];
    let saved: Extract<Report, { type: 'saved' }> | undefined;
    const timeoutMs = this.spec.timeouts.stepMs * 4;
    const result = this.awaitReports<Extract<Report, { type: 'saved' }>>({
      timeoutMs,
      onReport: (r, done, fail) => {
        if (r.type === 'failed' && r.workerId === rank0) {
          fail(new StepFailedError(`sending ${what} failed on rank 0: ${r.error}`, [0]));
          return;
        }
        if ((r.type !== 'artifact' && r.type !== 'saved') || r.id !== id || r.workerId !== rank0) return;
        if (r.type === 'artifact') assembler.add(r.name, r.index, r.total, r.data);
        else saved = r;
        if (saved && assembler.complete(saved.files.map((f) => f.name))) done(saved);
      },
      onTimeout: () => {
        const missing = saved ? `; missing: ${assembler.missing(saved.files.map((f) => f.name)).join(', ')}` : '';
        return new StepFailedError(`rank 0 (${rank0}) did not deliver ${what} within ${timeoutMs} ms${missing}`, [0]);
      },
      lost: () =>
        this.lostMembers().includes(0)
          ? new StepFailedError(`rank 0 (${rank0}) was lost while sending ${what}`, [0])
          : undefined,
    });
    await send(id);
    return { assembler, saved: await result };
  }
}

interface TrainingProgress {
  epochs: EpochSummary[];
  committed: [number, number, number][];
  nonFiniteSteps: number;
  checkpoints: string[];
  stoppedEarly: boolean;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function prefixed(prefix: string, m: Record<string, number> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m ?? {})) out[prefix + k] = v;
  return out;
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

export async function runCoordinator(opts: CoordinatorOptions): Promise<JobSummary> {
  return new Coordinator(opts).run();
}
