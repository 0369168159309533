// One rank of bench:compare's compressed all-reduces, run as its own process with its own NATS
// connection: `hook-rank.mjs <url> <job> <rank> <world>`. Per `case` message it builds the
// communication hook the case names, runs warm-up and timed reductions (each after a barrier) and
// returns the times, the bytes its connection received and a digest of the result, which must be
// equal on every rank.
import { createHash } from 'node:crypto';
import { COMM_HOOK_OPS, connectNats, createCommHook, createNatsCollective, silentLogger } from '@tfjs-ddp/common';
import { serve } from '../allreduce/serve.mjs';

const [url, job, rankArg, worldArg] = process.argv.slice(2);
const rank = Number(rankArg);
const world = Number(worldArg);
const OP_TIMEOUT_MS = 300_000;

const nc = await connectNats({ servers: [url], name: `bench-hook-rank-${rank}` });
const collective = await createNatsCollective(nc, {
  job,
  generation: 1,
  rank,
  worldSize: world,
  timeoutMs: OP_TIMEOUT_MS,
  log: silentLogger,
});
let nextOp = 0;

/**
 * A gradient-like input: magnitudes over 31 binades, different on every rank, the same every run.
 * A table indexed by a hash of the index, scaled by a jitter from the rest of the hash so values
 * rarely repeat, is quick to fill even for 64 MiB.
 */
function inputFor(length) {
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

serve(
  {
    async case({ floats, hook: spec, shapes, warmup, iters }) {
      const hook = createCommHook(spec, shapes, { seed: 1 });
      const input = inputFor(floats);
      const work = new Float32Array(floats);
      const ms = [];
      const inBytes = [];
      for (let i = 0; i < warmup + iters; i++) {
        work.set(input);
        const before = nc.stats().inBytes;
        await collective.barrier({ op: nextOp++, timeoutMs: OP_TIMEOUT_MS });
        const t0 = performance.now();
        await hook.reduce(work, collective, { op: nextOp, timeoutMs: OP_TIMEOUT_MS });
        const took = performance.now() - t0;
        nextOp += COMM_HOOK_OPS;
        if (i >= warmup) {
          ms.push(took);
          inBytes.push(nc.stats().inBytes - before);
        }
      }
      const digest = createHash('sha256').update(new Uint8Array(work.buffer)).digest('hex');
      return { type: 'result', ms, inBytes, digest };
    },
  },
  async () => {
    await collective.close();
    await nc.drain();
  },
);
process.send({ type: 'ready' });
