// Reassembles byte blobs (model files, replica states) that arrive as numbered chunks, in any order,
// over NATS messages no larger than the server's max_payload. What a receiver holds is bounded: a
// declared chunk count, the bytes and the number of blobs in progress, and how long a blob may take
// to complete; chunks beyond a bound are refused and a blob past its deadline is dropped.

/**
 * The largest blob shipped in chunks: 2 GiB, the replica state of a model of about 170 M parameters
 * with Adam's two slots (12 bytes a parameter). A longer one is refused when it is split, and a
 * message declaring more chunks than it takes is invalid.
 */
export const MAX_BLOB_BYTES = 2 ** 31;
/** Room left in each message for the msgpack envelope (the control message) around a chunk. */
const ENVELOPE_BYTES = 4096;
/** Keeps chunks non-empty where max_payload leaves no room beyond the envelope (their publish then fails, naming the limit). */
const MIN_CHUNK_BYTES = 1024;
/** The most chunks a blob can have: the largest blob in the smallest chunks. */
export const MAX_CHUNKS = Math.ceil(MAX_BLOB_BYTES / MIN_CHUNK_BYTES);

export interface AssemblerLimits {
  /** Bytes held for blobs not yet taken, all together (default MAX_BLOB_BYTES). */
  maxBytes?: number;
  /** Blobs in progress at once (default 64, the most files a `saved` report lists). */
  maxBlobs?: number;
  /** A blob not complete this long after its first chunk is dropped (default: never). */
  maxAgeMs?: number;
  /**
   * Told of every refused chunk (`range`: a count or index out of bounds; `backlog`: over a bound on
   * what is held) and every blob dropped at its deadline (`expired`), with what was wrong.
   */
  onDrop?(name: string, kind: 'range' | 'backlog' | 'expired', detail: string): void;
}

interface PendingBlob {
  total: number;
  chunks: Map<number, Uint8Array>;
  bytes: number;
  timer?: ReturnType<typeof setTimeout>;
}

export class ChunkAssembler {
  private readonly parts = new Map<string, PendingBlob>();
  private held = 0;
  private readonly maxBytes: number;
  private readonly maxBlobs: number;

  constructor(private readonly limits: AssemblerLimits = {}) {
    this.maxBytes = limits.maxBytes ?? MAX_BLOB_BYTES;
    this.maxBlobs = limits.maxBlobs ?? 64;
  }

  /** Bytes held for blobs not yet taken. */
  get heldBytes(): number {
    return this.held;
  }

  /** Blobs with at least one chunk held, complete or not. */
  get blobs(): number {
    return this.parts.size;
  }

  /**
   * Stores one chunk (a repeat is ignored); returns true when the blob it belongs to is complete.
   * A chunk outside the limits is refused (onDrop says why) and returns false.
   */
  add(name: string, index: number, total: number, data: Uint8Array): boolean {
    if (!Number.isInteger(total) || total < 1 || total > MAX_CHUNKS)
      return this.refuse(name, 'range', `expected a chunk count in [1, ${MAX_CHUNKS}], got ${total}`);
    if (!Number.isInteger(index) || index < 0 || index >= total)
      return this.refuse(name, 'range', `expected a chunk index in [0, ${total}), got ${index}`);
    let p = this.parts.get(name);
    if (p && p.total !== total)
      return this.refuse(
        name,
        'range',
        `chunk ${index} says the blob has ${total} chunks, earlier ones said ${p.total}`,
      );
    if (p?.chunks.has(index)) return p.chunks.size === p.total;
    if (!p && this.parts.size >= this.maxBlobs)
      return this.refuse(name, 'backlog', `${this.parts.size} blobs are in progress already, the most held at once`);
    if (this.held + data.length > this.maxBytes || (p?.bytes ?? 0) + data.length > MAX_BLOB_BYTES) {
      return this.refuse(
        name,
        'backlog',
        `${this.held} bytes are held already; ${data.length} more would pass the bound of ${Math.min(this.maxBytes, MAX_BLOB_BYTES)}`,
      );
    }
    if (!p) {
      p = { total, chunks: new Map(), bytes: 0 };
      this.parts.set(name, p);
      if (this.limits.maxAgeMs !== undefined) p.timer = this.expireLater(name, p, this.limits.maxAgeMs);
    }
    p.chunks.set(index, data);
    p.bytes += data.length;
    this.held += data.length;
    if (p.chunks.size !== p.total) return false;
    clearTimeout(p.timer);
    return true;
  }

  complete(names: readonly string[]): boolean {
    return names.every((n) => {
      const p = this.parts.get(n);
      return p !== undefined && p.chunks.size === p.total;
    });
  }

  missing(names: readonly string[]): string[] {
    return names.filter((n) => !this.complete([n]));
  }

  /** The complete blob, forgotten afterwards. */
  take(name: string): Uint8Array {
    const p = this.parts.get(name);
    if (!p || p.chunks.size !== p.total) throw new Error(`blob ${name} is not complete`);
    this.forget(name, p);
    const blob = new Uint8Array(p.bytes);
    let at = 0;
    for (let i = 0; i < p.total; i++) {
      const c = p.chunks.get(i) as Uint8Array;
      blob.set(c, at);
      at += c.length;
    }
    return blob;
  }

  /** Drops every blob held, complete or not. */
  clear(): void {
    for (const [name, p] of [...this.parts]) this.forget(name, p);
  }

  private forget(name: string, p: PendingBlob): void {
    clearTimeout(p.timer);
    this.parts.delete(name);
    this.held -= p.bytes;
  }

  private expireLater(name: string, p: PendingBlob, ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      if (this.parts.get(name) !== p) return;
      this.forget(name, p);
      this.limits.onDrop?.(
        name,
        'expired',
        `incomplete ${ms} ms after its first chunk: ${p.chunks.size} of ${p.total} chunks came`,
      );
    }, ms);
    // A blob that never completes must not keep the process alive.
    timer.unref?.();
    return timer;
  }

  private refuse(name: string, kind: 'range' | 'backlog', detail: string): false {
    this.limits.onDrop?.(name, kind, detail);
    return false;
  }
}

/**
 * Splits `data` into chunks that fit, with the control message around each, in one message of a
 * server whose max_payload is `maxPayload` (one empty chunk for empty data).
 */
export function splitChunks(data: Uint8Array, maxPayload: number): Uint8Array[] {
  if (data.length > MAX_BLOB_BYTES) {
    throw new Error(
      `cannot ship ${data.length} bytes in chunks: the most a model file or replica state may have is ${MAX_BLOB_BYTES} bytes (MAX_BLOB_BYTES)`,
    );
  }
  const chunkBytes = Math.max(MIN_CHUNK_BYTES, maxPayload - ENVELOPE_BYTES);
  const total = Math.max(1, Math.ceil(data.length / chunkBytes));
  return Array.from({ length: total }, (_, i) =>
    data.subarray(i * chunkBytes, Math.min(data.length, (i + 1) * chunkBytes)),
  );
}
