// The pure parts of the collective: how a buffer is cut into shards and chunks, the owner's
// rank-order sum, and how a timeout names what is missing.
import { describe, expect, it } from 'vitest';
import {
  CHUNK_HEADER_HEADROOM,
  CollectiveTimeoutError,
  chunkElementsFor,
  chunkRange,
  computeLayout,
  formatChunkList,
  sumInRankOrder,
} from '@tfjs-ddp/common';

describe('shard and chunk layout', () => {
  it('gives rank s the elements [floor(s·L/N), floor((s+1)·L/N)) in chunks of at most chunkElements', () => {
    const layout = computeLayout(10, 3, 2);
    expect(layout.shards.map((s) => [s.start, s.end, s.chunks])).toEqual([
      [0, 3, 2],
      [3, 6, 2],
      [6, 10, 2],
    ]);
    expect(layout.maxShardLength).toBe(4);
    expect(layout.maxChunks).toBe(2);
    expect(chunkRange(layout, 0, 1)).toEqual({ offset: 2, count: 1 });
    expect(chunkRange(layout, 2, 1)).toEqual({ offset: 8, count: 2 });
  });

  it('leaves shards empty when the buffer is shorter than the world', () => {
    expect(computeLayout(1, 4, 8).shards.map((s) => [s.start, s.end, s.chunks])).toEqual([
      [0, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
      [0, 1, 1],
    ]);
    expect(computeLayout(2, 3, 8).shards.map((s) => s.end - s.start)).toEqual([0, 1, 1]);
    const empty = computeLayout(0, 4, 8);
    expect(empty.shards.every((s) => s.chunks === 0)).toBe(true);
    expect(empty.maxChunks).toBe(0);
  });

  it('covers every element exactly once for many lengths, world sizes and chunk sizes', () => {
    for (const length of [0, 1, 2, 3, 7, 64, 1000, 4099]) {
      for (const world of [1, 2, 3, 4, 7]) {
        for (const chunk of [1, 3, 1024]) {
          const layout = computeLayout(length, world, chunk);
          const hits = new Uint8Array(length);
          for (const s of layout.shards) {
            for (let c = 0; c < s.chunks; c++) {
              const { offset, count } = chunkRange(layout, s.shard, c);
              const inShard = count > 0 && count <= chunk && offset >= s.start && offset + count <= s.end;
              expect(inShard, `L=${length} N=${world} E=${chunk} shard ${s.shard} chunk ${c}`).toBe(true);
              for (let i = offset; i < offset + count; i++) hits[i]++;
            }
          }
          expect(
            hits.every((h) => h === 1),
            `L=${length} N=${world} E=${chunk}`,
          ).toBe(true);
        }
      }
    }
  });

  it('sizes chunks by chunkBytes, capped by the server max_payload less header room', () => {
    expect(chunkElementsFor(1 << 20, 8 << 20, 'f32')).toBe(262144);
    expect(chunkElementsFor(1 << 20, 8 << 20, 'bf16')).toBe(524288);
    expect(chunkElementsFor(1 << 20, 65536, 'f32')).toBe(Math.floor((65536 - CHUNK_HEADER_HEADROOM) / 4));
    expect(() => chunkElementsFor(1 << 20, CHUNK_HEADER_HEADROOM + 3, 'f32')).toThrow(/raise max_payload/);
  });

  it('rejects impossible layouts with what was expected', () => {
    expect(() => computeLayout(-1, 2, 4)).toThrow(/expected length to be an integer ≥ 0, got -1/);
    expect(() => computeLayout(4, 0, 4)).toThrow(/worldSize/);
    expect(() => computeLayout(4, 2, 0)).toThrow(/chunkElements/);
  });
});

describe('rank-order sum', () => {
  // Values whose fp32 sum depends on the order of additions.
  const contributions = [
    [1e8, 1, -3, 0.1],
    [1, 1e8, 3, 0.2],
    [-1e8, 1, 1e-8, 0.3],
    [1, -1e8, 5, 0.4],
  ].map((c) => Float32Array.from(c));

  /** The fp32 sum of the contributions of `ranks`, added left to right in that order. */
  function sumInOrder(ranks: number[]): Float32Array {
    const acc = Float32Array.from(contributions[ranks[0]]);
    for (const r of ranks.slice(1))
      for (let i = 0; i < acc.length; i++) acc[i] = Math.fround(acc[i] + contributions[r][i]);
    return acc;
  }

  it.each([
    [2, 0],
    [2, 1],
    [3, 1],
    [4, 0],
    [4, 2],
    [4, 3],
  ])('with %i ranks, owner %i gets exactly ((c0 + c1) + c2) + …', (world, self) => {
    const rankOrder = [...Array(world).keys()];
    const expected = sumInOrder(rankOrder);
    // Precondition: from three ranks on, these values sum to something else in arrival order
    // (here the reverse), so only a rank-order sum passes. Two operands commute exactly.
    if (world > 2) {
      expect(Array.from(sumInOrder([...rankOrder].reverse())), 'precondition: order-sensitive data').not.toEqual(
        Array.from(expected),
      );
    }
    // Owner's buffer: 2 elements of padding, then the chunk; staging slots of stride 6 with the chunk at 1.
    const out = new Float32Array(7);
    out.set(contributions[self], 2);
    const staging = new Float32Array(6 * (world - 1));
    for (let r = 0; r < world; r++) {
      if (r === self) continue;
      staging.set(contributions[r], (r < self ? r : r - 1) * 6 + 1);
    }
    sumInRankOrder(out, 2, 4, staging, 6, 1, self, world);
    expect(Array.from(out.subarray(2, 6))).toEqual(Array.from(expected));
    expect([out[0], out[1], out[6]]).toEqual([0, 0, 0]);
  });

  it('sums chunks far longer than one cache block the same way', () => {
    const world = 4;
    const count = 40_000;
    const next = (() => {
      let x = 12345;
      return () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5) * 2 ** ((x >>> 27) - 8);
    })();
    const inputs = Array.from({ length: world }, () => Float32Array.from({ length: count }, next));
    const expectedSum = Float32Array.from(inputs[0]);
    for (let r = 1; r < world; r++) for (let i = 0; i < count; i++) expectedSum[i] += inputs[r][i];
    for (const self of [0, 3]) {
      const out = Float32Array.from(inputs[self]);
      const staging = new Float32Array(count * (world - 1));
      for (let r = 0; r < world; r++) if (r !== self) staging.set(inputs[r], (r < self ? r : r - 1) * count);
      sumInRankOrder(out, 0, count, staging, count, 0, self, world);
      expect(Buffer.from(out.buffer).equals(Buffer.from(expectedSum.buffer)), `owner ${self}`).toBe(true);
    }
  });
});

describe('timeout errors', () => {
  it('compresses chunk lists into ranges', () => {
    expect(formatChunkList([0, 1, 2, 3, 7, 9, 10])).toBe('0-3, 7, 9-10');
    expect(formatChunkList([5])).toBe('5');
    expect(formatChunkList([])).toBe('');
  });

  it('names the silent sender first and says what to check', () => {
    const err = new CollectiveTimeoutError('allReduce', 7, 0, 2000, [
      { rank: 3, phase: 'reduce-scatter', shard: 1, chunks: [0, 1, 2, 3] },
      { rank: 2, phase: 'all-gather', shard: 2, chunks: [0, 1] },
    ]);
    expect(err.message).toMatch(
      /^allReduce op 7 \(generation 0\) timed out after 2000 ms waiting for: rank 3 \(reduce-scatter chunks 0-3 of shard 1\); rank 2 \(all-gather chunks 0-1 of shard 2\)\. Rank 3 did not send its contribution: check that it is alive and in generation 0/,
    );
    expect(err.senders).toEqual([3]);
    expect(err.name).toBe('CollectiveTimeoutError');
  });
});
