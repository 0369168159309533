// How one global step's samples are divided among the ranks: contiguous runs of the step's part
// of the epoch permutation, in rank order, as even as possible. Sent to workers as (start, count)
// pairs, so a plan message stays a few bytes per rank whatever the batch size.
import { z } from 'zod';

/** Positions [start, start + count) of the epoch permutation. */
export const sampleSliceSchema = z.strictObject({
  start: z.number().int().min(0),
  count: z.number().int().min(0),
});
export type SampleSlice = z.infer<typeof sampleSliceSchema>;

/**
 * Divides `count` samples starting at `start` over `worldSize` ranks: the first count % worldSize
 * ranks get one more; when count < worldSize the last ranks get empty slices (count 0).
 */
export function splitEvenly(start: number, count: number, worldSize: number): SampleSlice[] {
  if (!Number.isInteger(worldSize) || worldSize < 1)
    throw new Error(`world size must be an integer >= 1, got ${worldSize}`);
  const base = Math.floor(count / worldSize);
  const extra = count % worldSize;
  const slices: SampleSlice[] = [];
  let at = start;
  for (let r = 0; r < worldSize; r++) {
    const n = base + (r < extra ? 1 : 0);
    slices.push({ start: at, count: n });
    at += n;
  }
  return slices;
}
