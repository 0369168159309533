// Paces one operation's publishes. nats.js publishes synchronously into an outbound buffer that
// has no bound: publishing a whole 64 MiB gradient in one go queues all of it in the socket
// (another copy of the gradient in memory) and delays the owners' reduced chunks behind it. Every
// `flushBytes` we send a flush (PING/PONG) and wait for the previous one, so at most two windows are
// in flight: the pipe never runs dry, memory stays bounded, and inbound chunks are processed
// between windows.
//
// Measured with 4 ranks as separate processes reducing 64 MiB (f32, 1 MiB chunks) through one
// nats-server on a busy 2-core machine, in the quietest rounds: 4 MiB windows 0.86-1.03 s per
// all-reduce; no flushing 0.86-1.23 s and about 40 MiB more peak RSS per rank (the socket backlog);
// 2 MiB windows 1.02-1.13 s (the pipe drains while waiting for a round trip); 8 MiB windows
// 0.89-1.08 s. Hence 4 MiB: as fast as any, with memory bounded.
import type { NatsConnection } from '@nats-io/nats-core';

export interface FlowControl {
  /** Call after each publish; resolves at once unless a window is full. */
  published(bytes: number): Promise<void>;
  /** Resolves once the server has received everything published so far. */
  drain(): Promise<void>;
}

/**
 * `op.done` settles when the operation ends; waiting stops then (its rejection propagates), and
 * `op.error`, once set, makes the next publish step throw it.
 */
export function createFlowControl(
  nc: NatsConnection,
  flushBytes: number,
  op: { readonly done: Promise<void>; readonly error?: Error },
): FlowControl {
  let pending = 0;
  let inFlight: Promise<void> | undefined;
  const wait = async (flushed: Promise<void>) => {
    flushed.catch(() => {});
    await Promise.race([flushed, op.done]);
  };
  return {
    async published(bytes) {
      if (op.error) throw op.error;
      pending += bytes;
      if (pending < flushBytes) return;
      pending = 0;
      if (inFlight) await wait(inFlight);
      inFlight = nc.flush();
      inFlight.catch(() => {});
    },
    drain: () => wait(nc.flush()),
  };
}

/**
 * One window per connection for an operation that publishes through several servers: each pipe
 * is paced on its own, so a slow server does not hold back the chunks bound for the others.
 */
export function createServerFlowControls(
  flushBytes: number,
  op: { readonly done: Promise<void>; readonly error?: Error },
): (nc: NatsConnection) => FlowControl {
  const flows = new Map<NatsConnection, FlowControl>();
  return (nc) => {
    let flow = flows.get(nc);
    if (!flow) flows.set(nc, (flow = createFlowControl(nc, flushBytes, op)));
    return flow;
  };
}
