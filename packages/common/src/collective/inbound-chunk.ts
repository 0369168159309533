// Turns a NATS message on a data-plane subject into a chunk the collective can use, or into the
// reason it must be dropped. Checks what needs no operation context: size, header, sender and
// shard against the subject. The subject names the sending member (subjects.ts), so a header's rank
// must be the rank that member holds in this generation: where the NATS server binds each worker's
// credential to its own sender token, a chunk claiming a rank comes from that rank. Never throws.
import type { Msg } from '@nats-io/nats-core';
import { checkChunkHeader, readChunkHeader, type ChunkHeader, type InvalidReason } from '../protocol/index.js';

/** rs: a contribution to this rank's shard; ag: a peer's reduced shard; bc: a broadcast. */
export type ChunkKind = 'rs' | 'ag' | 'bc';

/** Where a message arrived: what its subscription's subject says about it. */
export interface Arrival {
  readonly kind: ChunkKind;
  /** The shard (rs, ag) or root (bc) named by the subject the chunk arrived on. */
  readonly subjectShard: number;
  /**
   * The rank of the member the subject names as the sender; -1: no member of this generation.
   * (rs is received on one wildcard subscription per owner, so it is read from the message's subject.)
   */
  readonly senderRank: number;
  readonly subject: string;
}

export interface InboundChunk extends Arrival {
  readonly header: ChunkHeader;
  readonly data: Uint8Array;
}

export interface ReceiverLimits {
  readonly rank: number;
  readonly worldSize: number;
  /** Largest chunk body of any dtype. */
  readonly maxBodyBytes: number;
}

export type InboundResult = { ok: true; chunk: InboundChunk } | { ok: false; reason: InvalidReason; detail: string };

export function readInboundChunk(msg: Msg, at: Arrival, limits: ReceiverLimits): InboundResult {
  const data = msg.data;
  if (data.length > limits.maxBodyBytes) {
    return {
      ok: false,
      reason: 'size',
      detail: `expected a chunk of at most ${limits.maxBodyBytes} bytes, got ${data.length}`,
    };
  }
  let hdrs: Msg['headers'];
  try {
    hdrs = msg.headers;
  } catch (err) {
    return { ok: false, reason: 'decode', detail: `unreadable NATS headers: ${(err as Error).message}` };
  }
  const read = readChunkHeader(hdrs);
  if (!read.ok) return read;
  const h = read.header;
  const checked = checkChunkHeader(h, data.length, limits.worldSize);
  if (!checked.ok) return checked;
  if (h.shard !== at.subjectShard) {
    return {
      ok: false,
      reason: 'header',
      detail: `header names shard ${h.shard} but the subject is shard ${at.subjectShard}'s`,
    };
  }
  // Contributions come from peers only; reduced shards and broadcasts only from the subject's rank.
  if (at.kind === 'rs' && h.rank === limits.rank) {
    return {
      ok: false,
      reason: 'rank',
      detail: `a reduce-scatter chunk claiming to come from this rank (${limits.rank})`,
    };
  }
  if (h.rank !== at.senderRank) {
    return {
      ok: false,
      reason: 'rank',
      detail:
        at.senderRank < 0
          ? `a chunk on ${at.subject}, whose sender is no member of this generation`
          : `a chunk claiming rank ${h.rank} on the subject of the member holding rank ${at.senderRank}`,
    };
  }
  return { ok: true, chunk: { ...at, header: h, data } };
}
