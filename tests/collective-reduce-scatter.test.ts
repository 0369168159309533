// The NATS reduce-scatter (the all-reduce's first phase alone, for optimizer.shard) against a real
// nats-server: each rank's block of the allGather layout ends with the bits the all-reduce gives
// there, in f32 and in the half-precision wire formats, and the rest of its buffer is left as it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNats, type NatsFixture } from './support/nats.js';
import { CHUNK_BYTES, expectSameBits, randomBuffers, startRanks, type Ranks } from './support/collective-ranks.js';

let nats: NatsFixture;
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  await nats?.stop();
});

describe.each([2, 3])('reduce-scatter with %i ranks', (worldSize) => {
  let ranks: Ranks;
  beforeAll(async () => {
    ranks = await startRanks(nats.urls, worldSize, { chunkBytes: CHUNK_BYTES });
  });
  afterAll(async () => {
    await ranks?.close();
  });

  it.each(['f32', 'f16', 'bf16'] as const)('leaves each rank its block of the %s all-reduce', async (dtype) => {
    const length = 10_007;
    const inputs = randomBuffers(worldSize, length, 17 + worldSize);
    const reduced = inputs.map((b) => Float32Array.from(b));
    await Promise.all(ranks.collectives.map((c, r) => c.allReduce(reduced[r], { dtype })));
    const scattered = inputs.map((b) => Float32Array.from(b));
    await Promise.all(ranks.collectives.map((c, r) => c.reduceScatter(scattered[r], { dtype })));
    for (let r = 0; r < worldSize; r++) {
      const from = Math.floor((r * length) / worldSize);
      const to = Math.floor(((r + 1) * length) / worldSize);
      expectSameBits(scattered[r].subarray(from, to), reduced[r].subarray(from, to), `rank ${r}'s block`);
      // Outside its block the buffer is the rank's own input: no reduced shard came back.
      expectSameBits(scattered[r].subarray(0, from), inputs[r].subarray(0, from), `rank ${r} before its block`);
      expectSameBits(scattered[r].subarray(to), inputs[r].subarray(to), `rank ${r} after its block`);
    }
    expect(ranks.observers.map((o) => o.invalidTotal())).toEqual(ranks.observers.map(() => 0));
  });
});
