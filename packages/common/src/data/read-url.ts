// Resolves a dataset file reference to its bytes, whatever the URL scheme: a local path,
// file://, http(s):// through the download cache, or nats-obj:// from the object store.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import { verifySha256 } from './checksum.js';
import { fetchCached } from './http-cache.js';
import { OBJECT_URL_PREFIX, readObject } from './object-store.js';
import { urlScheme } from './url.js';

export interface ReadUrlOptions {
  /** Needed for nats-obj:// URLs. */
  nc?: NatsConnection;
  /** Where http(s) downloads are kept; defaults to TFJS_DDP_CACHE or ~/.cache/tfjs-ddp. */
  cacheDir?: string;
  logger?: Logger;
}

/** A dataset file and, optionally, the sha256 its bytes must have. */
export interface FileRef {
  url: string;
  /** Lower-case hex, as the source schemas leave it. */
  sha256?: string;
}

export async function readUrl(ref: FileRef, opts: ReadUrlOptions = {}): Promise<Uint8Array> {
  const { url, sha256 } = ref;
  const scheme = urlScheme(url);
  switch (scheme) {
    case 'http':
    case 'https':
      return fetchCached(url, { cacheDir: opts.cacheDir, sha256, logger: opts.logger });
    case 'nats-obj': {
      if (!opts.nc)
        throw new Error(
          `${url} is in a NATS object store, but no NATS connection was given; pass --nats URL (or set TFJS_DDP_NATS_URL)`,
        );
      const bytes = await readObject(opts.nc, url);
      verifySha256(bytes, url, sha256);
      return bytes;
    }
    case 'file':
    case undefined: {
      const path = scheme ? fileURLToPath(url) : url;
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path);
      } catch (err) {
        throw new Error(`cannot read dataset file ${url}: ${(err as Error).message}`, { cause: err });
      }
      verifySha256(bytes, url, sha256);
      return bytes;
    }
    default:
      throw new Error(
        `unsupported URL scheme ${scheme}:// in ${url}; use a local path, file://, http(s):// or ${OBJECT_URL_PREFIX}bucket/name`,
      );
  }
}
