// Dataset files in a NATS JetStream object store, addressed as nats-obj://bucket/name: a cluster
// that already runs NATS needs no shared volume or web server to hand every pod the same data.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';

export const OBJECT_URL_PREFIX = 'nats-obj://';

/** Splits nats-obj://bucket/name; the name may contain further slashes. */
export function parseObjectUrl(url: string): { bucket: string; name: string } {
  const m = /^nats-obj:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!m) throw new Error(`${url} is not an object store URL; expected nats-obj://bucket/name`);
  return { bucket: m[1], name: m[2] };
}

async function openBucket(nc: NatsConnection, bucket: string, url: string): Promise<ObjectStore> {
  try {
    return await new Objm(nc).open(bucket);
  } catch (err) {
    throw new Error(
      `cannot open object store bucket ${JSON.stringify(bucket)} for ${url}: ${(err as Error).message}. ` +
        `Upload the file first with \`tfjs-ddp data put\`, and check that the NATS server has JetStream enabled`,
      { cause: err },
    );
  }
}

/** The whole object at a nats-obj:// URL; the object store verifies its digest while reading. */
export async function readObject(nc: NatsConnection, url: string): Promise<Uint8Array> {
  const { bucket, name } = parseObjectUrl(url);
  const os = await openBucket(nc, bucket, url);
  let bytes: Uint8Array | null;
  try {
    bytes = await os.getBlob(name);
  } catch (err) {
    throw new Error(`cannot read ${url} from the object store: ${(err as Error).message}`, { cause: err });
  }
  if (bytes === null) {
    const names = (await os.list()).filter((o) => !o.deleted).map((o) => o.name);
    throw new Error(
      `${url}: bucket ${JSON.stringify(bucket)} has no object ${JSON.stringify(name)}` +
        (names.length
          ? ` (it has: ${names.slice(0, 10).join(', ')}${names.length > 10 ? ', …' : ''})`
          : ' (it is empty)') +
        `; upload it with \`tfjs-ddp data put\``,
    );
  }
  return bytes;
}

export interface PutDatasetOptions {
  /** Called as bytes are handed to the object store, with the running total and the file size. */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
  description?: string;
}

export interface PutDatasetResult {
  /** The URL a data spec uses to load it. */
  url: string;
  bucket: string;
  name: string;
  size: number;
  /** Hex SHA-256 of the file, for the spec's optional sha256. */
  sha256: string;
}

// Larger than the library's 128 KiB default: fewer acknowledged publishes per file. The object
// store clamps it to the server's max_payload.
const CHUNK_BYTES = 1024 * 1024;

/** Uploads a local file into `bucket` (created when missing) as `name`, replacing any older version. */
export async function putDataset(
  nc: NatsConnection,
  bucket: string,
  name: string,
  filePath: string,
  opts: PutDatasetOptions = {},
): Promise<PutDatasetResult> {
  const total = await stat(filePath).then(
    (s) => s.size,
    (err: Error) => {
      throw new Error(`cannot upload ${filePath}: ${err.message}`, { cause: err });
    },
  );
  let os: ObjectStore;
  try {
    os = await new Objm(nc).create(bucket);
  } catch (err) {
    throw new Error(
      `cannot create or open object store bucket ${JSON.stringify(bucket)}: ${(err as Error).message}. ` +
        `The NATS server needs JetStream enabled (nats-server -js) and a bucket name of letters, digits, - and _`,
      { cause: err },
    );
  }
  const hash = createHash('sha256');
  let sent = 0;
  const chunks = createReadStream(filePath, { highWaterMark: CHUNK_BYTES })[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = (await chunks.next()) as IteratorResult<Buffer>;
      if (done) {
        controller.close();
        return;
      }
      hash.update(value);
      sent += value.byteLength;
      controller.enqueue(value);
      opts.onProgress?.(sent, total);
    },
    async cancel() {
      await chunks.return?.();
    },
  });
  try {
    await os.put({ name, description: opts.description, options: { max_chunk_size: CHUNK_BYTES } }, body);
  } catch (err) {
    throw new Error(`upload of ${filePath} to nats-obj://${bucket}/${name} failed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return { url: `${OBJECT_URL_PREFIX}${bucket}/${name}`, bucket, name, size: sent, sha256: hash.digest('hex') };
}
