// This worker's place in the job: registered with which coordinator (and at which of its
// generations), the generation and rank it holds now with that generation's collective (the
// heartbeats that say both are sent by heartbeats.ts). A worker the coordinator dropped (it froze
// or was cut off) or whose coordinator was replaced registers again, and joins at the next step
// boundary.
import {
  createNatsCollective,
  type Collective,
  type JobSpec,
  type JobSubjects,
  type Logger,
  type MessageObserver,
  type NatsConnection,
  type NatsServerPool,
  type WorkerMetrics,
} from '@tfjs-ddp/common';
import { register, RegistrationRefusedError, type RegistrationRequest } from './registration.js';

export interface WorkerMembershipOptions {
  nc: NatsConnection;
  /** The collective's connections, one per NATS server of the job (`nc` itself when there is one). */
  servers: NatsServerPool;
  spec: JobSpec;
  subjects: JobSubjects;
  workerId: string;
  log: Logger;
  observer: MessageObserver;
  metrics: WorkerMetrics;
  registration: RegistrationRequest;
  /** Aborted by the coordinator's stop: a registration still retrying gives up, the stop is next. */
  stopped: AbortSignal;
}

export class WorkerMembership {
  /** The generation this worker holds (or was last told of). */
  gen = 0;
  /** Its rank there; -1 when not a member. */
  rank = -1;
  private collective?: Collective;
  /** The coordinator process this worker registered with. */
  private instance = '';
  /** That coordinator's generation when it accepted this worker: every later one must include it. */
  private registeredAt = 0;
  /** Registrations completed: a hello that arrived before the last one was sent before it, too. */
  registrations = 0;

  constructor(private readonly o: WorkerMembershipOptions) {}

  async register(): Promise<void> {
    const { nc, subjects, registration, log, stopped } = this.o;
    ({ instance: this.instance, generation: this.registeredAt } = await register(
      nc,
      subjects,
      registration,
      log,
      stopped,
    ));
    this.registrations += 1;
  }

  /** Whether a hello comes from another coordinator than the one this worker registered with. */
  isNewCoordinator(instance: string): boolean {
    return instance !== this.instance;
  }

  /** Whether a hello of this worker's coordinator says it dropped this worker (as lost). */
  droppedIn(hello: { instance: string; dropped?: readonly string[] }): boolean {
    return !this.isNewCoordinator(hello.instance) && (hello.dropped ?? []).includes(this.o.workerId);
  }

  /**
   * Whether generation `gen` leaves this worker out although it formed after the coordinator
   * accepted it: the coordinator dropped it.
   */
  droppedBy(gen: number, members: readonly string[]): boolean {
    return gen > this.registeredAt && !members.includes(this.o.workerId);
  }

  /** Fails the collective operation in flight (and with `before`, every later one with a lower id). */
  abort(reason: string, opts?: { before?: number }): void {
    this.collective?.abort(reason, opts);
  }

  requireCollective(): Collective {
    if (!this.collective) throw new Error(`no collective for generation ${this.gen}; this worker is not a member`);
    return this.collective;
  }

  /** Joins generation `gen` of `members`: subscribes its collective; returns false when not a member. */
  async join(gen: number, members: readonly string[]): Promise<boolean> {
    const { nc, spec, log, metrics } = this.o;
    await this.leave();
    this.gen = gen;
    this.rank = members.indexOf(this.o.workerId);
    metrics.joined({ generation: gen, rank: this.rank, worldSize: members.length });
    if (this.rank < 0) {
      log.info('not a member of this generation; waiting', { generation: gen });
      return false;
    }
    this.collective = await createNatsCollective(this.o.servers, {
      job: spec.name,
      generation: gen,
      rank: this.rank,
      worldSize: members.length,
      // Chunks name their sender's worker id, which per-worker NATS permissions bind to its credential.
      members: [...members],
      timeoutMs: spec.timeouts.stepMs,
      chunkBytes: spec.allreduce.chunkBytes,
      observer: this.o.observer,
      log: log.child('collective'),
    });
    await nc.flush();
    log.info('joined generation', { generation: gen, rank: this.rank, worldSize: members.length });
    return true;
  }

  /**
   * Out of the membership since generation `gen`: leave the old generation and register again.
   * Returns the coordinator's reason when it refuses (a replacement took the place).
   */
  async registerAgain(gen: number): Promise<string | undefined> {
    this.o.log.warn('dropped from the job (not a member since this generation); registering again', {
      generation: gen,
      previous: this.gen,
    });
    await this.leave();
    this.gen = gen;
    this.o.metrics.joined({ generation: gen, rank: -1, worldSize: 0 });
    try {
      await this.register();
      return undefined;
    } catch (err) {
      // Stopped meanwhile: the stop command is next in the queue.
      if (this.o.stopped.aborted) return undefined;
      if (!(err instanceof RegistrationRefusedError)) throw err;
      this.o.log.warn('not readmitted; exiting', { reason: err.message });
      return err.message;
    }
  }

  /** Another coordinator took over: leave the generation and register with it. */
  async rejoin(): Promise<void> {
    this.o.log.info('a new coordinator started; registering again', { previous: this.instance });
    await this.leave();
    await this.register().catch((err: unknown) => {
      // Stopped meanwhile: the stop command is next in the queue.
      if (!this.o.stopped.aborted) throw err;
    });
  }

  /** Closes the collective; the caller stops too, the connection stays open. */
  close(): Promise<void> {
    return this.leave();
  }

  private async leave(): Promise<void> {
    await this.collective?.close();
    this.collective = undefined;
    this.rank = -1;
  }
}
