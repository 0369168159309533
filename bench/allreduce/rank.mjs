// One all-reduce rank of the benchmark, run as its own process with its own NATS connection:
// `rank.mjs <url> <job> <rank> <world>`. It keeps one collective for the whole run and, per
// `case` message, runs warm-up and timed all-reduces and checks every result.
import { connectNats, createNatsCollective, silentLogger } from '@tfjs-ddp/common';
import { serve } from './serve.mjs';

const [url, job, rankArg, worldArg] = process.argv.slice(2);
const rank = Number(rankArg);
const world = Number(worldArg);
// Generous: a 64 MiB all-reduce among 4 ranks sharing 2 cores takes seconds, not milliseconds.
const OP_TIMEOUT_MS = 300_000;
// Values are (rank+1)·(i mod 7 + 1), so every reduced element is the small integer
// N(N+1)/2·(i mod 7 + 1), exact in f16 and bf16, and a shard or chunk written to the wrong
// offset shows up as a wrong value.
const PERIOD = 7;

const nc = await connectNats({ servers: [url], name: `bench-rank-${rank}` });
const collective = await createNatsCollective(nc, {
  job,
  generation: 1,
  rank,
  worldSize: world,
  timeoutMs: OP_TIMEOUT_MS,
  log: silentLogger,
});

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

async function timedAllReduce(work, dtype) {
  // Counted from before the barrier: a rank that leaves it first may already be sending to
  // ranks still inside it. The barrier's own few hundred bytes are noise next to a buffer.
  const before = nc.stats().inBytes;
  await collective.barrier();
  const t0 = performance.now();
  await collective.allReduce(work, { dtype, timeoutMs: OP_TIMEOUT_MS });
  const ms = performance.now() - t0;
  return { ms, inBytes: nc.stats().inBytes - before };
}

serve(
  {
    async case({ floats, dtype, warmup, iters }) {
      const { input, expected, work } = buffersFor(floats);
      const ms = [];
      const inBytes = [];
      for (let i = 0; i < warmup + iters; i++) {
        work.set(input);
        const r = await timedAllReduce(work, dtype);
        // Every rank is done before any checks its result: the check's pass over the buffer would
        // otherwise take a core from ranks still inside the timed operation.
        await collective.barrier();
        check(work, expected, dtype, i);
        if (i >= warmup) {
          ms.push(r.ms);
          inBytes.push(r.inBytes);
        }
      }
      return { type: 'result', ms, inBytes };
    },
  },
  async () => {
    await collective.close();
    await nc.drain();
  },
);
process.send({ type: 'ready' });
