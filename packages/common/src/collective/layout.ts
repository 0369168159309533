// Where every element of a gradient buffer goes: the buffer of L elements is cut into N shards,
// shard s = [floor(s·L/N), floor((s+1)·L/N)), owned by rank s; each shard travels in chunks of at
// most `chunkElements` elements. Pure functions, so every rank derives the same layout.
import { BYTES_PER_ELEMENT, type WireDtype } from '../protocol/index.js';

/** Bytes reserved for the NATS headers of a chunk when sizing chunks to the server's max_payload. */
export const CHUNK_HEADER_HEADROOM = 1024;

export interface ShardLayout {
  readonly shard: number;
  /** First element (inclusive). */
  readonly start: number;
  /** Last element (exclusive); equal to start for an empty shard. */
  readonly end: number;
  /** Number of chunks; 0 for an empty shard. */
  readonly chunks: number;
}

export interface CollectiveLayout {
  readonly length: number;
  readonly worldSize: number;
  readonly chunkElements: number;
  readonly shards: readonly ShardLayout[];
  /** Elements in the largest shard: the size of one rank's slot in the owner's staging area. */
  readonly maxShardLength: number;
  /** Chunks in the largest shard. */
  readonly maxChunks: number;
  /** Index of each shard's first chunk when the chunks of all shards are numbered in shard order. */
  readonly chunkBase: readonly number[];
  /** Chunks of all shards together. */
  readonly totalChunks: number;
}

export interface ChunkRange {
  /** Index of the chunk's first element in the whole buffer. */
  readonly offset: number;
  readonly count: number;
}

/** Bytes a chunk body may take: the configured chunk size, capped by what the server accepts in one message. */
export function chunkBytesFor(chunkBytes: number, maxPayload: number): number {
  return Math.min(chunkBytes, maxPayload - CHUNK_HEADER_HEADROOM);
}

/**
 * Rank `rank`'s block of a buffer of `length` floats over `worldSize` ranks: [floor(r·L/N),
 * floor((r+1)·L/N)), the shard it owns in an all-reduce and its block in an all-gather.
 */
export function shardRange(length: number, rank: number, worldSize: number): { start: number; end: number } {
  return { start: Math.floor((rank * length) / worldSize), end: Math.floor(((rank + 1) * length) / worldSize) };
}

/** Elements per chunk of `dtype`: as many as fit in {@link chunkBytesFor}. */
export function chunkElementsFor(chunkBytes: number, maxPayload: number, dtype: WireDtype): number {
  const elements = Math.floor(chunkBytesFor(chunkBytes, maxPayload) / BYTES_PER_ELEMENT[dtype]);
  if (elements < 1) {
    throw new RangeError(
      `cannot fit a ${dtype} element in a chunk: chunkBytes ${chunkBytes}, server max_payload ${maxPayload} ` +
        `(${CHUNK_HEADER_HEADROOM} bytes are kept for headers); raise max_payload or chunkBytes`,
    );
  }
  return elements;
}

export function computeLayout(length: number, worldSize: number, chunkElements: number): CollectiveLayout {
  for (const [name, v, min] of [
    ['length', length, 0],
    ['worldSize', worldSize, 1],
    ['chunkElements', chunkElements, 1],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < min)
      throw new RangeError(`expected ${name} to be an integer ≥ ${min}, got ${v}`);
  }
  const shards: ShardLayout[] = [];
  const chunkBase: number[] = [];
  let maxShardLength = 0;
  let maxChunks = 0;
  let totalChunks = 0;
  for (let s = 0; s < worldSize; s++) {
    const { start, end } = shardRange(length, s, worldSize);
    const chunks = Math.ceil((end - start) / chunkElements);
    shards.push({ shard: s, start, end, chunks });
    chunkBase.push(totalChunks);
    totalChunks += chunks;
    maxShardLength = Math.max(maxShardLength, end - start);
    maxChunks = Math.max(maxChunks, chunks);
  }
  return { length, worldSize, chunkElements, shards, maxShardLength, maxChunks, chunkBase, totalChunks };
}

/** The elements of chunk `chunk` of `shard`; the caller keeps chunk < shards[shard].chunks. */
export function chunkRange(layout: CollectiveLayout, shard: number, chunk: number): ChunkRange {
  const s = layout.shards[shard];
  const offset = s.start + chunk * layout.chunkElements;
  return { offset, count: Math.min(layout.chunkElements, s.end - offset) };
}
