// Seeded pseudo-random numbers that come out the same in every process: the data plan's
// permutations, validation splits and synthetic datasets derive from them, so a worker can
// recompute what the coordinator planned from (seed, epoch) alone and a resumed job replays the
// same order. xoshiro128** seeded through splitmix32; the integer path uses only 32-bit integer
// operations (Math.imul, shifts), so it never depends on floating-point rounding.

export interface Prng {
  /** The next uniform integer in [0, 2^32). */
  uint32(): number;
  /** A uniform float in [0, 1) with 32 bits of resolution. */
  float(): number;
  /** A uniform integer in [0, n), without modulo bias; n is an integer in 1..2^32. */
  int(n: number): number;
  /** A standard normal sample (Box–Muller). */
  normal(): number;
}

const TWO_32 = 4294967296;

function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * A generator whose stream is a function of all `seeds` (safe integers, order matters), e.g.
 * `createPrng(seed, epoch, STREAM_ID)`: different tuples give independent-looking streams.
 */
export function createPrng(...seeds: number[]): Prng {
  let h = 0x243f6a88;
  for (const s of seeds) {
    if (!Number.isSafeInteger(s)) throw new Error(`a PRNG seed must be a safe integer, got ${s}`);
    // Both 32-bit halves take part, so seeds that differ only above bit 31 still differ.
    h = fmix32(h ^ (s >>> 0));
    h = fmix32((h + 0x9e3779b9) ^ (Math.floor(s / TWO_32) >>> 0));
  }
  let sm = h;
  const splitmix32 = (): number => {
    sm = (sm + 0x9e3779b9) | 0;
    return fmix32(sm);
  };
  let s0 = splitmix32();
  let s1 = splitmix32();
  let s2 = splitmix32();
  let s3 = splitmix32();
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1; // the all-zero state is a fixed point

  const uint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
  const float = (): number => uint32() / TWO_32;
  return {
    uint32,
    float,
    int(n: number): number {
      if (!Number.isInteger(n) || n < 1 || n > TWO_32)
        throw new Error(`Prng.int(n) needs an integer n in 1..2^32, got ${n}`);
      // Reject the top partial block of the 32-bit range so every residue is equally likely.
      const limit = TWO_32 - (TWO_32 % n);
      let x = uint32();
      while (x >= limit) x = uint32();
      return x % n;
    },
    normal(): number {
      const u1 = 1 - float(); // (0, 1]: log(0) would be -Infinity
      const u2 = float();
      return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    },
  };
}

/** 0..size-1 in the order of a Fisher–Yates shuffle driven by `rng`. */
export function randomPermutation(size: number, rng: Prng): Int32Array {
  const order = new Int32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  for (let i = size - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
}

/** Stream ids that keep the different uses of one job seed independent of each other. */
export const PRNG_STREAM = {
  permutation: 0x7065726d,
  validationSplit: 0x76616c69,
  synthetic: 0x73796e74,
} as const;
