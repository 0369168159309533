// The in-memory dataset every source produces, and the cheap operations the training step and
// the coordinator need on it: gathering a batch into reusable buffers without allocating, taking
// a subset, and a deterministic train/validation split.
import { createPrng, PRNG_STREAM, randomPermutation } from './prng.js';

/**
 * Samples stored row-major in flat float arrays. Labels are floats: a class index when
 * `numClasses` is set, a regression target otherwise. A loaded dataset is shared by everything
 * in the process that loaded the same source: treat `x` and `y` as read-only.
 */
export interface Dataset {
  name: string;
  count: number;
  /** Shape of one sample, e.g. [28, 28, 1] for MNIST or [2] for two features. */
  featureShape: number[];
  /** Shape of one label; absent means one value per sample. */
  labelShape?: number[];
  /** Number of classes for classification; absent for regression. */
  numClasses?: number;
  /** count × featureSize values. */
  x: Float32Array;
  /** count × labelSize values. */
  y: Float32Array;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Floats per sample. */
export function featureSize(ds: Dataset): number {
  return product(ds.featureShape);
}

/** Floats per label (1 unless the dataset has a labelShape). */
export function labelSize(ds: Dataset): number {
  return ds.labelShape ? product(ds.labelShape) : 1;
}

/** Checks that the arrays match count and shapes, so a malformed dataset fails where it is made. */
export function createDataset(ds: Dataset): Dataset {
  const dims = [...ds.featureShape, ...(ds.labelShape ?? [])];
  if (!Number.isInteger(ds.count) || ds.count < 0)
    throw new Error(`dataset ${ds.name}: count must be a non-negative integer, got ${ds.count}`);
  if (ds.featureShape.length === 0 || dims.some((d) => !Number.isInteger(d) || d < 1))
    throw new Error(
      `dataset ${ds.name}: shapes need positive integer dimensions, got featureShape [${ds.featureShape}]` +
        (ds.labelShape ? ` and labelShape [${ds.labelShape}]` : ''),
    );
  if (ds.x.length !== ds.count * featureSize(ds))
    throw new Error(
      `dataset ${ds.name}: x has ${ds.x.length} values but ${ds.count} samples of shape [${ds.featureShape}] need ${ds.count * featureSize(ds)}`,
    );
  if (ds.y.length !== ds.count * labelSize(ds))
    throw new Error(
      `dataset ${ds.name}: y has ${ds.y.length} values but ${ds.count} labels need ${ds.count * labelSize(ds)}`,
    );
  if (ds.numClasses !== undefined && (!Number.isInteger(ds.numClasses) || ds.numClasses < 2))
    throw new Error(`dataset ${ds.name}: numClasses must be an integer of at least 2, got ${ds.numClasses}`);
  return ds;
}

/**
 * Copies the samples at `indices` into the front of `xOut` and `yOut` and returns how many it
 * copied. Allocates nothing, so the training step can call it every step with buffers sized once
 * for the largest local batch.
 */
export function gatherBatch(ds: Dataset, indices: ArrayLike<number>, xOut: Float32Array, yOut: Float32Array): number {
  const f = featureSize(ds);
  const l = labelSize(ds);
  const n = indices.length;
  if (xOut.length < n * f || yOut.length < n * l)
    throw new Error(
      `gatherBatch: buffers too small for ${n} samples of ${ds.name}: need x ${n * f} and y ${n * l} floats, ` +
        `got ${xOut.length} and ${yOut.length}; size them for the largest local batch`,
    );
  const { x, y, count } = ds;
  for (let k = 0; k < n; k++) {
    const i = indices[k];
    if (!(i >= 0 && i < count && Number.isInteger(i)))
      throw new Error(`gatherBatch: sample index ${i} is out of range for ${ds.name}, which has ${count} samples`);
    const xs = i * f;
    const xd = k * f;
    for (let j = 0; j < f; j++) xOut[xd + j] = x[xs + j];
    const ys = i * l;
    const yd = k * l;
    for (let j = 0; j < l; j++) yOut[yd + j] = y[ys + j];
  }
  return n;
}

/** A new dataset holding copies of the samples at `indices`, in that order. */
export function subset(ds: Dataset, indices: ArrayLike<number>, name = ds.name): Dataset {
  const x = new Float32Array(indices.length * featureSize(ds));
  const y = new Float32Array(indices.length * labelSize(ds));
  gatherBatch(ds, indices, x, y);
  return createDataset({ ...ds, name, count: indices.length, x, y });
}

/**
 * Splits off round(fraction × count) samples, chosen by a permutation seeded with `seed`, as a
 * validation set. The same (dataset, fraction, seed) gives the same split in every process, and
 * each part keeps the original sample order.
 */
export function splitValidation(ds: Dataset, fraction: number, seed: number): { train: Dataset; validation: Dataset } {
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`validation fraction must be in [0, 1), got ${fraction}`);
  const nValidation = Math.round(fraction * ds.count);
  if (nValidation === 0) return { train: ds, validation: subset(ds, [], `${ds.name}[validation]`) };
  const order = randomPermutation(ds.count, createPrng(seed, PRNG_STREAM.validationSplit));
  const validation = order.slice(0, nValidation).sort();
  const train = order.slice(nValidation).sort();
  return {
    train: subset(ds, train, `${ds.name}[train]`),
    validation: subset(ds, validation, `${ds.name}[validation]`),
  };
}
