// Chunks that arrive for an operation this rank has not started yet. A fast rank may start op k+1
// while this one still finishes op k; its chunks wait here (copied: the socket buffer they came in
// is not ours) and are replayed when op k+1 starts. Bounded in bytes so a runaway peer cannot
// exhaust memory, and the bound is shared out per sender rank: each peer may hold an equal part,
// so one that floods (or a client claiming its rank) fills its own part, not the others'.
import type { InboundChunk } from './inbound-chunk.js';

// Per-entry bookkeeping (header object, subject string) counted against the bound as well.
const ENTRY_OVERHEAD = 256;

export class FutureQueue {
  private entries: InboundChunk[] = [];
  private held = 0;
  /** Bytes held per sender rank. */
  private readonly bySender = new Map<number, number>();
  /** The most one sender may hold: an equal part of maxBytes for each of the other ranks. */
  readonly perSenderBytes: number;

  constructor(
    private readonly maxBytes: number,
    worldSize: number,
  ) {
    this.perSenderBytes = Math.floor(maxBytes / Math.max(1, worldSize - 1));
  }

  get bytes(): number {
    return this.held;
  }

  /** Bytes held for chunks from `rank`. */
  bytesFrom(rank: number): number {
    return this.bySender.get(rank) ?? 0;
  }

  /** Holds a copy of the chunk; false when it does not fit its sender's part (the caller counts the drop). */
  push(chunk: InboundChunk): boolean {
    const size = chunk.data.length + ENTRY_OVERHEAD;
    const sender = chunk.header.rank;
    const fromSender = this.bytesFrom(sender);
    if (fromSender + size > this.perSenderBytes || this.held + size > this.maxBytes) return false;
    this.entries.push({ ...chunk, data: chunk.data.slice() });
    this.held += size;
    this.bySender.set(sender, fromSender + size);
    return true;
  }

  /** Removes and returns the chunks of `op` (in arrival order) and those of older ops (now stale). */
  take(op: number): { current: InboundChunk[]; stale: InboundChunk[] } {
    const current: InboundChunk[] = [];
    const stale: InboundChunk[] = [];
    const kept: InboundChunk[] = [];
    for (const e of this.entries) {
      if (e.header.op === op) current.push(e);
      else if (e.header.op < op) stale.push(e);
      else kept.push(e);
    }
    if (current.length || stale.length) {
      this.entries = kept;
      this.held = 0;
      this.bySender.clear();
      for (const e of kept) {
        const size = e.data.length + ENTRY_OVERHEAD;
        this.held += size;
        this.bySender.set(e.header.rank, this.bytesFrom(e.header.rank) + size);
      }
    }
    return { current, stale };
  }

  clear(): void {
    this.entries = [];
    this.held = 0;
    this.bySender.clear();
  }
}
