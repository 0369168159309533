// Reassembles byte blobs (model files, replica states) that arrive as numbered chunks, in any order,
// over NATS messages no larger than the server's max_payload.

/** Room left in each message for the msgpack envelope (the control message) around a chunk. */
const ENVELOPE_BYTES = 4096;
/** Keeps chunks non-empty where max_payload leaves no room beyond the envelope (their publish then fails, naming the limit). */
const MIN_CHUNK_BYTES = 1024;

export class ChunkAssembler {
  private readonly parts = new Map<string, { total: number; chunks: (Uint8Array | undefined)[]; received: number }>();

  /** Stores one chunk (a repeat is ignored); returns true when the blob it belongs to is complete. */
  add(name: string, index: number, total: number, data: Uint8Array): boolean {
    let p = this.parts.get(name);
    if (!p || p.total !== total) {
      p = { total, chunks: new Array<Uint8Array | undefined>(total).fill(undefined), received: 0 };
      this.parts.set(name, p);
    }
    if (index < total && !p.chunks[index]) {
      p.chunks[index] = data;
      p.received += 1;
    }
    return p.received === p.total;
  }

  complete(names: readonly string[]): boolean {
    return names.every((n) => {
      const p = this.parts.get(n);
      return p !== undefined && p.received === p.total;
    });
  }

  missing(names: readonly string[]): string[] {
    return names.filter((n) => !this.complete([n]));
  }

  /** The complete blob, forgotten afterwards. */
  take(name: string): Uint8Array {
    const p = this.parts.get(name);
    if (!p || p.received !== p.total) throw new Error(`blob ${name} is not complete`);
    this.parts.delete(name);
    const chunks = p.chunks as Uint8Array[];
    const blob = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      blob.set(c, at);
      at += c.length;
    }
    return blob;
  }
}

/**
 * Splits `data` into chunks that fit, with the control message around each, in one message of a
 * server whose max_payload is `maxPayload` (one empty chunk for empty data).
 */
export function splitChunks(data: Uint8Array, maxPayload: number): Uint8Array[] {
  const chunkBytes = Math.max(MIN_CHUNK_BYTES, maxPayload - ENVELOPE_BYTES);
  const total = Math.max(1, Math.ceil(data.length / chunkBytes));
  return Array.from({ length: total }, (_, i) =>
    data.subarray(i * chunkBytes, Math.min(data.length, (i + 1) * chunkBytes)),
  );
}
