// The owner's reduction of one chunk. Contributions are added in rank order (c0 + c1 + … + cN-1,
// each step rounded to fp32) whatever order they arrived in, so the result depends only on the
// inputs: the invariant that keeps replicas bit-identical across runs and ranks.

/**
 * Sums the chunk of `count` elements in place in `out` at `offset`, where `out` holds the
 * contribution of rank `self` and rank i ≠ self's contribution is in `staging` at
 * `slotIndex(i) · slotStride + slotOffset` (slotIndex skips self). Rank 0's staging slot is used
 * as the accumulator when self ≠ 0, so its contents are consumed.
 */
export function sumInRankOrder(
  out: Float32Array,
  offset: number,
  count: number,
  staging: Float32Array,
  slotStride: number,
  slotOffset: number,
  self: number,
  worldSize: number,
): void {
  // Block by block, so the N-1 passes over a block hit the cache instead of memory
  // (a 64 MiB, 4-rank reduction took 14 ms instead of 24 ms).
  for (let done = 0; done < count; done += BLOCK) {
    const n = Math.min(BLOCK, count - done);
    sumBlock(out, offset + done, n, staging, slotStride, slotOffset + done, self, worldSize);
  }
}

const BLOCK = 16384;

function sumBlock(
  out: Float32Array,
  offset: number,
  count: number,
  staging: Float32Array,
  slotStride: number,
  slotOffset: number,
  self: number,
  worldSize: number,
): void {
  const slot = (i: number) => (i < self ? i : i - 1) * slotStride + slotOffset;
  if (self === 0) {
    for (let i = 1; i < worldSize; i++) addInto(out, offset, staging, slot(i), count);
    return;
  }
  const acc = slot(0);
  for (let i = 1; i < self; i++) addInto(staging, acc, staging, slot(i), count);
  // fp32 addition is commutative bit for bit, so own + (c0 + … + c[self-1]) is the rank-order sum.
  addInto(out, offset, staging, acc, count);
  for (let i = self + 1; i < worldSize; i++) addInto(out, offset, staging, slot(i), count);
}

function addInto(dst: Float32Array, dstOffset: number, src: Float32Array, srcOffset: number, n: number): void {
  for (let k = 0; k < n; k++) dst[dstOffset + k] += src[srcOffset + k];
}
