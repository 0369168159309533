// The collective-operation interface the worker trains through. Transports live behind it (NATS
// today), so the training step never knows how the bytes move.
import type { WireDtype } from '../protocol/index.js';

/** What every operation takes; allGather and barrier take nothing else. */
export interface OperationOptions {
  /** Operation id, strictly increasing per collective and equal on every rank; defaults to the next one. */
  op?: number;
  /** Deadline of this operation; defaults to the collective's timeoutMs. */
  timeoutMs?: number;
  /** Aborting it rejects the operation with CollectiveAbortedError. */
  signal?: AbortSignal;
}

export interface AllReduceOptions extends OperationOptions {
  /** Wire format; every rank of an operation must use the same. Accumulation is always fp32. */
  dtype?: WireDtype;
}

export interface BroadcastOptions extends OperationOptions {
  /** The rank whose buffer everyone receives (default 0). */
  root?: number;
}

export interface CollectiveStats {
  opsCompleted: number;
  opsFailed: number;
  /** How often gradient-sized staging or scratch memory was allocated (grows only with the buffer). */
  bufferAllocations: number;
  /** Bytes held for operations this rank has not started yet. */
  queuedBytes: number;
}

export interface Collective {
  readonly rank: number;
  readonly worldSize: number;
  readonly generation: number;
  /**
   * Sums `buf` over all ranks, in place. Every rank ends with bit-identical contents. A rejected
   * operation leaves `buf` unspecified; the collective stays usable for the next one.
   */
  allReduce(buf: Float32Array, opts?: AllReduceOptions): Promise<void>;
  /**
   * The all-reduce's first phase alone: afterwards this rank's block of `buf` (the allGather layout:
   * [floor(r·L/N), floor((r+1)·L/N))) holds the sum over all ranks, bit for bit what allReduce leaves
   * there (rounded to the wire format as allReduce's result is); the rest of `buf` is unspecified.
   */
  reduceScatter(buf: Float32Array, opts?: AllReduceOptions): Promise<void>;
  /**
   * Every rank fills its own block of `buf` and ends holding every rank's block. Rank r's block is
   * [floor(r·L/N), floor((r+1)·L/N)) of the L elements (N equal blocks when N divides L); all ranks
   * pass the same length. Bytes are copied unchanged, so a block may carry integers viewed as floats.
   */
  allGather(buf: Float32Array, opts?: OperationOptions): Promise<void>;
  /** Copies the root's `buf` into every other rank's `buf` (all ranks pass the same length). */
  broadcast(buf: Float32Array, opts?: BroadcastOptions): Promise<void>;
  /** Resolves once every rank has reached the barrier. */
  barrier(opts?: OperationOptions): Promise<void>;
  /**
   * Rejects the operation in flight, if any, with CollectiveAbortedError. With `before`, only an
   * operation whose id is below it, and every one started later with such an id rejects at once: an
   * abort that comes before a rank reaches the operation is not lost. Later ids are unaffected.
   */
  abort(reason: string, opts?: { before?: number }): void;
  stats(): CollectiveStats;
  /** Aborts the operation in flight and stops receiving; the connection stays open (the caller owns it). */
  close(): Promise<void>;
}
