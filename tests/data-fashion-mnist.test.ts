import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSource } from '@tfjs-ddp/common';
import { FASHION_DIR as DIR } from './support/jobs.js';
const present = existsSync(join(DIR, 't10k-images-idx3-ubyte.gz'));
if (!present)
  process.stderr.write(`[data-fashion-mnist] skipped: Fashion-MNIST not found in ${DIR} (set FASHION_MNIST_DIR)\n`);

describe.skipIf(!present)(`real Fashion-MNIST test set from ${DIR}`, () => {
  it('loads 10,000 28×28 images in [0, 1] with 1,000 of each of the 10 classes', async () => {
    const ds = await loadSource({
      type: 'idx',
      images: join(DIR, 't10k-images-idx3-ubyte.gz'),
      labels: join(DIR, 't10k-labels-idx1-ubyte.gz'),
    });
    expect(ds.count).toBe(10_000);
    expect(ds.featureShape).toEqual([28, 28, 1]);
    expect(ds.numClasses).toBe(10);
    expect(ds.x.length).toBe(10_000 * 784);

    const perClass = new Array<number>(10).fill(0);
    for (const l of ds.y) perClass[l]++;
    expect(perClass).toEqual(new Array(10).fill(1000));

    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    for (const v of ds.x) {
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    // The published mean pixel intensity of Fashion-MNIST is about 0.286.
    expect(sum / ds.x.length).toBeGreaterThan(0.27);
    expect(sum / ds.x.length).toBeLessThan(0.3);
  });
});
