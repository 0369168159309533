// The bookkeeping of one collective operation in flight: what it reduces, where an arriving chunk
// goes, which chunks arrived, how it settles, and, when it times out, which ranks and chunks are missing.
import type { InvalidReason, WireDtype } from '../protocol/index.js';
import type { CollectiveOperation, MissingChunks } from './errors.js';
import type { InboundChunk } from './inbound-chunk.js';
import { chunkRange, type CollectiveLayout } from './layout.js';

export interface ActiveOp {
  readonly operation: CollectiveOperation;
  readonly id: number;
  readonly buf: Float32Array;
  readonly dtype: WireDtype;
  readonly timeoutMs: number;
  /** allReduce: one shard per rank; broadcast: the whole buffer as shard 0. */
  readonly layout: CollectiveLayout;
  /** Broadcast root; -1 for an all-reduce. */
  readonly root: number;
  /** Owner side: which (sender, chunk) contributions to the own shard arrived, and how many per chunk. */
  readonly contributed: Uint8Array;
  readonly contributions: Uint32Array;
  /** Receiving side: which reduced (or broadcast) chunks arrived, indexed by layout.chunkBase[shard] + chunk. */
  readonly received: Uint8Array;
  readonly staging: Float32Array;
  readonly wire: Uint16Array | undefined;
  reducePending: number;
  receivePending: number;
  /** True until this rank has published all its chunks: an operation never completes before that. */
  publishing: boolean;
  settled: boolean;
  error?: Error;
  readonly done: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
  timer?: ReturnType<typeof setTimeout>;
  detachSignal?: () => void;
}

export type OpFields = Omit<
  ActiveOp,
  'publishing' | 'settled' | 'done' | 'resolve' | 'reject' | 'error' | 'timer' | 'detachSignal'
>;

export function createOp(fields: OpFields): ActiveOp {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The runner observes the rejection; this keeps one that lands mid-publish from counting as unhandled.
  done.catch(() => {});
  return { ...fields, publishing: true, settled: false, done, resolve, reject };
}

/**
 * An operation that only receives chunks as they were sent (allGather, broadcast): f32, with nothing
 * to reduce or stage.
 */
export function createReceivingOp(
  fields: Pick<OpFields, 'operation' | 'id' | 'buf' | 'timeoutMs' | 'layout' | 'root' | 'receivePending'>,
): ActiveOp {
  return createOp({
    ...fields,
    dtype: 'f32',
    contributed: new Uint8Array(0),
    contributions: new Uint32Array(0),
    received: new Uint8Array(fields.layout.totalChunks),
    staging: new Float32Array(0),
    wire: undefined,
    reducePending: 0,
  });
}

/**
 * The id of an operation about to start on a collective in the state given: the requested one or
 * the next; throws, saying why, when the operation cannot start.
 */
export function nextOpId(
  operation: CollectiveOperation,
  buf: Float32Array,
  requested: number | undefined,
  state: { closed: boolean; generation: number; current?: ActiveOp; lastStarted: number },
): number {
  if (state.closed)
    throw new Error(`cannot run ${operation}: the collective of generation ${state.generation} is closed`);
  if (!(buf instanceof Float32Array)) {
    throw new TypeError(`${operation} expects a Float32Array, got ${Object.prototype.toString.call(buf)}`);
  }
  if (state.current) {
    throw new Error(
      `cannot start ${operation} while ${state.current.operation} op ${state.current.id} is in flight; await each collective call before the next`,
    );
  }
  const id = requested ?? state.lastStarted + 1;
  if (!Number.isSafeInteger(id) || id <= state.lastStarted) {
    throw new RangeError(
      `expected ${operation} op id > ${state.lastStarted} (op ids strictly increase and match on every rank), got ${id}`,
    );
  }
  return id;
}

/** Why an abort signal fired, for the error that names the operation it failed. */
export function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r.message;
  return r === undefined ? 'the abort signal fired' : String(r);
}

/** Resolves `op` when nothing is left to publish, reduce or receive. */
export function settleIfDone(op: ActiveOp): void {
  if (op.settled || op.publishing || op.reducePending > 0 || op.receivePending > 0) return;
  op.settled = true;
  clearTimeout(op.timer);
  op.resolve();
}

/** Rejects `op` with `err` unless it already settled; the first failure wins. */
export function failOp(op: ActiveOp, err: Error): void {
  if (op.settled) return;
  op.settled = true;
  op.error = err;
  clearTimeout(op.timer);
  op.reject(err);
}

/** What `rank` still waits for: peers' contributions to its shard first, then reduced shards. */
export function missingChunks(op: ActiveOp, rank: number, worldSize: number): MissingChunks[] {
  const missing: MissingChunks[] = [];
  const absent = (shardIndex: number, arrived: (chunk: number) => boolean) => {
    const chunks: number[] = [];
    for (let c = 0; c < op.layout.shards[shardIndex].chunks; c++) if (!arrived(c)) chunks.push(c);
    return chunks;
  };
  if (op.root >= 0) {
    const chunks = absent(0, (c) => op.received[c] === 1);
    if (chunks.length) missing.push({ rank: op.root, phase: 'broadcast', shard: op.root, chunks });
    return missing;
  }
  const ownChunks = op.layout.shards[rank].chunks;
  // An all-gather has no reduce-scatter phase: every block comes straight from its owner.
  for (let sender = 0; sender < worldSize && op.operation !== 'allGather'; sender++) {
    if (sender === rank) continue;
    const chunks = absent(rank, (c) => op.contributed[sender * ownChunks + c] === 1);
    if (chunks.length) missing.push({ rank: sender, phase: 'reduce-scatter', shard: rank, chunks });
  }
  for (let s = 0; s < worldSize; s++) {
    if (s === rank) continue;
    const chunks = absent(s, (c) => op.received[op.layout.chunkBase[s] + c] === 1);
    if (chunks.length) missing.push({ rank: s, phase: 'all-gather', shard: s, chunks });
  }
  return missing;
}

export type ChunkMatch =
  | { ok: true; shardIndex: number; offset: number; count: number }
  | { ok: false; reason: InvalidReason; detail: string };

/**
 * Checks a structurally valid chunk against the operation in flight: its kind, dtype and place in
 * the op's layout. Returns where its elements go, or why it must be dropped.
 */
export function matchChunk(op: ActiveOp, c: InboundChunk): ChunkMatch {
  const h = c.header;
  const isBroadcast = op.root >= 0;
  const wrongKind = isBroadcast
    ? c.kind !== 'bc' || c.subjectShard !== op.root
    : c.kind === 'bc' || (c.kind === 'rs' && op.operation === 'allGather');
  if (wrongKind) {
    return {
      ok: false,
      reason: 'header',
      detail: `a ${c.kind} chunk from rank ${h.rank} for op ${h.op}, which is a ${op.operation}${isBroadcast ? ` from root ${op.root}` : ''} here`,
    };
  }
  if (h.dtype !== op.dtype) {
    return { ok: false, reason: 'dtype', detail: `expected ${op.dtype} chunks for op ${op.id}, got ${h.dtype}` };
  }
  const shardIndex = isBroadcast ? 0 : h.shard;
  const shard = op.layout.shards[shardIndex];
  if (h.chunk >= shard.chunks) {
    return {
      ok: false,
      reason: 'range',
      detail: `expected a chunk index below ${shard.chunks} for shard ${h.shard} of a ${op.buf.length}-element buffer, got ${h.chunk}`,
    };
  }
  const { offset, count } = chunkRange(op.layout, shardIndex, h.chunk);
  if (h.offset !== offset || h.count !== count) {
    return {
      ok: false,
      reason: 'range',
      detail:
        `expected chunk ${h.chunk} of shard ${h.shard} at offset ${offset} with ${count} elements, got offset ${h.offset} with ${h.count} ` +
        `(do all ranks use the same buffer length and chunkBytes?)`,
    };
  }
  return { ok: true, shardIndex, offset, count };
}
