// One all-reduce rank of the benchmarks, run as its own process with its own NATS connections:
// `rank.mjs <urls> <job> <rank> <world>`, <urls> comma-separated, one connection to each server (the
// collective spreads its shards over them). It keeps one collective for the whole run. Per `case`
// message it runs warm-up and timed plain all-reduces and checks every result; per `hook-case`
// message (bench:compare's compressed variants) it builds the communication hook the case names,
// runs warm-up and timed reductions and returns a digest of the result, which must be equal on
// every rank.
import { createHash } from 'node:crypto';
import { COMM_HOOK_OPS, connectServerPool, createCommHook, createNatsCollective, silentLogger } from '@tfjs-ddp/common';
import { serve } from './serve.mjs';

const [urls, job, rankArg, worldArg] = process.argv.slice(2);
const rank = Number(rankArg);
const world = Number(worldArg);
// Generous: a 64 MiB all-reduce among 4 ranks sharing 2 cores takes seconds, not milliseconds.
const OP_TIMEOUT_MS = 300_000;
// Values are (rank+1)·(i mod 7 + 1), so every reduced element is the small integer
// N(N+1)/2·(i mod 7 + 1), exact in f16 and bf16, and a shard or chunk written to the wrong
// offset shows up as a wrong value.
const PERIOD = 7;

const pool = await connectServerPool({ servers: urls.split(','), name: `bench-rank-${rank}` });
const collective = await createNatsCollective(pool, {
  job,
  generation: 1,
  rank,
  worldSize: world,
  timeoutMs: OP_TIMEOUT_MS,
  log: silentLogger,
});
// Every call names its op id: a hook takes COMM_HOOK_OPS ids at a time, which the collective's own
// count (one per call) would not skip.
let nextOp = 0;
const barrier = () => collective.barrier({ op: nextOp++, timeoutMs: OP_TIMEOUT_MS });

let buffers;
function buffersFor(length) {
  if (buffers?.input.length === length) return buffers;
  const input = new Float32Array(length);
  const expected = new Float32Array(length);
  const total = (world * (world + 1)) / 2;
  for (let i = 0; i < length; i++) {
    const k = (i % PERIOD) + 1;
    input[i] = (rank + 1) * k;
    expected[i] = total * k;
  }
  buffers = { input, expected, work: new Float32Array(length) };
  return buffers;
}

function check(work, expected, dtype, iteration) {
  for (let i = 0; i < work.length; i++) {
    if (work[i] !== expected[i]) {
      throw new Error(
        `rank ${rank}: wrong all-reduce result (${dtype}, ${work.length} floats, all-reduce #${iteration + 1} of the case): ` +
          `element ${i} is ${work[i]}, expected ${expected[i]} = sum over ${world} ranks of (rank+1)·${(i % PERIOD) + 1}`,
      );
    }
  }
}

/**
 * A gradient-like input for the hooks: magnitudes over 31 binades, different on every rank, the
 * same every run. A table indexed by a hash of the index, scaled by a jitter from the rest of the
 * hash so values rarely repeat, is quick to fill even for 64 MiB.
 */
function gradientLike(length) {
  const table = new Float32Array(65536);
  let s = (rank + 1) * 0x9e3779b1;
  for (let j = 0; j < table.length; j++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    table[j] = (s / 2 ** 32 - 0.5) * 2 ** ((s >>> 27) - 16);
  }
  const input = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const h = Math.imul(i + rank * 0x632be5ab, 0x9e3779b1) >>> 0;
    input[i] = table[h >>> 16] * (1 + (h & 0xffff) * 2 ** -17);
  }
  return input;
}

/**
 * Runs `reduce` on `work` after a barrier and times it. The received bytes are counted from before
 * the barrier: a rank that leaves it first may already be sending to ranks still inside it. The
 * barrier's own few hundred bytes are noise next to a buffer.
 */
async function timed(reduce) {
  const before = receivedBytes();
  await barrier();
  const t0 = performance.now();
  await reduce();
  const ms = performance.now() - t0;
  return { ms, inBytes: receivedBytes() - before };
}

function receivedBytes() {
  return pool.connections.reduce((sum, nc) => sum + nc.stats().inBytes, 0);
}

serve(
  {
    async case({ floats, dtype, warmup, iters }) {
      const { input, expected, work } = buffersFor(floats);
      const ms = [];
      const inBytes = [];
      for (let i = 0; i < warmup + iters; i++) {
        work.set(input);
        const r = await timed(() => collective.allReduce(work, { dtype, op: nextOp++, timeoutMs: OP_TIMEOUT_MS }));
        // Every rank is done before any checks its result: the check's pass over the buffer would
        // otherwise take a core from ranks still inside the timed operation.
        await barrier();
        check(work, expected, dtype, i);
        if (i >= warmup) {
          ms.push(r.ms);
          inBytes.push(r.inBytes);
        }
      }
      return { type: 'result', ms, inBytes };
    },
    async 'hook-case'({ floats, hook: spec, shapes, warmup, iters }) {
      const hook = createCommHook(spec, shapes, { seed: 1 });
      const input = gradientLike(floats);
      const work = new Float32Array(floats);
      const ms = [];
      const inBytes = [];
      for (let i = 0; i < warmup + iters; i++) {
        work.set(input);
        const r = await timed(() => {
          const op = nextOp;
          nextOp += COMM_HOOK_OPS;
          return hook.reduce(work, collective, { op, timeoutMs: OP_TIMEOUT_MS });
        });
        if (i >= warmup) {
          ms.push(r.ms);
          inBytes.push(r.inBytes);
        }
      }
      const digest = createHash('sha256').update(new Uint8Array(work.buffer)).digest('hex');
      return { type: 'result', ms, inBytes, digest };
    },
  },
  async () => {
    await collective.close();
    await pool.close();
  },
);
process.send({ type: 'ready' });
