// What the all-reduce does when things go wrong: a rank that never contributes, aborted steps,
// chunks of an older generation or operation, forged and malformed messages, and a peer that runs
// too far ahead. Every failure is bounded by the deadline and names its cause; bad input is
// counted and dropped and never changes the sum.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headers, type MsgHdrs } from '@nats-io/nats-core';
import {
  CHUNK_HEADER_KEYS,
  CollectiveAbortedError,
  CollectiveTimeoutError,
  INVALID_REASONS,
  PROTOCOL_VERSION,
  byteView,
  encodeChunkHeader,
  jobSubjects,
  type ChunkHeader,
} from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import {
  CHUNK_BYTES,
  connectForger,
  expectSameBits,
  expectedSum,
  randomBuffers,
  startRanks,
  until,
  type Forger,
  type Ranks,
} from './support/collective-ranks.js';

let nats: NatsFixture;
let forger: Forger;
beforeAll(async () => {
  nats = await startNats();
  forger = await connectForger(nats.urls);
});
afterAll(async () => {
  await forger?.close();
  await nats?.stop();
});

function expectExactSum(buffers: Float32Array[], inputs: Float32Array[]): void {
  const expected = expectedSum(inputs);
  for (const [r, b] of buffers.entries()) expectSameBits(b, expected, `rank ${r}`);
}

describe('a rank that never contributes', () => {
  let ranks: Ranks;
  beforeAll(async () => {
    ranks = await startRanks(nats.urls, 4, { chunkBytes: CHUNK_BYTES });
  });
  afterAll(async () => {
    await ranks?.close();
  });

  it('makes every other rank fail at the deadline with an error naming it, and the next operation still works', async () => {
    const inputs = randomBuffers(4, 10_000, 1);
    const results = await Promise.allSettled(
      ranks.collectives.slice(0, 3).map((c, r) => c.allReduce(Float32Array.from(inputs[r]), { timeoutMs: 1500 })),
    );
    for (const [r, result] of results.entries()) {
      expect(result.status, `rank ${r}`).toBe('rejected');
      const err = (result as PromiseRejectedResult).reason as CollectiveTimeoutError;
      expect(err).toBeInstanceOf(CollectiveTimeoutError);
      expect(err.message).toMatch(
        new RegExp(
          `^allReduce op 0 \\(generation 0\\) timed out after 1500 ms waiting for: rank 3 \\(reduce-scatter chunks 0-2 of shard ${r}\\)`,
        ),
      );
      expect(err.message).toContain('Rank 3 did not send its contribution');
      expect(err.senders).toEqual([3]);
      expect(err.missing[0]).toEqual({ rank: 3, phase: 'reduce-scatter', shard: r, chunks: [0, 1, 2] });
      // The other owners wait on rank 3 as well, so their reduced shards are missing too.
      expect(err.missing.filter((m) => m.phase === 'all-gather').map((m) => m.rank)).toEqual(
        [0, 1, 2, 3].filter((s) => s !== r),
      );
    }
    // The failed operation consumed op 0 on ranks 0-2 only; the caller realigns with an explicit op id.
    const buffers = inputs.map((b) => Float32Array.from(b));
    await Promise.all(ranks.collectives.map((c, r) => c.allReduce(buffers[r], { op: 1 })));
    expectExactSum(buffers, inputs);
    // Rank 3 received chunks of op 0 before it ever ran it: held, then discarded as stale.
    expect(ranks.observers[3].staleTotal()).toBeGreaterThan(0);
    expect(ranks.collectives[0].stats()).toMatchObject({ opsCompleted: 1, opsFailed: 1 });
  });

  it('times out a barrier naming the missing rank', async () => {
    const results = await Promise.allSettled(
      ranks.collectives.slice(1).map((c) => c.barrier({ op: 2, timeoutMs: 500 })),
    );
    // The single barrier element lives in shard 3, so rank 3 names rank 0 as the silent sender.
    const err = (results[2] as PromiseRejectedResult).reason as CollectiveTimeoutError;
    expect(err.message).toMatch(
      /^barrier op 2 \(generation 0\) timed out after 500 ms waiting for: rank 0 \(reduce-scatter/,
    );
    expect(err.senders).toEqual([0]);
  });
});

describe('aborting', () => {
  let ranks: Ranks;
  beforeAll(async () => {
    ranks = await startRanks(nats.urls, 3, { chunkBytes: CHUNK_BYTES });
  });
  afterAll(async () => {
    await ranks?.close();
  });

  it('rejects the operation in flight with the reason and leaves the collective usable', async () => {
    const [c0, c1, c2] = ranks.collectives;
    const pending = c0.allReduce(new Float32Array(5_000));
    c0.abort('the coordinator aborted step 5');
    await expect(pending).rejects.toThrow(CollectiveAbortedError);
    await expect(pending).rejects.toThrow('allReduce op 0 (generation 0) aborted: the coordinator aborted step 5');

    const controller = new AbortController();
    const viaSignal = c1.allReduce(new Float32Array(5_000), { op: 1, signal: controller.signal });
    controller.abort(new Error('rank 2 left'));
    await expect(viaSignal).rejects.toThrow('allReduce op 1 (generation 0) aborted: rank 2 left');
    const already = AbortSignal.abort('stopped');
    await expect(c2.allReduce(new Float32Array(5_000), { op: 2, signal: already })).rejects.toThrow(/aborted: stopped/);

    const inputs = randomBuffers(3, 5_000, 2);
    const buffers = inputs.map((b) => Float32Array.from(b));
    await Promise.all(ranks.collectives.map((c, r) => c.allReduce(buffers[r], { op: 3 })));
    expectExactSum(buffers, inputs);
  });

  it('an abort that comes before a rank starts the operation fails it there too, at once; later ids work', async () => {
    // A deadline far beyond the test's: only the abort can end these operations.
    const slow = await startRanks(nats.urls, 3, { chunkBytes: CHUNK_BYTES, timeoutMs: 600_000 });
    try {
      const [c0, c1, c2] = slow.collectives;
      // Ranks 0 and 1 are in the all-reduce of op 10; rank 2 is still computing its gradient.
      const waiting = [c0, c1].map((c) => c.allReduce(new Float32Array(5_000), { op: 10 }));
      for (const c of slow.collectives) c.abort('step 7 aborted: rank 2 is slow', { before: 11 });
      for (const p of waiting) await expect(p).rejects.toThrow(CollectiveAbortedError);
      const late = c2.allReduce(new Float32Array(5_000), { op: 10 });
      await expect(late).rejects.toThrow('allReduce op 10 (generation 0) aborted: step 7 aborted: rank 2 is slow');
      const inputs = randomBuffers(3, 5_000, 4);
      const buffers = inputs.map((b) => Float32Array.from(b));
      await Promise.all(slow.collectives.map((c, r) => c.allReduce(buffers[r], { op: 11 })));
      expectExactSum(buffers, inputs);
    } finally {
      await slow.close();
    }
  });

  it('rejects the operation in flight when closed, and every later call', async () => {
    const c = ranks.collectives[0];
    const pending = c.broadcast(new Float32Array(10), { root: 1 });
    await c.close();
    await expect(pending).rejects.toThrow(/broadcast op 4 \(generation 0\) aborted: the collective was closed/);
    await expect(c.barrier()).rejects.toThrow(/the collective of generation 0 is closed/);
  });
});

describe('a closed connection', () => {
  it('fails the operation saying which one and why', async () => {
    const ranks = await startRanks(nats.urls, 2, { chunkBytes: CHUNK_BYTES });
    try {
      await ranks.ncs[0].close();
      await expect(ranks.collectives[0].allReduce(new Float32Array(5_000))).rejects.toThrow(
        /^allReduce op 0 \(generation 0\) failed: .*closed/,
      );
    } finally {
      await ranks.close();
    }
  });
});

describe('stale and forged messages', () => {
  const subjects = jobSubjects('test-job');

  function forge(subject: string, h: Partial<ChunkHeader> & Omit<ChunkHeader, 'v'>, body: Uint8Array): void {
    forger.publish(subject, body, { headers: encodeChunkHeader(h) });
  }

  it('ignores chunks of an older generation and counts chunks of an ended operation as stale', async () => {
    const ranks = await startRanks(nats.urls, 3, { generation: 1, chunkBytes: CHUNK_BYTES });
    try {
      const inputs = randomBuffers(3, 3_000, 3);
      let buffers = inputs.map((b) => Float32Array.from(b));
      await Promise.all(ranks.collectives.map((c, r) => c.allReduce(buffers[r])));
      // Well-formed chunks full of garbage: op 0 of this generation (ended), op 1 of generation 0.
      const garbage = byteView(new Float32Array(1000).fill(1e30));
      for (let owner = 0; owner < 3; owner++) {
        const sender = (owner + 1) % 3;
        const chunk = {
          rank: sender,
          shard: owner,
          chunk: 0,
          offset: owner * 1000,
          count: 1000,
          dtype: 'f32' as const,
        };
        forge(subjects.data(1).rs(owner, sender), { ...chunk, op: 0 }, garbage);
        forge(subjects.data(0).rs(owner, sender), { ...chunk, op: 1 }, garbage);
        forge(subjects.data(1).ag(sender, sender), { ...chunk, shard: sender, offset: sender * 1000, op: 0 }, garbage);
      }
      await forger.flush();
      // Each rank gets one stale contribution to its shard and the stale reduced chunks of its two peers.
      await until(() => ranks.observers.every((o) => o.staleTotal() === 3), 'the stale chunks to arrive');
      buffers = inputs.map((b) => Float32Array.from(b));
      await Promise.all(ranks.collectives.map((c, r) => c.allReduce(buffers[r])));
      expectExactSum(buffers, inputs);
      expect(ranks.observers.map((o) => [o.staleTotal(), o.invalidTotal()])).toEqual([
        [3, 0],
        [3, 0],
        [3, 0],
      ]);
    } finally {
      await ranks.close();
    }
  });

  it('drops malformed, truncated, oversized and misaddressed chunks by reason and still sums exactly', async () => {
    const ranks = await startRanks(nats.urls, 2, { chunkBytes: CHUNK_BYTES });
    try {
      // 5000 elements: rank 0 owns [0, 2500) in chunks of 1024, 1024 and 452 elements.
      const inputs = randomBuffers(2, 5_000, 4);
      const buffers = inputs.map((b) => Float32Array.from(b));
      const owner = ranks.collectives[0];
      const pending = owner.allReduce(buffers[0]);
      const rs = subjects.data(0).rs(0, 1);
      const good = { op: 0, rank: 1, shard: 0, chunk: 1, offset: 1024, count: 1024, dtype: 'f32' as const };
      const zeros = new Uint8Array(4096);
      const edit = (change: (h: MsgHdrs) => void): MsgHdrs => {
        const h = encodeChunkHeader(good);
        change(h);
        return h;
      };
      const otherHeaders = headers();
      otherHeaders.set('X-Other', '1');
      const forged: [string, Uint8Array, MsgHdrs | undefined, string][] = [
        [rs, zeros, undefined, 'header'],
        [rs, zeros, otherHeaders, 'header'],
        [rs, zeros, edit((h) => h.delete(CHUNK_HEADER_KEYS.chunk)), 'header'],
        [rs, zeros, edit((h) => h.set(CHUNK_HEADER_KEYS.rank, 'one')), 'header'],
        [rs, zeros, edit((h) => h.set(CHUNK_HEADER_KEYS.op, '1e0')), 'header'],
        [rs, zeros, edit((h) => h.set(CHUNK_HEADER_KEYS.shard, '1')), 'header'],
        [rs, zeros, edit((h) => h.set(CHUNK_HEADER_KEYS.v, String(PROTOCOL_VERSION + 1))), 'version'],
        [rs, zeros, edit((h) => h.set(CHUNK_HEADER_KEYS.dtype, 'f64')), 'dtype'],
        [rs, zeros.subarray(0, 2048), edit((h) => h.set(CHUNK_HEADER_KEYS.dtype, 'f16')), 'dtype'],
        [rs, zeros, edit((h) => h.set(CHUNK_HEADER_KEYS.rank, '2')), 'rank'],
        [rs, zeros, edit((h) => h.set(CHUNK_HEADER_KEYS.rank, '0')), 'rank'],
        [rs, zeros, edit((h) => h.set(CHUNK_HEADER_KEYS.chunk, '3')), 'range'],
        [rs, zeros, edit((h) => h.set(CHUNK_HEADER_KEYS.offset, '1000')), 'range'],
        [rs, zeros.subarray(0, 4095), encodeChunkHeader(good), 'size'],
        [rs, new Uint8Array(4100), encodeChunkHeader(good), 'size'],
        [rs, new Uint8Array(256 * 1024), encodeChunkHeader(good), 'size'],
        [subjects.data(0).ag(1, 1), zeros, encodeChunkHeader({ ...good, rank: 0, shard: 1 }), 'rank'],
        [subjects.data(0).bc(1, 1), zeros, encodeChunkHeader({ ...good, shard: 1 }), 'header'],
        [subjects.data(0).rs(0, 7), zeros, encodeChunkHeader(good), 'rank'],
      ];
      for (const [subject, body, hdrs] of forged) forger.publish(subject, body, hdrs ? { headers: hdrs } : undefined);
      // Rank 1's real chunk 0, sent twice ahead of rank 1 itself on rank 1's subject: with one shared
      // credential the server cannot tell the forger from rank 1, so the first copy counts (and
      // completes the chunk), the second and rank 1's own are duplicates. Per-worker NATS identity
      // is what refuses such a forgery (nats-roles.test.ts).
      const realChunk0 = byteView(inputs[1].subarray(0, 1024));
      const chunk0 = encodeChunkHeader({ ...good, chunk: 0, offset: 0 });
      forger.publish(rs, realChunk0, { headers: chunk0 });
      forger.publish(rs, realChunk0, { headers: chunk0 });
      await forger.flush();
      const expected: Record<string, number> = { duplicate: 1 };
      for (const [, , , reason] of forged) expected[reason] = (expected[reason] ?? 0) + 1;
      const observer = ranks.observers[0];
      await until(() => observer.invalidTotal() === forged.length + 1, 'the forged chunks to be dropped');

      await Promise.all([pending, ranks.collectives[1].allReduce(buffers[1])]);
      expectExactSum(buffers, inputs);
      expected.duplicate = 2;
      expect(observer.counts()).toEqual({ ...Object.fromEntries(INVALID_REASONS.map((r) => [r, 0])), ...expected });
      expect(ranks.observers[1].invalidTotal()).toBe(0);
    } finally {
      await ranks.close();
    }
  });

  it('drops chunks of future operations beyond the queue bound and counts them', async () => {
    const ranks = await startRanks(nats.urls, 2, { chunkBytes: CHUNK_BYTES, maxQueuedBytes: 10_000 });
    try {
      const body = new Uint8Array(4096);
      for (let i = 0; i < 4; i++) {
        forger.publish(subjects.data(0).rs(0, 1), body, {
          headers: encodeChunkHeader({
            op: 9,
            rank: 1,
            shard: 0,
            chunk: i,
            offset: i * 1024,
            count: 1024,
            dtype: 'f32',
          }),
        });
      }
      await forger.flush();
      const observer = ranks.observers[0];
      // Each queued chunk costs its body plus a small bookkeeping allowance: two fit in 10,000 bytes.
      await until(() => observer.counts().backlog === 2, 'two chunks to overflow the queue');
      expect(ranks.collectives[0].stats().queuedBytes).toBeGreaterThan(2 * 4096);
      expect(ranks.collectives[0].stats().queuedBytes).toBeLessThanOrEqual(10_000);
      const inputs = randomBuffers(2, 1_000, 5);
      const buffers = inputs.map((b) => Float32Array.from(b));
      await Promise.all(ranks.collectives.map((c, r) => c.allReduce(buffers[r], { op: 9 })));
      // The queued forgeries are replayed into op 9, where they do not fit the 500-element shard 0.
      expect(observer.counts().range).toBe(2);
      expectExactSum(buffers, inputs);
      expect(ranks.collectives[0].stats().queuedBytes).toBe(0);
    } finally {
      await ranks.close();
    }
  });
});
