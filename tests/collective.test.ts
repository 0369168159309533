// The NATS all-reduce against a real nats-server, every rank on its own connection: exact rank-order
// sums, bit-identical replicas in every wire format, staging reuse across steps, ranks that run
// ahead, broadcast and barrier.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WireDtype } from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import {
  CHUNK_BYTES,
  expectSameBits,
  expectedSum,
  randomBuffers,
  startRanks,
  until,
  type Ranks,
} from './support/collective-ranks.js';

let nats: NatsFixture;
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  await nats?.stop();
});

async function allReduceAll(ranks: Ranks, buffers: Float32Array[], dtype: WireDtype = 'f32'): Promise<void> {
  await Promise.all(ranks.collectives.map((c, r) => c.allReduce(buffers[r], { dtype })));
}

function expectIdentical(buffers: Float32Array[], expected: Float32Array): void {
  for (const [r, b] of buffers.entries()) expectSameBits(b, expected, `rank ${r} against the rank-order sum`);
}

describe.each([2, 3, 4])('all-reduce with %i ranks', (worldSize) => {
  let ranks: Ranks;
  beforeAll(async () => {
    ranks = await startRanks(nats.urls, worldSize, { chunkBytes: CHUNK_BYTES });
  });
  afterAll(async () => {
    await ranks?.close();
  });

  // Shorter than the world, not divisible by the world or the chunk, exactly one chunk per shard, many chunks.
  const lengths = [0, 1, 2, 1023, 1024 * worldSize, 1024 * worldSize + 5, 10_007, 50_000];

  it.each(lengths)('sums %i f32 elements in rank order, identically on every rank', async (length) => {
    const inputs = randomBuffers(worldSize, length, length * 31 + worldSize);
    const buffers = inputs.map((b) => Float32Array.from(b));
    await allReduceAll(ranks, buffers);
    expectIdentical(buffers, expectedSum(inputs));
    expect(ranks.observers.map((o) => o.invalidTotal())).toEqual(ranks.observers.map(() => 0));
  });

  // Each contribution is rounded once to the wire format (relative error ≤ u), the fp32 sum adds at
  // most N·2^-24 relative, and the owner's result is rounded once more (≤ u): so the distance to the
  // exact sum is within (2u + N·2^-23)·Σ|x| plus, for f16, half its smallest subnormal per rounding.
  it.each([
    ['f16', 2 ** -11, 2 ** -25],
    ['bf16', 2 ** -8, 0],
  ] as const)('sums in %s on the wire identically on every rank, within its precision', async (dtype, u, tiny) => {
    const length = 20_011;
    const inputs = randomBuffers(worldSize, length, 99 + worldSize);
    const buffers = inputs.map((b) => Float32Array.from(b));
    await allReduceAll(ranks, buffers, dtype);
    expectIdentical(buffers, expectedSum(inputs, dtype));
    let worst = 0;
    for (let i = 0; i < length; i++) {
      let exact = 0;
      let magnitude = 0;
      for (const b of inputs) {
        exact += b[i];
        magnitude += Math.abs(b[i]);
      }
      const error = Math.abs(buffers[0][i] - exact);
      const bound = (2 * u + worldSize * 2 ** -23) * magnitude + (worldSize + 1) * tiny;
      if (error > bound)
        expect.fail(`element ${i}: ${buffers[0][i]} is further than ${bound} from the exact sum ${exact}`);
      if (magnitude > 0) worst = Math.max(worst, error / magnitude);
    }
    // The bound is not loose by orders of magnitude: the sum really went through half precision.
    expect(worst).toBeGreaterThan(u / 8);
  });
});

describe('across consecutive operations', () => {
  let ranks: Ranks;
  beforeAll(async () => {
    ranks = await startRanks(nats.urls, 3, { chunkBytes: CHUNK_BYTES });
  });
  afterAll(async () => {
    await ranks?.close();
  });

  it('reuses staging and scratch memory when the caller reuses its buffer', async () => {
    const buffers = [0, 1, 2].map(() => new Float32Array(9_000));
    const allocations = () => ranks.collectives.map((c) => c.stats().bufferAllocations);
    for (let step = 0; step < 5; step++) {
      const inputs = randomBuffers(3, 9_000, 1000 + step);
      buffers.forEach((b, r) => b.set(inputs[r]));
      await allReduceAll(ranks, buffers);
      expectIdentical(buffers, expectedSum(inputs));
      // Owners stage their peers' contributions; allocated on the first step only.
      expect(allocations(), `step ${step}`).toEqual([1, 1, 1]);
    }
    for (let step = 0; step < 2; step++) {
      const inputs = randomBuffers(3, 9_000, 2000 + step);
      buffers.forEach((b, r) => b.set(inputs[r]));
      await allReduceAll(ranks, buffers, 'bf16');
      expectIdentical(buffers, expectedSum(inputs, 'bf16'));
      // The first half-precision step adds the encode scratch; the next one reuses it.
      expect(allocations(), `bf16 step ${step}`).toEqual([2, 2, 2]);
    }
    const smaller = randomBuffers(3, 100, 3000);
    const copies = smaller.map((b) => Float32Array.from(b));
    await allReduceAll(ranks, copies);
    expectIdentical(copies, expectedSum(smaller));
    expect(allocations()).toEqual([2, 2, 2]);
    const larger = randomBuffers(3, 20_000, 4000);
    await allReduceAll(
      ranks,
      larger.map((b) => Float32Array.from(b)),
    );
    expect(allocations()).toEqual([3, 3, 3]);
    expect(ranks.collectives.map((c) => c.stats().opsCompleted)).toEqual([9, 9, 9]);
  });

  it('reports the payload bytes it moves: each rank sends L elements and receives (N-1)/N·L twice', async () => {
    const before = ranks.observers.map((o) => [o.bytesOutTotal(), o.bytesInTotal()]);
    const inputs = randomBuffers(3, 9_001, 4500);
    await allReduceAll(ranks, inputs);
    // Shards of 3000, 3000 and 3001 elements: rank r uploads its piece of the other shards plus its
    // reduced shard, and downloads two peers' pieces of its shard plus the other reduced shards.
    const shard = [3000, 3000, 3001];
    ranks.observers.forEach((o, r) => {
      const others = 9_001 - shard[r];
      expect(o.bytesOutTotal() - before[r][0], `rank ${r} out`).toBe(9_001 * 4);
      expect(o.bytesInTotal() - before[r][1], `rank ${r} in`).toBe((2 * shard[r] + others) * 4);
    });
  });

  it('holds the chunks of a rank that started the next operation early and replays them', async () => {
    const [c0, c1, c2] = ranks.collectives;
    const inputs = randomBuffers(3, 30_000, 5000);
    const buffers = inputs.map((b) => Float32Array.from(b));
    // Ranks 0 and 1 run ahead; rank 2 has not started this operation yet.
    const early = [c0.allReduce(buffers[0]), c1.allReduce(buffers[1])];
    await until(() => c2.stats().queuedBytes > 0, 'rank 2 to queue chunks of the next operation');
    await Promise.all([...early, c2.allReduce(buffers[2])]);
    expectIdentical(buffers, expectedSum(inputs));
    expect(c2.stats().queuedBytes).toBe(0);
    expect(ranks.observers.map((o) => o.invalidTotal() + o.staleTotal())).toEqual([0, 0, 0]);
  });
});

describe('broadcast and barrier', () => {
  let ranks: Ranks;
  beforeAll(async () => {
    ranks = await startRanks(nats.urls, 4, { chunkBytes: CHUNK_BYTES });
  });
  afterAll(async () => {
    await ranks?.close();
  });

  it("copies the root's buffer to every rank and leaves the root's untouched", async () => {
    const [source] = randomBuffers(1, 5_000, 6000);
    const buffers = randomBuffers(4, 5_000, 6001);
    buffers[2].set(source);
    await Promise.all(ranks.collectives.map((c, r) => c.broadcast(buffers[r], { root: 2 })));
    expectIdentical(buffers, source);
    const empty = [0, 1, 2, 3].map(() => new Float32Array(0));
    await Promise.all(ranks.collectives.map((c, r) => c.broadcast(empty[r])));
  });

  it('releases no rank before the last one arrives', async () => {
    // The barrier's one element is shard 3's: all the early ranks can do is send their contribution to
    // rank 3, which holds the three until it enters the barrier itself.
    const owner = ranks.observers[3];
    const before = owner.bytesInTotal();
    let released = 0;
    const early = ranks.collectives.slice(0, 3).map((c) => c.barrier().then(() => released++));
    await until(() => owner.bytesInTotal() - before === 3 * 4, "rank 3 to hold the early ranks' contributions");
    expect(released).toBe(0);
    await Promise.all([...early, ranks.collectives[3].barrier()]);
    expect(released).toBe(3);
  });

  it('rejects arguments that cannot work, saying what was expected', async () => {
    const c = ranks.collectives[0];
    await expect(c.broadcast(new Float32Array(1), { root: 4 })).rejects.toThrow(
      /expected a broadcast root in \[0, 4\), got 4/,
    );
    await expect(c.allReduce([1, 2] as unknown as Float32Array)).rejects.toThrow(
      /expects a Float32Array, got \[object Array\]/,
    );
    await expect(c.allReduce(new Float32Array(1), { dtype: 'f64' as WireDtype })).rejects.toThrow(
      /expected dtype f32, f16 or bf16/,
    );
    await expect(c.allReduce(new Float32Array(1), { op: 0 })).rejects.toThrow(/expected allReduce op id > \d+ .*got 0/);
  });
});
