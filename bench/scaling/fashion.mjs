// The Fashion-MNIST files the training benchmarks and tests read, and subsets of them: the first N
// samples of a split written as IDX files, so a shorter run trains on the same samples on both sides.
// The one writer of such subsets: tests/support/jobs.ts and scripts/gpu/pack.sh use it too.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

export const FASHION_DIR = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

/** The two files of a split: IDX header bytes (magic, count, dimensions) and bytes per sample. */
const PARTS = [
  { part: 'images', idx: 'images-idx3', header: 16, sampleBytes: 28 * 28 },
  { part: 'labels', idx: 'labels-idx1', header: 8, sampleBytes: 1 },
];

const datasetFile = (dir, split, idx) => join(dir, `${split}-${idx}-ubyte.gz`);

/** Throws naming the missing file when the dataset is not where the benchmarks look. */
export function checkFashion(splits = ['train', 't10k']) {
  for (const split of splits) {
    for (const { idx } of PARTS) {
      const file = datasetFile(FASHION_DIR, split, idx);
      if (!existsSync(file)) {
        throw new Error(
          `expected Fashion-MNIST at ${file}; set FASHION_MNIST_DIR to the directory holding the .gz files`,
        );
      }
    }
  }
}

/** An idx source of a whole split: the .gz files as they are. */
export function fashionSource(split) {
  return {
    type: 'idx',
    images: datasetFile(FASHION_DIR, split, 'images-idx3'),
    labels: datasetFile(FASHION_DIR, split, 'labels-idx1'),
  };
}

/** The samples a split holds: the count in its labels file's IDX header (the smaller file to unpack). */
export async function fashionCount(split, from = FASHION_DIR) {
  return gunzipSync(await readFile(datasetFile(from, split, 'labels-idx1'))).readUInt32BE(4);
}

/**
 * Writes the first `count` samples of a Fashion-MNIST split into `dir` and returns them as an idx
 * source. Throws when the split holds fewer samples than that.
 * @param {string} dir
 * @param {'train' | 't10k'} split
 * @param {number} count
 * @param {{ from?: string, gzip?: boolean, names?: 'subset' | 'dataset' }} [options]
 *   from: the dataset directory (default FASHION_DIR); gzip: compress the files (gzip level 9);
 *   names: 'subset' (default) writes `${split}-${count}-images.idx`, 'dataset' the split's own names
 *   (`${split}-images-idx3-ubyte`), so that `dir` reads as a Fashion-MNIST directory
 * @returns {Promise<{ type: 'idx', images: string, labels: string }>}
 */
export async function writeFashionSubset(
  dir,
  split,
  count,
  { from = FASHION_DIR, gzip = false, names = 'subset' } = {},
) {
  if (!Number.isInteger(count) || count < 1) {
    throw new Error(`expected a whole number of samples >= 1 to take from ${split}, got ${count}`);
  }
  if (names !== 'subset' && names !== 'dataset') throw new Error(`expected names 'subset' or 'dataset', got ${names}`);
  const source = { type: 'idx' };
  for (const { part, idx, header, sampleBytes } of PARTS) {
    const file = datasetFile(from, split, idx);
    const all = gunzipSync(await readFile(file));
    const holds = all.readUInt32BE(4);
    if (count > holds) {
      throw new Error(`expected at most the ${holds} samples ${file} holds, got ${count}; ask for ${holds} or fewer`);
    }
    const head = Buffer.from(all.subarray(0, header + count * sampleBytes));
    head.writeUInt32BE(count, 4);
    const name = names === 'dataset' ? `${split}-${idx}-ubyte` : `${split}-${count}-${part}.idx`;
    source[part] = join(dir, gzip ? `${name}.gz` : name);
    await writeFile(source[part], gzip ? gzipSync(head, { level: 9 }) : head);
  }
  return source;
}
