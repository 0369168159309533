// Transparent gzip: dataset files may be stored compressed or not, and the magic bytes, not the
// file name, decide (a mirror may serve train-images-idx3-ubyte.gz already decompressed).
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

const gunzipAsync = promisify(gunzip);

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The decompressed bytes when `bytes` start with the gzip magic, `bytes` unchanged otherwise. */
export async function gunzipIfCompressed(bytes: Uint8Array, file: string): Promise<Uint8Array> {
  if (!isGzip(bytes)) return bytes;
  try {
    // zlib runs on the thread pool, so heartbeats keep flowing while a large file inflates.
    return await gunzipAsync(bytes);
  } catch (err) {
    throw new Error(
      `${file} starts with the gzip magic bytes but does not decompress (${(err as Error).message}); ` +
        `the file is truncated or corrupt: download it again`,
      { cause: err },
    );
  }
}
