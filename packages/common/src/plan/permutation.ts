// The order in which an epoch visits the training samples: a permutation that is a pure function
// of (seed, epoch, size). The coordinator sends workers only slice positions into it, and every
// process derives the same indices from them.
import { createPrng, PRNG_STREAM, randomPermutation } from '../data/prng.js';
import type { SampleSlice } from './slices.js';

// The current epoch and the next are all that is ever in use; a few more cover a resume.
const CACHED = 4;
const cache = new Map<string, Int32Array>();

/**
 * The sample order of `epoch`. Cached and shared between callers: do not modify the array.
 */
export function permutation(seed: number, epoch: number, size: number): Int32Array {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`epoch must be an integer >= 0, got ${epoch}`);
  if (!Number.isSafeInteger(size) || size < 0) throw new Error(`dataset size must be an integer >= 0, got ${size}`);
  const key = `${seed}/${epoch}/${size}`;
  let p = cache.get(key);
  if (p) {
    cache.delete(key);
  } else {
    p = randomPermutation(size, createPrng(seed, epoch, PRNG_STREAM.permutation));
    if (cache.size >= CACHED) cache.delete(cache.keys().next().value as string);
  }
  cache.set(key, p);
  return p;
}

/** The sample indices of one slice of an epoch: a view into the cached permutation, no copy. */
export function sliceIndices(seed: number, epoch: number, size: number, slice: SampleSlice): Int32Array {
  if (slice.start < 0 || slice.count < 0 || slice.start + slice.count > size)
    throw new Error(
      `slice {start: ${slice.start}, count: ${slice.count}} does not fit in an epoch of ${size} samples; ` +
        `the plan and this process disagree on the dataset size`,
    );
  return permutation(seed, epoch, size).subarray(slice.start, slice.start + slice.count);
}
