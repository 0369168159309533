// The header of a gradient chunk. Chunk bodies are raw element bytes (little-endian) so they can be
// published straight from the gradient buffer; what they are travels in NATS headers, one field a
// header so `nats sub` shows them readably. Parsing never throws: a bad header is a reason to drop.
import { headers, type MsgHdrs } from '@nats-io/nats-core';
import type { InvalidReason } from './invalid.js';
import { PROTOCOL_VERSION } from './version.js';
import { BYTES_PER_ELEMENT, isWireDtype, type WireDtype } from './wire-dtype.js';

export interface ChunkHeader {
  /** Protocol version. */
  v: number;
  /** The collective operation this chunk belongs to (strictly increasing per collective). */
  op: number;
  /** The sending rank. */
  rank: number;
  /** The shard the chunk belongs to (for broadcasts: the root). */
  shard: number;
  /** Index of the chunk within its shard. */
  chunk: number;
  /** Index of the chunk's first element in the whole buffer. */
  offset: number;
  /** Number of elements in the chunk. */
  count: number;
  dtype: WireDtype;
}

export const CHUNK_HEADER_KEYS = {
  v: 'Ddp-Version',
  op: 'Ddp-Op',
  rank: 'Ddp-Rank',
  shard: 'Ddp-Shard',
  chunk: 'Ddp-Chunk',
  offset: 'Ddp-Offset',
  count: 'Ddp-Count',
  dtype: 'Ddp-Dtype',
} as const satisfies Record<keyof ChunkHeader, string>;

const INTEGER_FIELDS = ['v', 'op', 'rank', 'shard', 'chunk', 'offset', 'count'] as const;
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

export type ChunkHeaderResult =
  { ok: true; header: ChunkHeader } | { ok: false; reason: InvalidReason; detail: string };

export type ChunkCheckResult = { ok: true } | { ok: false; reason: InvalidReason; detail: string };

/** NATS headers for a chunk of the current protocol version. */
export function encodeChunkHeader(h: Omit<ChunkHeader, 'v'>): MsgHdrs {
  const hdrs = headers();
  hdrs.set(CHUNK_HEADER_KEYS.v, String(PROTOCOL_VERSION));
  for (const k of INTEGER_FIELDS) if (k !== 'v') hdrs.set(CHUNK_HEADER_KEYS[k], String(h[k]));
  hdrs.set(CHUNK_HEADER_KEYS.dtype, h.dtype);
  return hdrs;
}

/** Reads every field and checks what needs no context: presence, integers, version, dtype. */
export function readChunkHeader(hdrs: MsgHdrs | undefined): ChunkHeaderResult {
  if (!hdrs) return { ok: false, reason: 'header', detail: 'expected chunk headers, got a message without headers' };
  const fields: Partial<Record<keyof ChunkHeader, string>> = {};
  for (const [field, key] of Object.entries(CHUNK_HEADER_KEYS) as [keyof ChunkHeader, string][]) {
    let values: string[];
    try {
      values = hdrs.values(key);
    } catch {
      values = [];
    }
    if (values.length !== 1) {
      return {
        ok: false,
        reason: 'header',
        detail: `expected exactly one ${key} header, got ${values.length}`,
      };
    }
    fields[field] = values[0];
  }
  const ints: Partial<Record<(typeof INTEGER_FIELDS)[number], number>> = {};
  for (const k of INTEGER_FIELDS) {
    const text = fields[k] as string;
    const n = DECIMAL.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n)) {
      return {
        ok: false,
        reason: 'header',
        detail: `expected ${CHUNK_HEADER_KEYS[k]} to be a non-negative integer, got ${JSON.stringify(text.slice(0, 40))}`,
      };
    }
    ints[k] = n;
  }
  if (ints.v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      reason: 'version',
      detail: `expected chunk protocol version ${PROTOCOL_VERSION}, got ${ints.v}; run the same tfjs-ddp version on every worker`,
    };
  }
  const dtype = fields.dtype;
  if (!isWireDtype(dtype)) {
    return {
      ok: false,
      reason: 'dtype',
      detail: `expected ${CHUNK_HEADER_KEYS.dtype} f32, f16 or bf16, got ${JSON.stringify(String(dtype).slice(0, 40))}`,
    };
  }
  return { ok: true, header: { ...(ints as Record<(typeof INTEGER_FIELDS)[number], number>), dtype } };
}

/**
 * Checks a header against the world (ranks and shards below `worldSize`) and the body it came with.
 * Offsets are checked by the operation the chunk belongs to, which knows the buffer's layout.
 */
export function checkChunkHeader(h: ChunkHeader, byteLength: number, worldSize: number): ChunkCheckResult {
  if (h.rank >= worldSize) {
    return {
      ok: false,
      reason: 'rank',
      detail: `expected a sender rank below the world size ${worldSize}, got ${h.rank}`,
    };
  }
  if (h.shard >= worldSize) {
    return {
      ok: false,
      reason: 'range',
      detail: `expected a shard below the world size ${worldSize}, got ${h.shard}`,
    };
  }
  const expected = h.count * BYTES_PER_ELEMENT[h.dtype];
  if (byteLength !== expected) {
    return {
      ok: false,
      reason: 'size',
      detail: `expected ${expected} bytes for ${h.count} ${h.dtype} elements, got ${byteLength}`,
    };
  }
  return { ok: true };
}
