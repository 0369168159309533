// Downloads http(s) dataset files once per machine into a cache directory, so every worker pod
// or process on a node reads the same copy. A file only enters the cache complete and, when the
// spec pins a sha256, verified: it is written to a temporary name and renamed into place.
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { silentLogger, type Logger } from '../log.js';
import { checksumMismatch, sha256Hex } from './checksum.js';

export const CACHE_ENV = 'TFJS_DDP_CACHE';

/** TFJS_DDP_CACHE, or ~/.cache/tfjs-ddp. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env[CACHE_ENV] || join(homedir(), '.cache', 'tfjs-ddp');
}

/** The cache file for a URL: a hash of the whole URL, then its last path segment for people reading the directory. */
export function cachePath(url: string, cacheDir: string): string {
  const base = (new URL(url).pathname.split('/').pop() || 'index').replace(/[^\w.-]/g, '_').slice(-80);
  return join(cacheDir, `${sha256Hex(new TextEncoder().encode(url)).slice(0, 16)}-${base}`);
}

export interface CachedDownloadOptions {
  cacheDir?: string;
  sha256?: string;
  logger?: Logger;
}

/** The bytes of an http(s) URL, from the cache when it holds a good copy, downloaded otherwise. */
export async function fetchCached(url: string, opts: CachedDownloadOptions = {}): Promise<Uint8Array> {
  const log = opts.logger ?? silentLogger;
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const path = cachePath(url, cacheDir);
  const cached = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new Error(`cannot read the cached copy of ${url} at ${path}: ${err.message}`, { cause: err });
  });
  if (cached) {
    const got = opts.sha256 === undefined ? undefined : sha256Hex(cached);
    if (got === opts.sha256) {
      log.debug('dataset file from cache', { url, path });
      return cached;
    }
    log.warn('cached dataset file has the wrong checksum; downloading it again', {
      url,
      path,
      expected: opts.sha256,
      got,
    });
    await rm(path, { force: true });
  }

  await mkdir(cacheDir, { recursive: true });
  const tmp = `${path}.${randomUUID().slice(0, 8)}.tmp`;
  log.info('downloading dataset file', { url, into: path });
  try {
    const res = await fetch(url, { redirect: 'follow' }).catch((err: Error) => {
      throw new Error(`cannot download ${url}: ${err.message}; check the URL and that this machine can reach it`, {
        cause: err,
      });
    });
    if (!res.ok || !res.body)
      throw new Error(`cannot download ${url}: the server answered HTTP ${res.status} ${res.statusText}`.trimEnd());
    const hash = createHash('sha256');
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(res.body as NodeReadableStream<Uint8Array>), hashing, createWriteStream(tmp));
    } catch (err) {
      throw new Error(`download of ${url} failed part way: ${(err as Error).message}`, { cause: err });
    }
    const got = hash.digest('hex');
    if (opts.sha256 !== undefined && got !== opts.sha256)
      throw checksumMismatch(url, opts.sha256, got, 'The download was discarded, not cached.');
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  return readFile(path);
}
