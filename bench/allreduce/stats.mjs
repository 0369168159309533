// The arithmetic of the report: order statistics over iterations and the NCCL-tests bandwidth
// definitions, plus the bytes a NATS server must deliver for one sharded all-reduce.

/** @param {number[]} xs */
export function median(xs) {
  if (xs.length === 0) throw new Error('median of no values: a case needs at least one timed iteration');
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** @param {number[]} xs */
export function summary(xs) {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

/** Bytes per element on the wire. */
export const WIRE_BYTES = { f32: 4, f16: 2, bf16: 2 };

/**
 * Bytes the server delivers to subscribers for one all-reduce of `fp32Bytes` among `world`
 * ranks: each of the N shards (S'/N wire bytes) comes in from N-1 contributors to its owner,
 * then goes out from its owner to the N-1 other ranks, so 2(N-1)·S'/N per shard, 2(N-1)·S' in all.
 */
export function deliveredBytes(fp32Bytes, world, dtype) {
  const wireBytes = (fp32Bytes / 4) * WIRE_BYTES[dtype];
  return 2 * (world - 1) * wireBytes;
}

export const DELIVERY_FORMULA =
  "delivered = 2(N-1)*S' per all-reduce, S' = wire bytes (S for f32, S/2 for f16/bf16): " +
  "each of the N shards (S'/N) reaches its owner from N-1 ranks (reduce-scatter) and goes from its owner " +
  "to the N-1 others (all-gather; no echo to the owner), 2(N-1)*S'/N per shard; so 2(N-1)*S holds for f32 only";

/**
 * @param {number} fp32Bytes  S, the size of the fp32 buffer
 * @param {number} world  N
 * @param {number} seconds  time of one all-reduce
 */
export function bandwidths(fp32Bytes, world, seconds) {
  const algbw = fp32Bytes / seconds;
  return { algbw, busbw: (algbw * 2 * (world - 1)) / world };
}
