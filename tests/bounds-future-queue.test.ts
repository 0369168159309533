// The queue of chunks for operations a rank has not started yet is bounded per sender rank: a peer
// that floods it (or a client claiming that peer's rank) fills only its own part, and the chunks of
// a peer that is merely a step ahead still fit, so the operation completes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectNats,
  encodeChunkHeader,
  jobSubjects,
  type ChunkHeader,
  type InboundChunk,
  type NatsConnection,
} from '@tfjs-ddp/common';
import { FutureQueue } from '../packages/common/src/collective/future-queue.js';
import { startNats, type NatsFixture } from './support/nats.js';
import {
  CHUNK_BYTES,
  expectSameBits,
  expectedSum,
  randomBuffers,
  startRanks,
  until,
} from './support/collective-ranks.js';

const chunk = (rank: number, op: number, bytes: number): InboundChunk => ({
  kind: 'rs',
  subjectShard: 0,
  senderRank: rank,
  subject: `ddp.j.g0.${rank}.rs.0`,
  header: { v: 1, op, rank, shard: 0, chunk: 0, offset: 0, count: bytes / 4, dtype: 'f32' } as ChunkHeader,
  data: new Uint8Array(bytes),
});

describe('the future-chunk queue', () => {
  it('gives each sender an equal part of the bound: one flooding sender leaves room for the others', () => {
    const q = new FutureQueue(40_000, 5);
    expect(q.perSenderBytes).toBe(10_000);
    let accepted = 0;
    for (let i = 0; i < 1000; i++) if (q.push(chunk(1, 7 + i, 1024))) accepted++;
    // 1024 bytes and 256 of bookkeeping each: 7 fit in 10,000.
    expect(accepted).toBe(7);
    expect(q.bytesFrom(1)).toBe(7 * 1280);
    expect(q.bytes).toBeLessThanOrEqual(10_000);
    for (const rank of [2, 3, 4]) expect(q.push(chunk(rank, 7, 1024)), `rank ${rank}`).toBe(true);
    expect(q.take(7).current.map((c) => c.header.rank)).toEqual([1, 2, 3, 4]);
    expect(q.bytesFrom(1)).toBe(6 * 1280);
    expect(q.bytes).toBe(6 * 1280);
  });

  describe('over NATS', () => {
    let nats: NatsFixture;
    let forger: NatsConnection;
    beforeAll(async () => {
      nats = await startNats();
      forger = await connectNats({ servers: [nats.url], name: 'forger' });
    });
    afterAll(async () => {
      await forger?.close();
      await nats?.stop();
    });

    it("a flood claiming rank 2 does not crowd out rank 1's chunks of the next operation", async () => {
      // Rank 1's part of shard 0 (2,000 elements) is two chunks, 8,000 bytes and 512 of bookkeeping
      // queued, within a sender's 12,000; the flood fills rank 2's part.
      const ranks = await startRanks(nats.url, 3, {
        chunkBytes: CHUNK_BYTES,
        maxQueuedBytes: 24_000,
        timeoutMs: 20_000,
      });
      try {
        const [c0, c1, c2] = ranks.collectives;
        const observer = ranks.observers[0];
        for (let i = 0; i < 20; i++) {
          const h: Omit<ChunkHeader, 'v'> = {
            op: 1_000_000,
            rank: 2,
            shard: 0,
            chunk: i,
            offset: i * 1024,
            count: 1024,
            dtype: 'f32',
          };
          forger.publish(jobSubjects('test-job').data(0).rs(0, 2), new Uint8Array(4096), {
            headers: encodeChunkHeader(h),
          });
        }
        await forger.flush();
        await until(() => observer.counts().backlog === 18, 'the flood to fill its sender part');
        const flooded = c0.stats().queuedBytes;
        expect(flooded).toBe(2 * (4096 + 256));

        const inputs = randomBuffers(3, 6_000, 21);
        const buffers = inputs.map((b) => Float32Array.from(b));
        // Rank 1 is a step ahead: its chunks for op 5 reach rank 0 before rank 0 starts op 5.
        const ahead = c1.allReduce(buffers[1], { op: 5 });
        ahead.catch(() => {});
        const rank1 = 2_000 * 4 + 2 * 256;
        await until(
          () => c0.stats().queuedBytes === flooded + rank1 || observer.counts().backlog > 18,
          "rank 1's chunks to reach rank 0",
        );
        expect(observer.counts().backlog, "rank 1's chunks were dropped").toBe(18);
        await Promise.all([ahead, c0.allReduce(buffers[0], { op: 5 }), c2.allReduce(buffers[2], { op: 5 })]);
        const sum = expectedSum(inputs);
        buffers.forEach((b, r) => expectSameBits(b, sum, `rank ${r}`));
      } finally {
        await ranks.close();
      }
    });
  });
});
