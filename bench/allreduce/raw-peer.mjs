// One side of the raw NATS bandwidth baseline, run as its own process:
// `raw-peer.mjs <url> subscriber` counts bytes on a subject and times first to last byte,
// `raw-peer.mjs <url> publisher` publishes a given amount in fixed-size messages.
import { connectNats } from '@tfjs-ddp/common';
import { serve } from './serve.mjs';

const SUBJECT = 'bench.raw';
const [url, role] = process.argv.slice(2);
if (role !== 'subscriber' && role !== 'publisher') {
  throw new Error(`raw-peer.mjs: expected role "subscriber" or "publisher", got "${role}"`);
}
const nc = await connectNats({ servers: [url], name: `bench-raw-${role}` });

const handlers =
  role === 'subscriber'
    ? {
        async listen({ totalBytes }) {
          let received = 0;
          let firstAt = 0;
          let firstBytes = 0;
          const sub = nc.subscribe(SUBJECT, {
            callback: (err, msg) => {
              if (err) {
                process.send({ type: 'error', message: `subscription on ${SUBJECT} failed: ${err.message}` });
                return;
              }
              const now = performance.now();
              if (received === 0) {
                firstAt = now;
                firstBytes = msg.data.length;
              }
              received += msg.data.length;
              if (received >= totalBytes) {
                sub.unsubscribe();
                process.send({ type: 'received', bytes: received, firstBytes, ms: now - firstAt });
              }
            },
          });
          // The subscription must be known to the server before the publisher starts.
          await nc.flush();
          return { type: 'listening' };
        },
      }
    : {
        async publish({ totalBytes, chunkBytes }) {
          const payload = new Uint8Array(chunkBytes).fill(7);
          for (let sent = 0; sent < totalBytes; sent += chunkBytes) {
            nc.publish(SUBJECT, sent + chunkBytes <= totalBytes ? payload : payload.subarray(0, totalBytes - sent));
          }
          await nc.flush();
          return { type: 'published' };
        },
      };

serve(handlers, () => nc.drain());
process.send({ type: 'ready' });
