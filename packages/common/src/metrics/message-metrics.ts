// Counts dropped, stale and transferred messages into Prometheus counters. It is a MessageObserver,
// so the collective and the control-plane receivers report to it without knowing about metrics;
// every call is passed on to the next observer (the one that logs), whose failures stay its own.
import { Counter, type Registry } from 'prom-client';
import { INVALID_REASONS, type MessageObserver } from '../protocol/index.js';

export function invalidMessagesCounter(registry: Registry): Counter<'reason'> {
  const counter = new Counter({
    name: 'ddp_invalid_messages_total',
    help: 'Inbound messages dropped as invalid (bad size, encoding, schema, version, job, header, rank, range, dtype, duplicate, backlog)',
    labelNames: ['reason'],
    registers: [registry],
  });
  // Every reason is exported from the start, so rate() and alerts see 0 rather than no series.
  for (const reason of INVALID_REASONS) counter.inc({ reason }, 0);
  return counter;
}

export interface MessageCounters {
  invalid: Counter<'reason'>;
  stale?: Counter;
  bytesIn?: Counter;
  bytesOut?: Counter;
}

/** An observer that counts into `counters`, then hands the same call to `next`. */
export function countingMessageObserver(counters: MessageCounters, next?: MessageObserver): MessageObserver {
  return {
    invalid(reason, detail, subject) {
      counters.invalid.inc({ reason });
      next?.invalid(reason, detail, subject);
    },
    stale(subject) {
      counters.stale?.inc();
      next?.stale?.(subject);
    },
    bytesIn(n) {
      if (n > 0) counters.bytesIn?.inc(n);
      next?.bytesIn?.(n);
    },
    bytesOut(n) {
      if (n > 0) counters.bytesOut?.inc(n);
      next?.bytesOut?.(n);
    },
  };
}
