// Chunks that arrive for an operation this rank has not started yet. A fast rank may start op k+1
// while this one still finishes op k; its chunks wait here (copied: the socket buffer they came in
// is not ours) and are replayed when op k+1 starts. Bounded in bytes so a runaway peer cannot
// exhaust memory.
import type { InboundChunk } from './inbound-chunk.js';

// Per-entry bookkeeping (header object, subject string) counted against the bound as well.
const ENTRY_OVERHEAD = 256;

export class FutureQueue {
  private entries: InboundChunk[] = [];
  private held = 0;

  constructor(private readonly maxBytes: number) {}

  get bytes(): number {
    return this.held;
  }

  /** Holds a copy of the chunk; false when it does not fit the bound (the caller counts the drop). */
  push(chunk: InboundChunk): boolean {
    const size = chunk.data.length + ENTRY_OVERHEAD;
    if (this.held + size > this.maxBytes) return false;
    this.entries.push({ ...chunk, data: chunk.data.slice() });
    this.held += size;
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
      this.held = kept.reduce((n, e) => n + e.data.length + ENTRY_OVERHEAD, 0);
    }
    return { current, stale };
  }

  clear(): void {
    this.entries = [];
    this.held = 0;
  }
}
