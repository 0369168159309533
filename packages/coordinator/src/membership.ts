// Who takes part in the job: workers register (and are refused, saying why, when their job spec,
// data or protocol version differ, or the job is full), heartbeats keep them known, and those whose
// heartbeats stop are lost. Heartbeats come from a thread of the worker's own, so a worker busy in a
// long computation still sends them and is waited for (up to timeouts.stepMs, the step's deadline);
// one whose heartbeats say its main thread has been blocked longer than that is lost too. Rendezvous waits for enough of them; the current generation is a rank
// order over the registered workers, and workers registered since (newcomers, restarted members)
// join at the next step boundary.
import type { EventEmitter } from 'node:events';
import type { Msg } from '@nats-io/transport-node';
import {
  decodeMessage,
  encodeMessage,
  heartbeatSchema,
  registerReplySchema,
  registerRequestSchema,
  type JobSpec,
  type Logger,
  type MessageObserver,
} from '@tfjs-ddp/common';
import { decodeOrDrop, MAX_CONTROL_BYTES, type Members } from './control.js';
import { JobFailedError, StepFailedError } from './errors.js';

interface Member {
  workerId: string;
  backend: string;
  lastSeen: number;
  /** What its last heartbeat said: how long its main thread had been blocked then. */
  blockedMs: number;
}

export type DatasetSizes = { train: number; validation: number; test: number };

export interface MembershipOptions {
  spec: JobSpec;
  specHash: string;
  /** This coordinator process: workers of an earlier one tell by it that they must register again. */
  instance: string;
  log: Logger;
  observer: MessageObserver;
  /** Emits 'registered' with the worker id. */
  events: EventEmitter;
  /** Aborted when the job fails: a wait for workers ends with its reason. */
  signal: AbortSignal;
  /** Fails the exchange in progress: a member registered again, so its process was restarted. */
  interrupt(err: StepFailedError): void;
  /** Says hello to the workers again, so those of an earlier coordinator that missed it come over. */
  hello(): Promise<void>;
  /** The newest checkpoint, named when too few workers remain. */
  lastCheckpoint(): string | undefined;
}

export class Membership implements Members {
  private readonly registered = new Map<string, Member>();
  private datasetSizes?: DatasetSizes;
  /** Members that registered again (their process was restarted): they need a new generation. */
  private readonly restarted = new Set<string>();
  /** Workers dropped as lost that have not registered since: the hello names them. */
  private readonly droppedIds = new Set<string>();
  private current: string[] = [];
  private gen = 0;

  constructor(private readonly o: MembershipOptions) {}

  get generation(): number {
    return this.gen;
  }

  get members(): readonly string[] {
    return this.current;
  }

  /** A resumed job's generations continue above the checkpoint's. */
  continueAbove(generation: number): void {
    this.gen = Math.max(this.gen, generation);
  }

  /** The next generation: every registered worker, ranked by worker id; returns its number. */
  next(): number {
    this.gen += 1;
    this.restarted.clear();
    // Ranks follow worker ids, not arrival order, so a rerun with the same workers sums in the same order.
    this.current = [...this.registered.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    return this.gen;
  }

  /** Registered workers that are not members yet (newcomers) or were restarted since the generation formed. */
  waiting(): string[] {
    return [...this.registered.keys()].filter((id) => !this.current.includes(id) || this.restarted.has(id));
  }

  /** The dataset sizes every worker loaded (fixed by the first one accepted). */
  sizes(): DatasetSizes {
    if (!this.datasetSizes) throw new JobFailedError('no worker registered');
    return this.datasetSizes;
  }

  /** Every worker that registered, with the backend it runs on. */
  backends(): Record<string, string> {
    return Object.fromEntries([...this.registered.values()].map((m) => [m.workerId, m.backend]));
  }

  lostMembers(): number[] {
    const now = Date.now();
    return this.current.map((_, rank) => rank).filter((rank) => this.lostReason(rank, now) !== undefined);
  }

  /**
   * Why member `rank` counts as lost: gone (no heartbeat for faults.heartbeatTimeoutMs: dead, cut off
   * or frozen), or stuck (heartbeats on, but its main thread blocked longer than timeouts.stepMs, the
   * most any step may take). Undefined while it is alive, however busy.
   */
  lostReason(rank: number, now = Date.now()): string | undefined {
    const { heartbeatTimeoutMs } = this.o.spec.faults;
    const { stepMs } = this.o.spec.timeouts;
    const member = this.registered.get(this.current[rank]);
    if (!member || now - member.lastSeen > heartbeatTimeoutMs) return `no heartbeat for ${heartbeatTimeoutMs} ms`;
    const blocked = this.blockedMs(rank, now);
    if (blocked > stepMs)
      return (
        `its heartbeats go on but its main thread has been blocked for ${blocked} ms, longer than ` +
        `timeouts.stepMs = ${stepMs} ms (stuck in one computation?)`
      );
    return undefined;
  }

  /** How long member `rank`'s main thread has been blocked, by its heartbeats (0 when unknown). */
  blockedMs(rank: number, now = Date.now()): number {
    const member = this.registered.get(this.current[rank]);
    // Still blocked since its last heartbeat, if it was then.
    return member && member.blockedMs > 0 ? member.blockedMs + (now - member.lastSeen) : 0;
  }

  /** Forgets the members lost (heartbeats stopped, or main thread stuck): the next generation forms without them. */
  dropLost(): void {
    const now = Date.now();
    for (const rank of this.lostMembers()) {
      const id = this.current[rank];
      this.o.log.warn('worker lost', { rank, workerId: id, reason: this.lostReason(rank, now) });
      this.registered.delete(id);
      this.droppedIds.add(id);
      // Bounded: the most recent workers.max are the ones that can still be alive and coming back.
      for (const old of this.droppedIds) {
        if (this.droppedIds.size <= this.o.spec.workers.max) break;
        this.droppedIds.delete(old);
      }
    }
  }

  /** Workers dropped as lost that have not registered again since. */
  dropped(): string[] {
    return [...this.droppedIds];
  }

  /** Heartbeats could not arrive while NATS was away; that silence is not the workers' fault. */
  reconnected(): void {
    for (const m of this.registered.values()) m.lastSeen = Date.now();
  }

  /** Waits for the gang: workers.min, or as many as are known to be coming (up to workers.max). */
  rendezvous(gangSize = 0): Promise<void> {
    const { min, max } = this.o.spec.workers;
    return this.waitForWorkers(this.o.spec.timeouts.rendezvousMs, 'registered', Math.min(max, Math.max(min, gangSize)));
  }

  /** Waits until `min` workers are registered, or fails after `timeoutMs`. */
  async waitForWorkers(timeoutMs: number, what: string, min = this.o.spec.workers.min): Promise<void> {
    const { max } = this.o.spec.workers;
    this.o.log.info('waiting for workers', { registered: this.registered.size, min, max, timeoutMs });
    const deadline = Date.now() + timeoutMs;
    let hello = Date.now();
    while (this.registered.size < min) {
      this.o.signal.throwIfAborted();
      if (Date.now() > deadline) {
        const last = this.o.lastCheckpoint();
        throw new JobFailedError(
          `only ${this.registered.size} of workers.min = ${min} workers ${what} within ${timeoutMs} ms; ` +
            `start more workers (tfjs-ddp worker --job FILE --nats URL) or lower workers.min` +
            (last ? `; the last checkpoint is ${last}` : ''),
        );
      }
      // Repeated, so workers of an earlier coordinator that missed the first one still come over.
      if (Date.now() - hello > 2_000) {
        hello = Date.now();
        await this.o.hello();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  onRegister(m: Msg): void {
    const { spec, specHash, instance, log } = this.o;
    const refuse = (workerId: string, reason: string) => {
      log.warn('refused worker', { workerId, reason });
      if (m.reply)
        m.respond(
          encodeMessage(registerReplySchema, { type: 'registered', job: spec.name, accepted: false, reason, instance }),
        );
    };
    const decoded = decodeMessage(registerRequestSchema, m.data, { maxBytes: MAX_CONTROL_BYTES, job: spec.name });
    if (!decoded.ok) {
      this.o.observer.invalid(decoded.reason, decoded.detail, m.subject);
      // A worker of another version gets an answer, so it fails at once instead of waiting forever.
      if (decoded.reason === 'version') refuse('(unknown)', `protocol version mismatch: ${decoded.detail}`);
      return;
    }
    const req = decoded.value;
    if (req.specHash !== specHash)
      return refuse(
        req.workerId,
        `job spec differs: worker has spec hash ${req.specHash}, coordinator has ${specHash}; give every process the same job file`,
      );
    if (this.datasetSizes && JSON.stringify(this.datasetSizes) !== JSON.stringify(req.sizes)) {
      return refuse(
        req.workerId,
        `dataset sizes differ: this worker loaded ${JSON.stringify(req.sizes)}, others ${JSON.stringify(this.datasetSizes)}; every worker must read the same data`,
      );
    }
    const known = this.registered.get(req.workerId);
    if (!known && this.registered.size >= spec.workers.max)
      return refuse(req.workerId, `the job already has workers.max = ${spec.workers.max} workers`);
    this.registered.set(req.workerId, {
      workerId: req.workerId,
      backend: req.backend,
      lastSeen: Date.now(),
      blockedMs: 0,
    });
    this.droppedIds.delete(req.workerId);
    // Fixed by the first worker accepted, for the whole job: the data plan is built on it.
    this.datasetSizes ??= req.sizes;
    // A member registering again was restarted: its old process is gone, so is its part of the step in flight.
    const rank = this.current.indexOf(req.workerId);
    if (rank >= 0) {
      this.restarted.add(req.workerId);
      this.o.interrupt(new StepFailedError(`rank ${rank} (${req.workerId}) restarted and registered again`, [rank]));
    }
    log.info('worker registered', {
      workerId: req.workerId,
      backend: req.backend,
      host: req.host,
      registered: this.registered.size,
      min: spec.workers.min,
    });
    m.respond(
      encodeMessage(registerReplySchema, {
        type: 'registered',
        job: spec.name,
        accepted: true,
        instance,
        generation: this.gen,
      }),
    );
    this.o.events.emit('registered', req.workerId);
  }

  onHeartbeat(m: Msg): void {
    const hb = decodeOrDrop<{ workerId: string; gen: number; blockedMs?: number }>(heartbeatSchema, m, {
      job: this.o.spec.name,
      observer: this.o.observer,
    });
    if (!hb) return;
    // A restarted coordinator continues above any generation its workers still hold.
    if (hb.gen > this.gen && this.current.length === 0) this.gen = hb.gen;
    const member = this.registered.get(hb.workerId);
    if (!member) return;
    member.lastSeen = Date.now();
    member.blockedMs = hb.blockedMs ?? 0;
  }
}
