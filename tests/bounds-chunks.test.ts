// A receiver of chunked blobs (checkpoint loads, model files) holds a bounded amount whatever the
// messages declare: the chunk count has an upper bound derived from the largest blob, the bytes and
// blobs in progress are bounded, and a blob that never completes is dropped at its deadline.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Packr } from 'msgpackr';
import {
  ChunkAssembler,
  MAX_BLOB_BYTES,
  MAX_CHUNKS,
  PROTOCOL_VERSION,
  commandSchema,
  decodeMessage,
  splitChunks,
} from '@tfjs-ddp/common';

type Drop = [string, string, string];

function assembler(limits: ConstructorParameters<typeof ChunkAssembler>[0] = {}) {
  const drops: Drop[] = [];
  const a = new ChunkAssembler({ ...limits, onDrop: (name, kind, detail) => drops.push([name, kind, detail]) });
  return { a, drops };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('chunk bounds', () => {
  it('derives the most chunks a message may declare from the largest blob', () => {
    expect(MAX_BLOB_BYTES).toBe(2 ** 31);
    // Chunks are never below 1 KiB, whatever the server's max_payload: the largest blob has 2^21 at most.
    expect(MAX_CHUNKS).toBe(MAX_BLOB_BYTES / 1024);
    expect(splitChunks(new Uint8Array(10 * 1024), 100)).toHaveLength(10);
  });

  it('a control message declaring more chunks than the largest blob has is invalid on receipt', () => {
    const load = (total: number, index = 0) =>
      new Packr({ useRecords: false }).pack({
        v: PROTOCOL_VERSION,
        type: 'load',
        job: 'j',
        gen: 1,
        id: 1,
        index,
        total,
        data: new Uint8Array(4),
      });
    expect(decodeMessage(commandSchema, load(MAX_CHUNKS), { maxBytes: 1 << 20 }).ok).toBe(true);
    const over = decodeMessage(commandSchema, load(MAX_CHUNKS + 1), { maxBytes: 1 << 20 });
    expect(over.ok).toBe(false);
    if (!over.ok) expect(over.reason).toBe('schema');
    expect(decodeMessage(commandSchema, load(2, MAX_CHUNKS), { maxBytes: 1 << 20 }).ok).toBe(false);
  });

  it('refuses to split a blob past MAX_BLOB_BYTES, naming the bound', () => {
    const huge = { length: MAX_BLOB_BYTES + 1, subarray: () => new Uint8Array(0) } as unknown as Uint8Array;
    expect(() => splitChunks(huge, 1 << 20)).toThrow(
      `cannot ship ${MAX_BLOB_BYTES + 1} bytes in chunks: the most a model file or replica state may have is ${MAX_BLOB_BYTES} bytes`,
    );
  });

  it('reassembles chunks in any order, ignoring repeats', () => {
    const { a, drops } = assembler();
    const data = Uint8Array.from({ length: 5000 }, (_, i) => i % 251);
    const chunks = splitChunks(data, 4096 + 1024);
    expect(chunks).toHaveLength(5);
    const order = [3, 0, 4, 0, 1, 2];
    const results = order.map((i) => a.add('m', i, chunks.length, chunks[i]));
    expect(results).toEqual([false, false, false, false, false, true]);
    expect(a.take('m')).toEqual(data);
    expect(a.heldBytes).toBe(0);
    expect(drops).toEqual([]);
  });

  it('holds almost nothing for a declared count it has not received: memory follows what came, not what was declared', () => {
    const { a } = assembler({ maxBlobs: 64 });
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < 64; i++) expect(a.add(`big-${i}`, MAX_CHUNKS - 1, MAX_CHUNKS, new Uint8Array(16))).toBe(false);
    const grown = process.memoryUsage().heapUsed - heapBefore;
    expect(a.blobs).toBe(64);
    expect(a.heldBytes).toBe(64 * 16);
    // 64 blobs of MAX_CHUNKS slots each would be 64 × 2^21 × 8 bytes = 1 GiB as preallocated arrays.
    expect(grown).toBeLessThan(16 * 1024 * 1024);
  });

  it('a flood of chunks of distinct blobs stays within the bounds on blobs and bytes, refusing the rest', () => {
    const { a, drops } = assembler({ maxBlobs: 8, maxBytes: 64 * 1024 });
    for (let i = 0; i < 10_000; i++) a.add(`flood-${i}`, 0, 1000, new Uint8Array(1024));
    expect(a.blobs).toBe(8);
    expect(a.heldBytes).toBe(8 * 1024);
    expect(drops).toHaveLength(10_000 - 8);
    expect(drops[0]).toEqual(['flood-8', 'backlog', '8 blobs are in progress already, the most held at once']);
    // One blob filling the byte bound: its next chunk is refused, and a new blob can still start later.
    const { a: b, drops: refused } = assembler({ maxBytes: 4096 });
    for (let i = 0; i < 10; i++) b.add('one', i, 100, new Uint8Array(1024));
    expect(b.heldBytes).toBe(4096);
    expect(refused.map((d) => d[1])).toEqual(['backlog', 'backlog', 'backlog', 'backlog', 'backlog', 'backlog']);
  });

  it('refuses a chunk count or index out of bounds, and a count that changes within a blob', () => {
    const { a, drops } = assembler();
    expect(a.add('x', 0, 2 ** 40, new Uint8Array(1))).toBe(false);
    expect(a.add('x', 5, 5, new Uint8Array(1))).toBe(false);
    expect(a.add('x', 0, 0, new Uint8Array(1))).toBe(false);
    expect(a.add('y', 0, 3, new Uint8Array(1))).toBe(false);
    expect(a.add('y', 1, 2, new Uint8Array(1))).toBe(false);
    expect(drops.map(([name, kind, detail]) => `${name} ${kind}: ${detail}`)).toEqual([
      `x range: expected a chunk count in [1, ${MAX_CHUNKS}], got ${2 ** 40}`,
      'x range: expected a chunk index in [0, 5), got 5',
      `x range: expected a chunk count in [1, ${MAX_CHUNKS}], got 0`,
      'y range: chunk 1 says the blob has 2 chunks, earlier ones said 3',
    ]);
    expect(a.blobs).toBe(1);
  });

  it('drops a blob that is not complete by its deadline, and keeps one that completed', () => {
    vi.useFakeTimers();
    const { a, drops } = assembler({ maxAgeMs: 60_000 });
    a.add('stalled', 0, 3, new Uint8Array(10));
    a.add('done', 0, 2, new Uint8Array(10));
    vi.advanceTimersByTime(59_999);
    expect(a.add('done', 1, 2, new Uint8Array(10))).toBe(true);
    expect(a.blobs).toBe(2);
    vi.advanceTimersByTime(1);
    expect(drops).toEqual([['stalled', 'expired', 'incomplete 60000 ms after its first chunk: 1 of 3 chunks came']]);
    expect(a.blobs).toBe(1);
    expect(a.heldBytes).toBe(20);
    vi.advanceTimersByTime(120_000);
    expect(a.take('done')).toHaveLength(20);
    expect(a.heldBytes).toBe(0);
  });
});
