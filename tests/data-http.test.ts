import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearLoadedDatasets, defaultCacheDir, freePort, loadSource, readUrl, sha256Hex } from '@tfjs-ddp/common';
import { idxImages, idxLabels } from './fixtures/data/idx-files.js';

const files = new Map<string, Uint8Array>([
  ['/fmnist/images.gz', gzipSync(idxImages(20, 4, 4))],
  ['/fmnist/labels.gz', gzipSync(idxLabels(20))],
  ['/table.csv', Buffer.from('a,b,y\n1,2,3\n4,5,6\n')],
]);
const requests: string[] = [];
let server: Server;
let base: string;
let root: string;
let cacheDir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tfjs-ddp-http-'));
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const body = files.get(req.url ?? '');
    if (!body) {
      res.writeHead(404, 'Not Found').end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(root, { recursive: true, force: true });
});
let run = 0;
beforeEach(() => {
  clearLoadedDatasets();
  requests.length = 0;
  cacheDir = join(root, `cache${run++}`);
});

const count = (path: string) => requests.filter((r) => r === path).length;

describe('http(s) dataset files', () => {
  it('downloads each file once into the cache and reads it from there afterwards', async () => {
    const spec = { type: 'idx', images: `${base}/fmnist/images.gz`, labels: `${base}/fmnist/labels.gz` } as const;
    const first = await loadSource(spec, { cacheDir });
    expect(first.count).toBe(20);
    expect(await loadSource(spec, { cacheDir })).toBe(first);
    clearLoadedDatasets();
    const second = await loadSource(spec, { cacheDir });
    expect(second).not.toBe(first);
    expect(second.x).toEqual(first.x);
    expect(count('/fmnist/images.gz')).toBe(1);
    expect(count('/fmnist/labels.gz')).toBe(1);
    const cached = await readdir(cacheDir);
    expect(cached).toHaveLength(2);
    expect(cached.some((f) => f.endsWith('.tmp'))).toBe(false);
  });

  it('rejects a download whose sha256 differs, keeps nothing in the cache, and accepts the right one', async () => {
    const url = `${base}/table.csv`;
    const good = sha256Hex(files.get('/table.csv')!);
    const wrong = '0'.repeat(64);
    const spec = { type: 'csv' as const, url, features: ['a', 'b'], label: 'y' };
    await expect(loadSource({ ...spec, sha256: wrong }, { cacheDir })).rejects.toThrow(
      `checksum mismatch for ${url}: expected sha256 ${wrong}, got ${good}. The download was discarded, not cached.`,
    );
    expect(await readdir(cacheDir)).toEqual([]);

    const ds = await loadSource({ ...spec, sha256: good.toUpperCase() }, { cacheDir });
    expect(Array.from(ds.y)).toEqual([3, 6]);
    expect(count('/table.csv')).toBe(2);
    expect(await readdir(cacheDir)).toHaveLength(1);
  });

  it('downloads again when the cached copy no longer matches the pinned sha256', async () => {
    const url = `${base}/table.csv`;
    const spec = {
      type: 'csv' as const,
      url,
      features: ['a'],
      label: 'y',
      sha256: sha256Hex(files.get('/table.csv')!),
    };
    await loadSource(spec, { cacheDir });
    const [name] = await readdir(cacheDir);
    await writeFile(join(cacheDir, name), 'a,b,y\n9,9,9\n');
    clearLoadedDatasets();
    const ds = await loadSource(spec, { cacheDir });
    expect(Array.from(ds.y)).toEqual([3, 6]);
    expect(count('/table.csv')).toBe(2);
  });

  it('names the URL and the HTTP status when the server refuses', async () => {
    const url = `${base}/missing.csv`;
    await expect(loadSource({ type: 'csv', url, features: ['a'], label: 'y' }, { cacheDir })).rejects.toThrow(
      `cannot download ${url}: the server answered HTTP 404 Not Found`,
    );
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('names the URL when nothing answers there', async () => {
    const url = `http://127.0.0.1:${await freePort()}/t.csv`;
    await expect(loadSource({ type: 'csv', url, features: ['a'], label: 'y' }, { cacheDir })).rejects.toThrow(
      `cannot download ${url}: fetch failed; check the URL and that this machine can reach it`,
    );
  });

  it('keeps the cache in TFJS_DDP_CACHE, or ~/.cache/tfjs-ddp', () => {
    expect(defaultCacheDir({ TFJS_DDP_CACHE: '/data/cache' })).toBe('/data/cache');
    expect(defaultCacheDir({})).toBe(join(homedir(), '.cache', 'tfjs-ddp'));
  });

  it('rejects URL schemes it cannot read: the source spec before loading, and readUrl itself', async () => {
    await expect(
      loadSource({ type: 'csv', url: 's3://bucket/t.csv', features: ['a'], label: 'y' }, { cacheDir }),
    ).rejects.toThrow(
      'invalid data source: url: got "s3://bucket/t.csv", expected a path, a file:// or http(s):// URL, or nats-obj://BUCKET/NAME',
    );
    await expect(readUrl({ url: 's3://bucket/t.csv' }, { cacheDir })).rejects.toThrow(
      /unsupported URL scheme s3:\/\/ in s3:\/\/bucket\/t.csv; use a local path, file:\/\//,
    );
  });
});
