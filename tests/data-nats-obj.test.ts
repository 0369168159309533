import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  clearLoadedDatasets,
  connectNats,
  loadSource,
  parseObjectUrl,
  putDataset,
  type NatsConnection,
} from '@tfjs-ddp/common';
import { startNats, type NatsFixture } from './support/nats.js';
import { writeIdxPair } from './fixtures/data/idx-files.js';

let nats: NatsFixture | undefined;
let nc: NatsConnection | undefined;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-obj-'));
  nats = await startNats();
  nc = await connectNats({ servers: [nats.url] });
});
afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => clearLoadedDatasets());

describe('nats-obj:// dataset files', () => {
  it('uploads IDX files with progress and loads the same dataset back from the object store', async () => {
    // 3,000 samples of 28×28 are about 2.3 MB of pixels: several object store chunks.
    const local = await writeIdxPair(dir, { count: 3000, rows: 28, cols: 28 });
    const progress: Array<[number, number]> = [];
    const images = await putDataset(nc!, 'datasets', 'mnist/train-images.idx3', local.images, {
      onProgress: (sent, total) => progress.push([sent, total]),
    });
    const labels = await putDataset(nc!, 'datasets', 'mnist/train-labels.idx1', local.labels);
    const size = (await stat(local.images)).size;

    expect(images).toMatchObject({ url: 'nats-obj://datasets/mnist/train-images.idx3', size });
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toEqual([size, size]);
    expect(progress.every(([sent], i) => i === 0 || sent > progress[i - 1][0])).toBe(true);

    const fromStore = await loadSource(
      { type: 'idx', images: images.url, labels: labels.url, sha256: { images: images.sha256, labels: labels.sha256 } },
      { nc },
    );
    const fromDisk = await loadSource({ type: 'idx', images: local.images, labels: local.labels });
    expect(fromStore.count).toBe(3000);
    // Byte comparison: a deep equality over 2.3 million elements would dominate the test's time.
    expect(Buffer.from(fromStore.x.buffer).equals(Buffer.from(fromDisk.x.buffer))).toBe(true);
    expect(Buffer.from(fromStore.y.buffer).equals(Buffer.from(fromDisk.y.buffer))).toBe(true);
  });

  it('replaces an object uploaded again under the same name', async () => {
    const a = await writeIdxPair(dir, { count: 5, rows: 2, cols: 2, prefix: 'a' });
    const b = await writeIdxPair(dir, { count: 9, rows: 2, cols: 2, prefix: 'b' });
    await putDataset(nc!, 'datasets', 'small/labels', a.labels);
    await putDataset(nc!, 'datasets', 'small/images', a.images);
    await putDataset(nc!, 'datasets', 'small/images', b.images);
    await putDataset(nc!, 'datasets', 'small/labels', b.labels);
    const ds = await loadSource(
      { type: 'idx', images: 'nats-obj://datasets/small/images', labels: 'nats-obj://datasets/small/labels' },
      { nc },
    );
    expect(ds.count).toBe(9);
  });

  it('says to pass --nats when a nats-obj URL is loaded without a connection', async () => {
    await expect(
      loadSource({ type: 'idx', images: 'nats-obj://datasets/x', labels: 'nats-obj://datasets/y' }),
    ).rejects.toThrow(
      /nats-obj:\/\/datasets\/x is in a NATS object store, but no NATS connection was given; pass --nats/,
    );
  });

  it('names the missing object and what the bucket holds, and a missing bucket', async () => {
    await expect(
      loadSource({ type: 'csv', url: 'nats-obj://datasets/nope.csv', features: ['a'], label: 'y' }, { nc }),
    ).rejects.toThrow(
      /nats-obj:\/\/datasets\/nope.csv: bucket "datasets" has no object "nope.csv" \(it has: .*mnist\/train-images.idx3/,
    );
    await expect(
      loadSource({ type: 'csv', url: 'nats-obj://nobucket/t.csv', features: ['a'], label: 'y' }, { nc }),
    ).rejects.toThrow(/cannot open object store bucket "nobucket" for nats-obj:\/\/nobucket\/t.csv/);
  });

  it('rejects an object whose bytes differ from the pinned sha256', async () => {
    const url = 'nats-obj://datasets/small/labels';
    await expect(
      loadSource(
        { type: 'idx', images: 'nats-obj://datasets/small/images', labels: url, sha256: { labels: 'f'.repeat(64) } },
        { nc },
      ),
    ).rejects.toThrow(`checksum mismatch for ${url}: expected sha256 ${'f'.repeat(64)}`);
  });

  it('parses object URLs whose names contain slashes', () => {
    expect(parseObjectUrl('nats-obj://b/x/y.gz')).toEqual({ bucket: 'b', name: 'x/y.gz' });
    expect(() => parseObjectUrl('nats-obj://bucket-only')).toThrow(/expected nats-obj:\/\/bucket\/name/);
  });

  it('names the file when the upload source is missing', async () => {
    await expect(putDataset(nc!, 'datasets', 'x', join(dir, 'absent'))).rejects.toThrow(
      /cannot upload .*absent: ENOENT/,
    );
  });
});
