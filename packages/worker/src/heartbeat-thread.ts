// Entry of the worker's heartbeat thread (started by heartbeats.ts): its own NATS connection and its
// own clock, so heartbeats go out while the main thread is blocked in a long computation. Every
// heartbeat carries what the main thread last ticked (generation, rank, tensors) and `blockedMs`, how
// long ago that tick was. It loads only @tfjs-ddp/common/nats, not TensorFlow.js.
import { parentPort, workerData } from 'node:worker_threads';
import { connectNats, encodeMessage, heartbeatSchema, type NatsConnection } from '@tfjs-ddp/common/nats';
import type { HeartbeatThreadData, HeartbeatThreadEvent, HeartbeatTick } from './heartbeats.js';

const port = parentPort;
if (!port)
  throw new Error('heartbeat-thread.js is the entry of a worker thread (heartbeats.ts starts it), not a program');
const data = workerData as HeartbeatThreadData;
const send = (e: HeartbeatThreadEvent) => port.postMessage(e);

let nc: NatsConnection;
try {
  nc = await connectNats(data.nats);
} catch (err) {
  send({ type: 'failed', error: `cannot open its NATS connection: ${(err as Error).message}` });
  process.exit(1);
}

let state: Extract<HeartbeatTick, { type: 'tick' }> | undefined;
let tickedAt = 0;
let stopping = false;

const beat = setInterval(() => {
  if (!state) return;
  try {
    nc.publish(
      data.subject,
      encodeMessage(heartbeatSchema, {
        type: 'heartbeat',
        job: data.job,
        workerId: data.workerId,
        gen: state.gen,
        rank: state.rank,
        tensors: state.tensors,
        blockedMs: Math.round(performance.now() - tickedAt),
      }),
    );
  } catch (err) {
    stop(`cannot publish a heartbeat: ${(err as Error).message}`);
  }
}, data.everyMs);

function stop(error?: string): void {
  if (stopping) return;
  stopping = true;
  clearInterval(beat);
  if (error) send({ type: 'failed', error });
  void nc
    .drain()
    .catch(() => nc.close())
    .finally(() => process.exit(error ? 1 : 0));
}

port.on('message', (m: HeartbeatTick) => {
  if (m.type === 'stop') return stop();
  state = m;
  tickedAt = performance.now();
});

// The client reconnects by itself (forever, by the worker's options); a connection closed for good
// while the worker runs means no more heartbeats, which the worker must hear of.
void nc.closed().then((err) => {
  if (!stopping) stop(`its NATS connection closed${err ? `: ${err.message}` : ''}`);
});

send({ type: 'connected' });
