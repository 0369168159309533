// The Fashion-MNIST files the training benchmarks read, and subsets of them: the first N samples of
// a split written as raw IDX files, so a shorter run trains on the same samples on both sides.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export const FASHION_DIR = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';

/** Throws naming the missing file when the dataset is not where the benchmarks look. */
export function checkFashion(splits = ['train', 't10k']) {
  for (const split of splits) {
    for (const part of ['images-idx3', 'labels-idx1']) {
      const file = join(FASHION_DIR, `${split}-${part}-ubyte.gz`);
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
    images: join(FASHION_DIR, `${split}-images-idx3-ubyte.gz`),
    labels: join(FASHION_DIR, `${split}-labels-idx1-ubyte.gz`),
  };
}

/** An idx source of the first `count` samples of a split, written into `dir`. */
export async function fashionSubsetSource(dir, split, count) {
  const images = gunzipSync(await readFile(join(FASHION_DIR, `${split}-images-idx3-ubyte.gz`)));
  const labels = gunzipSync(await readFile(join(FASHION_DIR, `${split}-labels-idx1-ubyte.gz`)));
  const img = Buffer.from(images.subarray(0, 16 + count * 784));
  img.writeUInt32BE(count, 4);
  const lab = Buffer.from(labels.subarray(0, 8 + count));
  lab.writeUInt32BE(count, 4);
  const source = {
    type: 'idx',
    images: join(dir, `${split}-${count}-images.idx`),
    labels: join(dir, `${split}-${count}-labels.idx`),
  };
  await writeFile(source.images, img);
  await writeFile(source.labels, lab);
  return source;
}
