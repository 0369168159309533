// The hooks over the real NATS collective: its all-gather (which top-k exchanges its pairs with),
// the f16 and bf16 hooks giving the collective's exact half-precision sum, and top-k and PowerSGD
// giving over NATS exactly what they give over an in-process collective, bit-identical on every rank.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectiveTimeoutError, createCommHook, type CommHookSpecInput } from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import {
  CHUNK_BYTES,
  expectSameBits,
  expectedSum,
  randomBuffers,
  startRanks,
  type Ranks,
} from './support/collective-ranks.js';
import { memoryGroup } from './support/memory-collective.js';

let nats: NatsFixture;
beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  await nats?.stop();
});

/** Rank r's block of an L-element all-gather buffer, as the Collective interface defines it. */
const blockOf = (r: number, length: number, n: number) => [
  Math.floor((r * length) / n),
  Math.floor(((r + 1) * length) / n),
];

describe.each([1, 2, 3, 4])('all-gather with %i ranks', (worldSize) => {
  let ranks: Ranks;
  beforeAll(async () => {
    ranks = await startRanks(nats.urls, worldSize, { chunkBytes: CHUNK_BYTES });
  });
  afterAll(async () => {
    await ranks?.close();
  });

  it.each([0, 1, 7, 1024 * worldSize, 10_007])(
    'gives every rank every block of %i elements, bits unchanged',
    async (length) => {
      // Random bit patterns, NaN payloads and subnormals included: a block may carry integers.
      const bufs = ranks.collectives.map((_, r) => {
        const b = new Float32Array(length);
        const bits = new Uint32Array(b.buffer);
        const [from, to] = blockOf(r, length, worldSize);
        for (let i = from; i < to; i++) bits[i] = (Math.imul(i + 1, 0x9e3779b1) ^ (r << 28)) >>> 0;
        return b;
      });
      const expected = new Float32Array(length);
      bufs.forEach((b, r) => {
        const [from, to] = blockOf(r, length, worldSize);
        expected.set(b.subarray(from, to), from);
      });
      await Promise.all(ranks.collectives.map((c, r) => c.allGather(bufs[r])));
      for (const [r, b] of bufs.entries()) expectSameBits(b, expected, `rank ${r}`);
      expect(ranks.observers.map((o) => o.invalidTotal())).toEqual(ranks.observers.map(() => 0));
    },
  );
});

describe('an all-gather a rank never joins', () => {
  it('times out naming that rank and the block it did not send', async () => {
    const ranks = await startRanks(nats.urls, 3, { chunkBytes: CHUNK_BYTES });
    try {
      const bufs = [0, 1, 2].map(() => new Float32Array(30_000));
      const joined = [0, 1].map((r) => ranks.collectives[r].allGather(bufs[r], { timeoutMs: 1_000 }));
      const results = await Promise.allSettled(joined);
      for (const res of results) {
        expect(res.status).toBe('rejected');
        const err = (res as PromiseRejectedResult).reason as CollectiveTimeoutError;
        expect(err).toBeInstanceOf(CollectiveTimeoutError);
        expect(err.operation).toBe('allGather');
        expect(err.missing).toEqual([
          { rank: 2, phase: 'all-gather', shard: 2, chunks: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
        ]);
      }
      // The collectives stay usable for the next operation.
      const fresh = randomBuffers(3, 300, 1);
      await Promise.all(ranks.collectives.map((c, r) => c.allGather(fresh[r], { op: 1 })));
      for (const r of [1, 2]) expectSameBits(fresh[r], fresh[0], `rank ${r} after the timeout`);
    } finally {
      await ranks.close();
    }
  });
});

describe('hooks over NATS', () => {
  const shapes = [[40, 30], [30], [3, 3, 4, 8], [8]];
  const length = 40 * 30 + 30 + 288 + 8;
  let ranks: Ranks;
  beforeAll(async () => {
    ranks = await startRanks(nats.urls, 3, { chunkBytes: CHUNK_BYTES });
  });
  afterAll(async () => {
    await ranks?.close();
  });

  let op = 0;
  async function reduceOnNats(spec: CommHookSpecInput, grads: Float32Array[][]): Promise<Float32Array[][]> {
    const hooks = ranks.collectives.map(() => createCommHook(spec, shapes, { seed: 3 }));
    const out: Float32Array[][] = [];
    for (const step of grads) {
      const bufs = step.map((g) => Float32Array.from(g));
      op += 16;
      await Promise.all(hooks.map((h, r) => h.reduce(bufs[r], ranks.collectives[r], { op })));
      out.push(bufs);
    }
    return out;
  }

  async function reduceInMemory(spec: CommHookSpecInput, grads: Float32Array[][]): Promise<Float32Array[]> {
    const group = memoryGroup(3);
    const hooks = group.collectives.map(() => createCommHook(spec, shapes, { seed: 3 }));
    const out: Float32Array[] = [];
    for (const [t, step] of grads.entries()) {
      const bufs = step.map((g) => Float32Array.from(g));
      await Promise.all(hooks.map((h, r) => h.reduce(bufs[r], group.collectives[r], { op: 16 * t })));
      out.push(bufs[0]);
    }
    return out;
  }

  it.each([
    ['topk', { type: 'topk', ratio: 0.05 }],
    ['powersgd', { type: 'powersgd', rank: 2 }],
  ] as const)('%s gives every rank what it gives in process, bit for bit, step after step', async (_name, spec) => {
    const grads = [0, 1, 2].map((t) => randomBuffers(3, length, 100 + t));
    const nats = await reduceOnNats(spec, grads);
    const memory = await reduceInMemory(spec, grads);
    nats.forEach((step, t) => {
      for (const [r, b] of step.entries()) expectSameBits(b, memory[t], `step ${t} rank ${r}`);
    });
  });

  // The collective's own test (collective.test.ts) bounds the half-precision sum's error; the hook
  // must give exactly that sum.
  it.each(['f16', 'bf16'] as const)('%s gives every rank the rank-order sum in %s, bit for bit', async (dtype) => {
    const grads = randomBuffers(3, length, 200);
    const [out] = await reduceOnNats(dtype, [grads]);
    const expected = expectedSum(grads, dtype);
    for (const [r, b] of out.entries()) expectSameBits(b, expected, `rank ${r}`);
  });
});
