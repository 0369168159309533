import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearLoadedDatasets, loadSource, sha256Hex } from '@tfjs-ddp/common';
import { idxImages, idxLabels, label, pixel, writeIdxPair } from './fixtures/data/idx-files.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-idx-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => clearLoadedDatasets());

async function file(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

describe('IDX source', () => {
  for (const gzip of [false, true]) {
    it(`round-trips every pixel and label of ${gzip ? 'gzip-compressed' : 'raw'} files`, async () => {
      const { images, labels } = await writeIdxPair(dir, { count: 7, rows: 4, cols: 3, gzip, prefix: `rt${gzip}` });
      const ds = await loadSource({ type: 'idx', images, labels });
      expect(ds.count).toBe(7);
      expect(ds.featureShape).toEqual([4, 3, 1]);
      expect(ds.x.length).toBe(7 * 12);
      for (let i = 0; i < ds.x.length; i++) expect(ds.x[i]).toBe(Math.fround(pixel(i) / 255));
      expect(Array.from(ds.y)).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => label(i)));
    });
  }

  it('takes the number of classes from the largest label unless the spec sets it', async () => {
    const { images, labels } = await writeIdxPair(dir, { count: 7, rows: 1, cols: 1, prefix: 'classes' });
    expect(Math.max(...[0, 1, 2, 3, 4, 5, 6].map((i) => label(i)))).toBe(8);
    expect((await loadSource({ type: 'idx', images, labels })).numClasses).toBe(9);
    expect((await loadSource({ type: 'idx', images, labels, numClasses: 10 })).numClasses).toBe(10);
  });

  it('detects gzip by its magic bytes, not the file name', async () => {
    const images = await file('looks-raw-images', gzipSync(idxImages(3, 2, 2)));
    const labels = await file('looks-compressed-labels.gz', idxLabels(3));
    const ds = await loadSource({ type: 'idx', images, labels });
    expect(ds.count).toBe(3);
  });

  it('keeps 0..255 pixel values when normalize is false, and reads file:// URLs', async () => {
    const { images, labels } = await writeIdxPair(dir, { count: 2, rows: 2, cols: 2, prefix: 'raw255' });
    const ds = await loadSource({
      type: 'idx',
      images: pathToFileURL(images).href,
      labels: pathToFileURL(labels).href,
      normalize: false,
    });
    expect(Array.from(ds.x)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map(pixel));
  });

  it('names the file and the sizes when the image file is truncated', async () => {
    const full = idxImages(100, 28, 28);
    const images = await file('short-images', full.subarray(0, 16 + 10 * 784));
    const labels = await file('short-labels', idxLabels(100));
    await expect(loadSource({ type: 'idx', images, labels })).rejects.toThrow(
      `${images} is truncated: header says 100 images of 28×28 (78416 bytes) but the file has 7856`,
    );
  });

  it('names the file when the label file is truncated', async () => {
    const images = await file('ok-images', idxImages(5, 2, 2));
    const labels = await file('short-labels2', idxLabels(5).subarray(0, 10));
    await expect(loadSource({ type: 'idx', images, labels })).rejects.toThrow(
      `${labels} is truncated: header says 5 labels (13 bytes) but the file has 10`,
    );
  });

  it('rejects a file with bytes after the data its header describes', async () => {
    const images = await file('long-images', new Uint8Array([...idxImages(2, 2, 2), 0, 0, 0]));
    const labels = await file('long-labels', idxLabels(2));
    await expect(loadSource({ type: 'idx', images, labels })).rejects.toThrow(
      `${images} is corrupt: header says 2 images of 2×2 (24 bytes) but the file has 27, 3 bytes too many`,
    );
  });

  it('rejects a bad magic number and says what was expected', async () => {
    const bytes = idxImages(2, 2, 2);
    bytes[0] = 0x50;
    bytes[1] = 0x4b;
    const images = await file('zip-images', bytes);
    const labels = await file('zip-labels', idxLabels(2));
    await expect(loadSource({ type: 'idx', images, labels })).rejects.toThrow(
      /zip-images is not an IDX image file: its magic number is 0x504b0803, expected 0x00000803/,
    );
  });

  it('notices images and labels URLs given the wrong way round', async () => {
    const images = await file('swap-images', idxImages(2, 2, 2));
    const labels = await file('swap-labels', idxLabels(2));
    await expect(loadSource({ type: 'idx', images: labels, labels: images })).rejects.toThrow(
      /swap-labels has 1 dimension\(s\).*are the images and labels URLs swapped\?/,
    );
  });

  it('rejects image and label files with different sample counts', async () => {
    const images = await file('count-images', idxImages(6, 2, 2));
    const labels = await file('count-labels', idxLabels(5));
    await expect(loadSource({ type: 'idx', images, labels })).rejects.toThrow(
      `${images} has 6 images but ${labels} has 5 labels`,
    );
  });

  it('names a corrupt gzip file', async () => {
    const gz = gzipSync(idxImages(50, 8, 8));
    const images = await file('cut.gz', gz.subarray(0, gz.length >> 1));
    const labels = await file('cut-labels', idxLabels(50));
    await expect(loadSource({ type: 'idx', images, labels })).rejects.toThrow(
      /cut\.gz starts with the gzip magic bytes but does not decompress/,
    );
  });

  it('rejects labels outside the declared number of classes', async () => {
    const images = await file('cls-images', idxImages(10, 2, 2));
    const labels = await file('cls-labels', idxLabels(10));
    await expect(loadSource({ type: 'idx', images, labels, numClasses: 5 })).rejects.toThrow(
      /has label 9, but numClasses is 5/,
    );
  });

  it('says which file is missing', async () => {
    const images = join(dir, 'no-such-images.gz');
    await expect(loadSource({ type: 'idx', images, labels: images })).rejects.toThrow(
      `cannot read dataset file ${images}: ENOENT`,
    );
  });

  it('checks a pinned sha256 of a local file', async () => {
    const { images, labels } = await writeIdxPair(dir, { count: 2, rows: 2, cols: 2, prefix: 'sha' });
    const wrong = 'ab'.repeat(32);
    await expect(loadSource({ type: 'idx', images, labels, sha256: { images: wrong } })).rejects.toThrow(
      new RegExp(`checksum mismatch for ${images}: expected sha256 ${wrong}, got [0-9a-f]{64}`),
    );
    const good = sha256Hex(await readFile(labels));
    expect((await loadSource({ type: 'idx', images, labels, sha256: { labels: good } })).count).toBe(2);
  });

  it('loads the same source once per process and hands out the same dataset', async () => {
    const { images, labels } = await writeIdxPair(dir, { count: 3, rows: 2, cols: 2, prefix: 'once' });
    const [a, b] = await Promise.all([
      loadSource({ type: 'idx', images, labels }),
      loadSource({ type: 'idx', images, labels, normalize: true }),
    ]);
    expect(a).toBe(b);
    await rm(images);
    expect(await loadSource({ type: 'idx', images, labels })).toBe(a);
    clearLoadedDatasets();
    await expect(loadSource({ type: 'idx', images, labels })).rejects.toThrow(/ENOENT/);
  });
});
