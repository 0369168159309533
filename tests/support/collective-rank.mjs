// One rank of the multi-process collective test, run as its own `node` process against the built
// @tfjs-ddp/common. It broadcasts rank 0's seeded buffer, then all-reduces a seeded buffer per step,
// printing one JSON line with the SHA-256 of every result so the test can compare ranks bit for bit.
// Usage: node collective-rank.mjs <nats-urls> <job> <rank> <worldSize> <length> <steps> <dtype>
// (<nats-urls> comma-separated: the rank connects to each server, as a worker does).
import { createHash } from 'node:crypto';
import { connectServerPool, createNatsCollective, silentLogger } from '../../packages/common/dist/index.js';

const [urls, job, rankArg, worldArg, lengthArg, stepsArg, dtype] = process.argv.slice(2);
const [rank, worldSize, length, steps] = [rankArg, worldArg, lengthArg, stepsArg].map(Number);

// Same generator and buffers as rng() and randomBuffers() in collective-ranks.ts.
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function randomBuffers(count, n, seed) {
  const next = rng(seed);
  return Array.from({ length: count }, () =>
    Float32Array.from({ length: n }, () => (next() - 0.5) * 2 ** Math.floor(next() * 12 - 6)),
  );
}
const sha = (a) =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

const pool = await connectServerPool({ servers: urls.split(','), name: `${job}-rank-${rank}` });
const collective = await createNatsCollective(pool, {
  job,
  generation: 0,
  rank,
  worldSize,
  chunkBytes: 64 * 1024,
  timeoutMs: 20_000,
  log: silentLogger,
});
// On the first server, where the test publishes it.
const nc = pool.connections[0];
const go = nc.subscribe(`test.${job}.go`, { max: 1 });
await nc.flush();
process.stdout.write('READY\n');
for await (const _ of go) break;

const weights = rank === 0 ? randomBuffers(1, length, 1)[0] : new Float32Array(length);
await collective.broadcast(weights, { root: 0 });
const hashes = [sha(weights)];
const buf = new Float32Array(length);
for (let step = 0; step < steps; step++) {
  buf.set(randomBuffers(worldSize, length, 100 + step)[rank]);
  await collective.allReduce(buf, { dtype });
  hashes.push(sha(buf));
}
process.stdout.write(JSON.stringify({ rank, hashes, bufferAllocations: collective.stats().bufferAllocations }) + '\n');
await collective.close();
await pool.close();
