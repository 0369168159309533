// The sink every receiver reports dropped messages to, so "bad input never crashes a process"
// stays observable: each drop is counted by reason and logged. Metrics exporters implement
// MessageObserver; createCountingObserver is the default that counts and logs.
import type { Logger } from '../log.js';

/** Why an inbound message was dropped. */
export const INVALID_REASONS = [
  /** Larger than the receiver accepts, or a body length that does not match its header. */
  'size',
  /** Not decodable (msgpack, header block). */
  'decode',
  /** Decoded, but not the shape the schema requires. */
  'schema',
  /** Another protocol version. */
  'version',
  /** Addressed to another job. */
  'job',
  /** A chunk header field missing, repeated or not an integer, or disagreeing with the subject. */
  'header',
  /** A sender rank outside the world, or one that may not send this message. */
  'rank',
  /** A shard, chunk, offset or count outside the buffer or the shard layout. */
  'range',
  /** A wire dtype that is unknown or not the one the operation uses. */
  'dtype',
  /** A chunk already received from the same rank in the same operation. */
  'duplicate',
  /** A message for a future operation that did not fit the bounded queue. */
  'backlog',
] as const;

export type InvalidReason = (typeof INVALID_REASONS)[number];

export interface MessageObserver {
  /** A message was dropped because it is invalid. Must not throw. */
  invalid(reason: InvalidReason, detail: string, subject: string): void;
  /** A well-formed message of an operation that already ended was discarded. */
  stale?(subject: string): void;
  /** Payload bytes received on the data plane. */
  bytesIn?(n: number): void;
  /** Payload bytes published on the data plane. */
  bytesOut?(n: number): void;
}

export interface CountingObserver extends MessageObserver {
  stale(subject: string): void;
  bytesIn(n: number): void;
  bytesOut(n: number): void;
  /** Dropped messages by reason since creation (every reason present, zero when none). */
  counts(): Record<InvalidReason, number>;
  /** Total dropped messages. */
  invalidTotal(): number;
  staleTotal(): number;
  bytesInTotal(): number;
  bytesOutTotal(): number;
}

export interface CountingObserverOptions {
  /** Where drops are logged; nothing is logged without one. */
  log?: Logger;
  /** At most one log line per reason per interval; the next line says how many were not logged. */
  logIntervalMs?: number;
  /** Injected clock for tests. */
  now?: () => number;
}

export function createCountingObserver(options: CountingObserverOptions = {}): CountingObserver {
  const { log, logIntervalMs = 10_000, now = Date.now } = options;
  const counts = Object.fromEntries(INVALID_REASONS.map((r) => [r, 0])) as Record<InvalidReason, number>;
  const lastLogged = new Map<InvalidReason, number>();
  const suppressed = new Map<InvalidReason, number>();
  let stale = 0;
  let bytesIn = 0;
  let bytesOut = 0;
  return {
    invalid(reason, detail, subject) {
      counts[reason] = (counts[reason] ?? 0) + 1;
      if (!log) return;
      const t = now();
      const last = lastLogged.get(reason);
      if (last !== undefined && t - last < logIntervalMs) {
        suppressed.set(reason, (suppressed.get(reason) ?? 0) + 1);
        return;
      }
      lastLogged.set(reason, t);
      const notLogged = suppressed.get(reason) ?? 0;
      suppressed.delete(reason);
      log.warn('dropped an invalid message', {
        reason,
        detail,
        subject,
        notLoggedSinceLast: notLogged || undefined,
      });
    },
    stale: () => void stale++,
    bytesIn: (n) => void (bytesIn += n),
    bytesOut: (n) => void (bytesOut += n),
    counts: () => ({ ...counts }),
    invalidTotal: () => Object.values(counts).reduce((a, b) => a + b, 0),
    staleTotal: () => stale,
    bytesInTotal: () => bytesIn,
    bytesOutTotal: () => bytesOut,
  };
}
