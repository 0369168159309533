// The coordinator: one job's lifecycle. It opens its NATS connection and status endpoint, waits for
// the workers (rendezvous), trains the job to its end (training.ts) and tells every worker to stop,
// also when the job failed. Each concern has its own module: the control plane, membership,
// generations, the retry policy (recovery.ts), the step driver, evaluation, best weights,
// checkpoints, rank 0's files and the run's timeline. It holds no model itself.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  connectNats,
  createCountingObserver,
  createLogger,
  jobSubjects,
  startMetricsServer,
  type JobSpec,
  type Logger,
  type MessageObserver,
  type MetricsRegistry,
  type MetricsServer,
  type NatsOptions,
} from '@tfjs-ddp/common';
import { Rank0Files } from './artifacts.js';
import { Checkpointing } from './checkpointing.js';
import { ControlPlane } from './control.js';
import { JobFailedError, StepFailedError } from './errors.js';
import { Generations } from './generations.js';
import { Membership } from './membership.js';
import { Recovery } from './recovery.js';
import type { JobSummary } from './summary.js';
import { RunRecorder } from './timeline/run-recorder.js';
import { train, type TrainingOptions } from './training.js';

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

/**
 * Runs one job. Events: 'registered' (a worker id), 'generation', 'aborted', 'step' (a StepEvent),
 * 'progress' (a ProgressEvent) and 'epoch' (an EpochSummary).
 */
export class Coordinator extends EventEmitter {
  readonly instance = randomUUID().slice(0, 8);
  private readonly spec: JobSpec;
  private readonly log: Logger;
  private readonly subjects;
  private readonly recorder: RunRecorder;
  private readonly observer: MessageObserver;
  /** Aborted by abort(): every wait in progress rejects with its reason. */
  private readonly aborted = new AbortController();
  private readonly membership: Membership;
  private nc!: NatsConnection;
  private ownsConnection = false;
  private readonly subs: Subscription[] = [];
  /** The job's parts that need the connection, made once it is open. */
  private job?: TrainingOptions;
  private status: Record<string, unknown> = { state: 'starting' };
  private statusServer?: MetricsServer;

  constructor(private readonly opts: CoordinatorOptions) {
    super();
    this.spec = opts.spec;
    this.log = opts.log ?? createLogger('coordinator');
    this.subjects = jobSubjects(this.spec.name);
    this.recorder = new RunRecorder(this, {
      job: this.spec.name,
      trace: opts.trace,
      stragglers: this.spec.stragglers,
      log: this.log,
    });
    // Drops are counted, and logged at most every few seconds per reason: garbage must not flood the log.
    this.observer = this.recorder.observer(opts.observer ?? createCountingObserver({ log: this.log.child('invalid') }));
    this.membership = new Membership({
      spec: this.spec,
      specHash: opts.specHash,
      instance: this.instance,
      log: this.log,
      observer: this.observer,
      events: this,
      signal: this.aborted.signal,
      interrupt: (err) => this.job?.control.interrupt(err),
      hello: () => this.hello(),
      lastCheckpoint: () => this.job?.checkpointing.last,
    });
  }

  /** Fails the running job: every wait in progress rejects with `reason`. */
  abort(reason: string): void {
    this.aborted.abort(new JobFailedError(reason));
  }

  /** The worker id holding `rank` in the current generation. */
  memberAt(rank: number): string | undefined {
    return this.membership.members[rank];
  }

  get worldSize(): number {
    return this.membership.members.length;
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
    const job = await this.open();
    try {
      this.setStatus({ state: 'rendezvous' });
      await this.membership.rendezvous(this.opts.gangSize);
      const summary = await train(job, started);
      await job.control.broadcast({ type: 'stop', reason: 'job completed', failed: false });
      this.setStatus({ state: 'completed' });
      return summary;
    } catch (err) {
      const reason = (err as Error).message;
      this.setStatus({ state: 'failed', error: reason });
      await job.control.broadcast({ type: 'stop', reason, failed: true }).catch(() => {});
      throw err instanceof JobFailedError ? err : new JobFailedError(reason, { cause: err });
    } finally {
      await this.recorder.writeTrace();
      await this.close();
    }
  }

  private async open(): Promise<TrainingOptions> {
    if ('publish' in this.opts.nats) this.nc = this.opts.nats;
    else {
      this.nc = await connectNats({ name: `tfjs-ddp-coordinator-${this.spec.name}`, ...this.opts.nats });
      this.ownsConnection = true;
    }
    const job = this.parts();
    if (this.opts.statusAddr) {
      this.statusServer = await startMetricsServer(this.opts.statusAddr, {
        registry: this.metrics,
        ready: () => this.status.state === 'training',
        json: { '/status': () => ({ job: this.spec.name, ...this.status }) },
      });
      this.log.info('status endpoint', { url: `http://${this.statusServer.address}/status` });
    }
    const on = (subject: string, handle: (m: Msg) => void) =>
      this.subs.push(this.nc.subscribe(subject, { callback: (_e, m) => handle(m) }));
    on(this.subjects.register, (m) => this.membership.onRegister(m));
    on(this.subjects.heartbeat, (m) => this.membership.onHeartbeat(m));
    on(this.subjects.report, (m) => job.control.onReport(m));
    await this.nc.flush();
    // Workers of an earlier coordinator of this job drop their generation and register with this one.
    await this.hello();
    void this.watchConnection(job.control);
    return job;
  }

  /** The parts a job trains with, wired to each other and to this coordinator's events and status. */
  private parts(): TrainingOptions {
    const { spec, log, membership } = this;
    const specHash = this.opts.specHash;
    const setStatus = (patch: Record<string, unknown>) => this.setStatus(patch);
    const control = new ControlPlane({
      nc: this.nc,
      spec,
      subject: this.subjects.control,
      log,
      observer: this.observer,
      signal: this.aborted.signal,
      members: membership,
    });
    const generations = new Generations({ spec, control, membership, log, events: this, setStatus });
    const recovery = new Recovery({ spec, control, membership, generations, log, events: this });
    const files = new Rank0Files({ spec, control, membership, log });
    const checkpointing = new Checkpointing({ spec, specHash, nc: this.nc, membership, recovery, files, log });
    const history = () => this.recorder.runHistory();
    const stragglers = () => this.recorder.stragglerSpells();
    this.job = {
      spec,
      specHash,
      control,
      membership,
      generations,
      recovery,
      checkpointing,
      files,
      history,
      stragglers,
      events: this,
      setStatus,
      log,
    };
    return this.job;
  }

  private hello(): Promise<void> {
    return this.job!.control.broadcast({ type: 'hello', instance: this.instance, dropped: this.membership.dropped() });
  }

  /** A reconnect may have lost messages of the step in flight: abort it, so it is redone. */
  private async watchConnection(control: ControlPlane): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'reconnect') {
        this.log.warn('NATS connection re-established; the step in flight is redone');
        this.membership.reconnected();
        control.interrupt(new StepFailedError('the NATS connection was re-established mid-step', []));
      }
    }
  }

  private async close(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    await this.statusServer?.close();
    if (this.ownsConnection) await this.nc.close();
  }

  private setStatus(patch: Record<string, unknown>): void {
    this.status = { ...this.status, ...patch };
  }
}

export async function runCoordinator(opts: CoordinatorOptions): Promise<JobSummary> {
  return new Coordinator(opts).run();
}
