// The coordinator's end of the control plane: commands out on one subject (workers receive them in
// the order sent), worker reports in, decoded and validated, and the waits on those reports that
// every exchange with the workers is built from. A wait always ends: the reports it needs came, its
// deadline passed, a member went silent, the exchange was interrupted (a member restarted, NATS
// reconnected) or the job was aborted.
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import {
  commandSchema,
  decodeMessage,
  encodeMessage,
  maxPayload,
  reportSchema,
  type Command,
  type JobSpec,
  type Logger,
  type MessageObserver,
  type Report,
} from '@tfjs-ddp/common';
import { StepFailedError } from './errors.js';

/** The largest register, heartbeat or command message accepted; reports may be as large as the server allows. */
export const MAX_CONTROL_BYTES = 1 << 20;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A command as its sender writes it: the job id is added on the way out. */
export type CommandBody = DistributiveOmit<Command, 'job'>;

/** The current membership as the waits need it (membership.ts keeps it). */
export interface Members {
  readonly generation: number;
  /** Worker ids in rank order. */
  readonly members: readonly string[];
  /** Ranks of the current generation that are lost: heartbeats stopped, or main thread stuck. */
  lostMembers(): number[];
  /** Why rank `rank` is lost (undefined while it is alive). */
  lostReason(rank: number): string | undefined;
  /** How long rank `rank`'s main thread has been blocked in one computation, by its heartbeats. */
  blockedMs(rank: number): number;
}

export interface ReportWait<T> {
  timeoutMs: number;
  /** Sees every report while the wait lasts; settles it with `done` or `fail`. */
  onReport(r: Report, done: (value: T) => void, fail: (err: Error) => void): void;
  onTimeout(): Error;
  /** Checked every 200 ms: an error ends the wait (a member it waits for went silent). */
  lost(): Error | undefined;
}

export interface ControlPlaneOptions {
  nc: NatsConnection;
  spec: JobSpec;
  subject: string;
  log: Logger;
  observer: MessageObserver;
  /** Aborted when the job fails: every wait in progress rejects with its reason. */
  signal: AbortSignal;
  members: Members;
}

/**
 * Decodes and validates a message of `schema`; an invalid one is dropped, counted and logged by the
 * observer (at most every few seconds per reason: garbage must not flood the log).
 */
export function decodeOrDrop<T>(
  schema: Parameters<typeof decodeMessage>[0],
  m: Msg,
  o: { job: string; observer: MessageObserver; maxBytes?: number },
): T | undefined {
  const r = decodeMessage(schema, m.data, { maxBytes: o.maxBytes ?? MAX_CONTROL_BYTES, job: o.job });
  if (!r.ok) {
    o.observer.invalid(r.reason, r.detail, m.subject);
    return undefined;
  }
  return r.value as T;
}

export class ControlPlane {
  private readonly waiters = new Set<(r: Report) => void>();
  /** Fail the exchange in progress (not the job): a member restarted or NATS reconnected. */
  private readonly interrupters = new Set<(err: StepFailedError) => void>();
  private nextOpId = 1;
  private nextCommandId = 1;
  /** Flushes in progress: a flush started while the connection closes is never answered, so closing fails them. */
  private readonly flushing = new Set<(err: Error) => void>();

  constructor(private readonly o: ControlPlaneOptions) {
    void o.nc.closed().then(() => {
      for (const fail of [...this.flushing]) fail(new Error('the NATS connection was closed'));
    });
  }

  /** The largest message the server takes: what files and checkpoint states are chunked to. */
  get maxPayload(): number {
    return maxPayload(this.o.nc);
  }

  /** The next collective operation id: every id below it was handed out already. */
  get nextOp(): number {
    return this.nextOpId;
  }

  /** A block of `n` collective operation ids, fresh for this job. */
  takeOps(n: number): number {
    const op = this.nextOpId;
    this.nextOpId += n;
    return op;
  }

  /** A fresh id for a command whose reports must be told apart from those of earlier ones. */
  takeId(): number {
    return this.nextCommandId++;
  }

  onReport(m: Msg): void {
    // Reports include the model's files in chunks as large as the server allows.
    const r = decodeOrDrop<Report>(reportSchema, m, {
      job: this.o.spec.name,
      observer: this.o.observer,
      maxBytes: this.maxPayload,
    });
    if (!r) return;
    for (const w of [...this.waiters]) w(r);
  }

  async broadcast(cmd: CommandBody): Promise<void> {
    const full = { ...cmd, job: this.o.spec.name } as Command;
    this.o.nc.publish(this.o.subject, encodeMessage(commandSchema, full));
    try {
      await this.flush();
    } catch (err) {
      // While NATS is away the client keeps the command and sends it after reconnecting; the reconnect
      // aborts the step in flight, so a command that still got lost is redone by the recovery.
      if (this.o.nc.isClosed()) throw err;
      this.o.log.warn('NATS is unreachable; the command is sent once the connection is back', {
        type: cmd.type,
        error: (err as Error).message,
      });
    }
  }

  /** The server has every command sent so far; rejects when the connection closes before it answers. */
  private async flush(): Promise<void> {
    let fail!: (err: Error) => void;
    const closed = new Promise<never>((_, reject) => (fail = reject));
    this.flushing.add(fail);
    try {
      await Promise.race([this.o.nc.flush(), closed]);
    } finally {
      this.flushing.delete(fail);
    }
  }

  /** Fails the exchange in progress, if any, so the recovery redoes it. */
  interrupt(err: StepFailedError): void {
    for (const i of [...this.interrupters]) i(err);
  }

  /**
   * One wait on worker reports, registered before the caller sends its command: every report goes to
   * `wait.onReport` until it settles; the deadline, a lost member, an interruption or an abort of the
   * job end it with an error.
   */
  awaitReports<T>(wait: ReportWait<T>): Promise<T> {
    const { signal } = this.o;
    const result = new Promise<T>((resolve, reject) => {
      const finish = (err?: Error, value?: T) => {
        clearTimeout(timer);
        clearInterval(watch);
        this.waiters.delete(waiter);
        this.interrupters.delete(finish);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value as T);
      };
      const onAbort = () => finish(signal.reason as Error);
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
      this.interrupters.add(finish);
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
    });
    // Callers await it only after sending their command; an abort meanwhile must not be an unhandled rejection.
    result.catch(() => {});
    return result;
  }

  /**
   * Waits until every current member sent a report matching `accept`. A `failed` report of the
   * current generation, the deadline or a member gone silent rejects with a StepFailedError naming
   * the ranks that did not answer.
   */
  collect<R extends Report>(what: string, accept: (r: Report) => r is R, timeoutMs: number): Promise<Map<number, R>> {
    const { members: m, spec } = this.o;
    const got = new Map<number, R>();
    const world = m.members.length;
    const named = (ranks: number[]) => ranks.map((i) => `${i} (${m.members[i]})`).join(', ');
    return this.awaitReports({
      timeoutMs,
      onReport: (r, done, fail) => {
        if (r.type === 'failed' && r.gen === m.generation) {
          fail(new StepFailedError(`${what} failed on rank ${r.rank} (${r.workerId}): ${r.error}`, [r.rank]));
          return;
        }
        if (!accept(r)) return;
        const rank = m.members.indexOf(r.workerId);
        if (rank < 0) return;
        got.set(rank, r);
        if (got.size === world) done(got);
      },
      onTimeout: () => {
        const missing = m.members.map((_, i) => i).filter((i) => !got.has(i));
        // Alive but slow (heartbeats on, main thread busy): a deadline too short for the work, not a loss.
        const busy = missing
          .map((i) => ({ i, ms: m.blockedMs(i) }))
          .filter(({ ms }) => ms > spec.faults.heartbeatTimeoutMs)
          .map(({ i, ms }) => `rank ${i} is alive but its main thread has been busy for ${ms} ms`);
        return new StepFailedError(
          `${what} timed out after ${timeoutMs} ms: no report from rank${missing.length > 1 ? 's' : ''} ${named(missing)}` +
            (busy.length > 0 ? ` (${busy.join('; ')}: raise timeouts.stepMs if its work takes this long)` : ''),
          missing,
        );
      },
      lost: () => {
        const lost = m.lostMembers().filter((rank) => !got.has(rank));
        if (lost.length === 0) return undefined;
        return new StepFailedError(
          `${what}: ` +
            lost.map((r) => `rank ${r} (${m.members[r]}) lost: ${m.lostReason(r) ?? 'no heartbeat'}`).join(', ') +
            `, and no report of ${what}`,
          lost,
        );
      },
    });
  }
}
