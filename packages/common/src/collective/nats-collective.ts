// All-reduce, all-gather, broadcast and barrier over NATS core subjects (DESIGN §4). Rank r owns shard r of
// every buffer: peers publish their piece of it to `rs.r`, the owner sums each chunk in rank order
// as soon as all contributions are in and publishes the reduced chunk to `ag.r`, which the server
// fans out to every peer. Over several servers, shard r's subjects live on server r mod K
// (data-plane.ts). Chunks of an operation this rank has not started are queued, chunks of ended
// operations are stale, anything malformed is dropped and reported; a callback never throws.
import type { Msg, MsgCallback, NatsConnection, Subscription } from '@nats-io/nats-core';
import { createLogger, type Logger } from '../log.js';
import {
  byteView,
  createCountingObserver,
  formatIssues,
  isWireDtype,
  type InvalidReason,
  type MessageObserver,
  type WireDtype,
} from '../protocol/index.js';
import type { NatsServerPool } from '../transport/index.js';
import type {
  AllReduceOptions,
  BroadcastOptions,
  Collective,
  CollectiveStats,
  OperationOptions,
} from './collective.js';
import { ChunkPublisher, type PacedSender } from './chunk-publisher.js';
import { createDataPlane, type DataPlane } from './data-plane.js';
import {
  CollectiveAbortedError,
  CollectiveServerError,
  CollectiveTimeoutError,
  type CollectiveOperation,
} from './errors.js';
import { FutureQueue } from './future-queue.js';
import { readInboundChunk, type ChunkKind, type InboundChunk, type ReceiverLimits } from './inbound-chunk.js';
import { chunkBytesFor, chunkElementsFor, chunkRange, computeLayout, type CollectiveLayout } from './layout.js';
import {
  abortReason,
  createOp,
  createReceivingOp,
  failOp,
  matchChunk,
  missingChunks,
  nextOpId,
  settleIfDone,
  type ActiveOp,
} from './operation.js';
import { natsCollectiveOptionsSchema, type NatsCollectiveOptions, type NatsCollectiveSettings } from './options.js';
import { stagingSlot, sumInRankOrder } from './rank-order-sum.js';
import { RankSubjects } from './rank-subjects.js';
import { assertLittleEndian, decodeValues, encodeValues, roundToWire } from './wire-values.js';
import { Workspace } from './workspace.js';

/**
 * Creates the collective of one rank and subscribes to its subjects. Resolves once the servers have
 * registered the subscriptions, so peers may publish as soon as every rank's call resolved (the
 * coordinator's rendezvous orders this; a chunk published before the owner subscribed is lost and
 * the operation times out naming it).
 *
 * `servers`: one connection (one server, as before pools existed: the caller watches it), or a
 * pool with a connection to each server of the job. The shards are placed on the pool's servers
 * that are up now; an operation fails, naming the server, when one of them goes down.
 */
export async function createNatsCollective(
  servers: NatsConnection | NatsServerPool,
  options: NatsCollectiveOptions,
): Promise<Collective> {
  const { observer, log, ...rest } = options;
  const parsed = natsCollectiveOptionsSchema.safeParse(rest);
  if (!parsed.success) throw new Error(`invalid collective options: ${formatIssues(parsed.error, '(options)')}`);
  assertLittleEndian();
  const logger = log ?? createLogger(`collective/r${parsed.data.rank}`);
  const plane = createDataPlane(servers, parsed.data.worldSize, parsed.data.generation);
  const watcher = observer ?? createCountingObserver({ log: logger });
  const collective = new NatsCollective(plane, parsed.data, watcher, logger);
  await collective.subscribe();
  if (plane.used.length > 1)
    logger.debug('shards placed on NATS servers', { servers: plane.used.map((s) => s.url).join(', ') });
  return collective;
}

class NatsCollective implements Collective {
  readonly rank: number;
  readonly worldSize: number;
  readonly generation: number;
  private readonly subjects: RankSubjects;
  private readonly subs: Subscription[] = [];
  private readonly detach: (() => void)[] = [];
  private readonly queue: FutureQueue;
  private readonly workspace = new Workspace();
  private readonly barrierBuf = new Float32Array(1);
  private readonly counters = { opsCompleted: 0, opsFailed: 0 };
  /** The servers' max_payload, read once: chunk boundaries must not move between operations. */
  private readonly maxPayloadBytes: number;
  private readonly limits: ReceiverLimits;
  private readonly publisher: ChunkPublisher;
  private lastStarted = -1;
  /** Operations with a lower id fail as they start: they belong to a step the coordinator aborted. */
  private abortedBefore = { id: -1, reason: '' };
  private current: ActiveOp | undefined;
  private closed = false;

  constructor(
    private readonly plane: DataPlane,
    private readonly settings: NatsCollectiveSettings,
    private readonly observer: MessageObserver,
    private readonly log: Logger,
  ) {
    this.rank = settings.rank;
    this.worldSize = settings.worldSize;
    this.generation = settings.generation;
    this.subjects = new RankSubjects(settings);
    this.queue = new FutureQueue(settings.maxQueuedBytes, settings.worldSize);
    this.maxPayloadBytes = plane.maxPayload;
    this.publisher = new ChunkPublisher(plane, settings.flushBytes, observer);
    this.limits = {
      rank: this.rank,
      worldSize: this.worldSize,
      // Largest chunk body of any dtype: bigger messages are dropped before parsing.
      maxBodyBytes: chunkBytesFor(settings.chunkBytes, this.maxPayloadBytes),
    };
  }

  // One subscription per peer rather than `ag.*`/`bc.*` wildcards: NATS echoes a connection's own
  // publishes to its matching subscriptions, and the echo of the own reduced shard would cost every
  // rank another L/N of download per all-reduce. Each on the server that carries its shard, where
  // that shard's chunks are published: see data-plane.ts for why.
  async subscribe(): Promise<void> {
    const sub = (kind: ChunkKind, shard: number, subject: string) =>
      this.subs.push(
        this.plane.serverOf(shard).nc.subscribe(subject, { callback: this.handler(kind, shard, subject) }),
      );
    sub('rs', this.rank, this.subjects.rsInbound);
    for (let s = 0; s < this.worldSize; s++) {
      if (s === this.rank) continue;
      sub('ag', s, this.subjects.ag[s]);
      sub('bc', s, this.subjects.bc[s]);
    }
    this.detach.push(
      this.plane.onFailure((server, failure) => {
        const op = this.current;
        if (op) failOp(op, this.plane.error(server, failure, op.operation, op.id));
      }),
      // A chunk the server refuses (this credential may not send as this member) would otherwise
      // surface as the peers' timeout: fail the operation now, saying why.
      this.plane.onRefused(this.subjects.prefix, (why) => {
        const op = this.current;
        if (op) failOp(op, new Error(`${op.operation} op ${op.id} (generation ${this.generation}) failed: ${why}`));
      }),
    );
    try {
      await this.plane.flush();
    } catch (err) {
      await this.close();
      throw new Error(`cannot create the collective of generation ${this.generation}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  async allReduce(buf: Float32Array, opts: AllReduceOptions = {}): Promise<void> {
    await this.runAllReduce('allReduce', buf, opts);
  }

  async reduceScatter(buf: Float32Array, opts: AllReduceOptions = {}): Promise<void> {
    await this.runAllReduce('reduceScatter', buf, opts);
  }

  async barrier(opts: OperationOptions = {}): Promise<void> {
    this.barrierBuf[0] = 1;
    await this.runAllReduce('barrier', this.barrierBuf, { ...opts, dtype: 'f32' });
  }

  // The all-reduce's second phase on its own: each rank publishes its block once to `ag.r` and the
  // server fans it out, so gathering costs one hop and N-1 blocks of download per rank.
  async allGather(buf: Float32Array, opts: OperationOptions = {}): Promise<void> {
    const id = this.nextOpId('allGather', buf, opts.op);
    const r = this.rank;
    const layout = this.layoutFor(buf, this.worldSize, 'f32');
    const own = layout.shards[r];
    const op = createReceivingOp({
      operation: 'allGather',
      id,
      buf,
      timeoutMs: this.timeoutOf(opts.timeoutMs),
      layout,
      root: -1,
      receivePending: layout.totalChunks - own.chunks,
    });
    await this.run(op, opts.signal, () => this.publishBlock(op, r, this.subjects.ag[r], this.publisher.paced(op)));
  }

  async broadcast(buf: Float32Array, opts: BroadcastOptions = {}): Promise<void> {
    const root = opts.root ?? 0;
    if (!Number.isInteger(root) || root < 0 || root >= this.worldSize) {
      throw new RangeError(`expected a broadcast root in [0, ${this.worldSize}), got ${root}`);
    }
    const id = this.nextOpId('broadcast', buf, opts.op);
    const layout = this.layoutFor(buf, 1, 'f32');
    const op = createReceivingOp({
      operation: 'broadcast',
      id,
      buf,
      timeoutMs: this.timeoutOf(opts.timeoutMs),
      layout,
      root,
      receivePending: root === this.rank ? 0 : layout.totalChunks,
    });
    await this.run(op, opts.signal, async () => {
      if (root !== this.rank) return;
      const sender = this.publisher.paced(op);
      await this.publishBlock(op, 0, this.subjects.bc[root], sender);
      // The root has nothing to receive; make sure the server took its chunks before reporting success.
      await sender.drain(root);
    });
  }

  abort(reason: string, opts: { before?: number } = {}): void {
    const { before } = opts;
    if (before !== undefined && before > this.abortedBefore.id) this.abortedBefore = { id: before, reason };
    const op = this.current;
    if (op && (before === undefined || op.id < before))
      failOp(op, new CollectiveAbortedError(op.operation, op.id, this.generation, reason));
  }

  stats(): CollectiveStats {
    return {
      ...this.counters,
      bufferAllocations: this.workspace.allocations,
      queuedBytes: this.queue.bytes,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort('the collective was closed');
    for (const detach of this.detach) detach();
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
    this.queue.clear();
  }

  private async runAllReduce(operation: CollectiveOperation, buf: Float32Array, opts: AllReduceOptions): Promise<void> {
    const dtype = opts.dtype ?? 'f32';
    if (!isWireDtype(dtype)) throw new TypeError(`expected dtype f32, f16 or bf16, got ${String(dtype)}`);
    const id = this.nextOpId(operation, buf, opts.op);
    const n = this.worldSize;
    const r = this.rank;
    const layout = this.layoutFor(buf, n, dtype);
    const own = layout.shards[r];
    const op = createOp({
      operation,
      id,
      buf,
      dtype,
      timeoutMs: this.timeoutOf(opts.timeoutMs),
      layout,
      root: -1,
      contributed: new Uint8Array(n * own.chunks),
      contributions: new Uint32Array(own.chunks),
      received: new Uint8Array(layout.totalChunks),
      staging: this.workspace.staging((n - 1) * layout.maxShardLength),
      wire: dtype === 'f32' ? undefined : this.workspace.wire(buf.length),
      reducePending: n > 1 ? own.chunks : 0,
      // A reduce-scatter ends with the own shard reduced: no reduced shards to receive.
      receivePending: operation === 'reduceScatter' ? 0 : layout.totalChunks - own.chunks,
    });
    // Every rank sums wire-rounded contributions, its own included, so the result does not depend
    // on which rank owns which shard.
    if (op.wire) roundToWire(dtype, buf.subarray(own.start, own.end), op.wire.subarray(own.start, own.end));
    await this.run(op, opts.signal, async () => {
      const sender = this.publisher.paced(op);
      // Chunk c of every peer's shard before chunk c+1 of any, starting at the next rank: all owners
      // get work early and no owner is hit by every rank at once.
      for (let c = 0; c < layout.maxChunks; c++) {
        for (let k = 1; k < n; k++) {
          const s = (r + k) % n;
          if (c >= layout.shards[s].chunks) continue;
          const { offset, count } = chunkRange(layout, s, c);
          const body = encodeValues(
            dtype,
            buf.subarray(offset, offset + count),
            op.wire?.subarray(offset, offset + count),
          );
          await sender.send(this.subjects.rs[s], { op: id, rank: r, shard: s, chunk: c, offset, count }, dtype, body);
        }
      }
    });
  }

  private nextOpId(operation: CollectiveOperation, buf: Float32Array, requested: number | undefined): number {
    const { closed, generation, current, lastStarted } = this;
    return nextOpId(operation, buf, requested, { closed, generation, current, lastStarted });
  }

  /** Shards of `buf` for `worldSize` ranks, in chunks as large as the settings and the server allow. */
  private layoutFor(buf: Float32Array, worldSize: number, dtype: WireDtype): CollectiveLayout {
    return computeLayout(
      buf.length,
      worldSize,
      chunkElementsFor(this.settings.chunkBytes, this.maxPayloadBytes, dtype),
    );
  }

  private timeoutOf(requested: number | undefined): number {
    const t = requested ?? this.settings.timeoutMs;
    if (!Number.isFinite(t) || t <= 0) throw new RangeError(`expected a positive timeoutMs, got ${t}`);
    return t;
  }

  /** Starts `op`, publishes its chunks and waits for what it has to receive. */
  private async run(op: ActiveOp, signal: AbortSignal | undefined, publish: () => Promise<void>): Promise<void> {
    this.current = op;
    this.lastStarted = op.id;
    op.timer = setTimeout(() => {
      const missing = missingChunks(op, this.rank, this.worldSize);
      failOp(op, new CollectiveTimeoutError(op.operation, op.id, this.generation, op.timeoutMs, missing));
    }, op.timeoutMs);
    if (signal) {
      const onAbort = () =>
        failOp(op, new CollectiveAbortedError(op.operation, op.id, this.generation, abortReason(signal)));
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      op.detachSignal = () => signal.removeEventListener('abort', onAbort);
    }
    if (op.id < this.abortedBefore.id)
      failOp(op, new CollectiveAbortedError(op.operation, op.id, this.generation, this.abortedBefore.reason));
    const down = this.plane.unavailable();
    if (down) failOp(op, this.plane.error(down.server, down.failure, op.operation, op.id));
    try {
      this.replayQueued(op);
      if (op.error) throw op.error;
      await publish();
      op.publishing = false;
      settleIfDone(op);
      await op.done;
      this.counters.opsCompleted++;
    } catch (err) {
      // Errors of our own making already say which operation failed; a transport error does not.
      failOp(
        op,
        err instanceof CollectiveTimeoutError ||
          err instanceof CollectiveAbortedError ||
          err instanceof CollectiveServerError
          ? err
          : new Error(
              `${op.operation} op ${op.id} (generation ${this.generation}) failed: ${(err as Error)?.message ?? String(err)}`,
              { cause: err },
            ),
      );
      this.counters.opsFailed++;
      throw op.error;
    } finally {
      clearTimeout(op.timer);
      op.detachSignal?.();
      if (this.current === op) this.current = undefined;
    }
  }

  /**
   * Publishes this rank's block of `op.buf` unchanged (f32), shard `layoutShard` of the op's layout,
   * to `subject`: an all-gather's own block or the whole buffer of a broadcast root.
   */
  private async publishBlock(op: ActiveOp, layoutShard: number, subject: string, sender: PacedSender): Promise<void> {
    const bytes = byteView(op.buf);
    const r = this.rank;
    for (let c = 0; c < op.layout.shards[layoutShard].chunks; c++) {
      const { offset, count } = chunkRange(op.layout, layoutShard, c);
      const body = bytes.subarray(offset * 4, (offset + count) * 4);
      await sender.send(subject, { op: op.id, rank: r, shard: r, chunk: c, offset, count }, 'f32', body);
    }
  }

  private replayQueued(op: ActiveOp): void {
    const { current, stale } = this.queue.take(op.id);
    for (const c of stale) this.observer.stale?.(c.subject);
    for (const c of current) this.accept(op, c);
  }

  private handler(kind: ChunkKind, subjectShard: number, subject: string): MsgCallback<Msg> {
    return (err, msg) => {
      if (err) {
        this.log.warn('subscription error', { subject, error: err.message });
        return;
      }
      try {
        this.onChunk(kind, subjectShard, subject, msg);
      } catch (e) {
        this.log.error('unexpected error while handling a chunk; dropped it', { subject, error: e });
        this.invalid('decode', `unexpected error: ${(e as Error)?.message ?? String(e)}`, subject);
      }
    };
  }

  private onChunk(kind: ChunkKind, subjectShard: number, subscribed: string, msg: Msg): void {
    this.observer.bytesIn?.(msg.data.length);
    // ag and bc subscriptions name their one sender; the rs subscription takes any, so read it.
    const subject = kind === 'rs' ? msg.subject : subscribed;
    const senderRank = kind === 'rs' ? this.subjects.senderRankOf(subject) : subjectShard;
    const read = readInboundChunk(msg, { kind, subjectShard, senderRank, subject }, this.limits);
    if (!read.ok) return this.invalid(read.reason, read.detail, subject);
    const chunk = read.chunk;
    const op = chunk.header.op;
    if (this.current && op === this.current.id) return this.accept(this.current, chunk);
    if (op <= this.lastStarted) return this.observer.stale?.(subject);
    if (!this.queue.push(chunk)) {
      this.invalid(
        'backlog',
        `dropped a chunk of future op ${op} from rank ${chunk.header.rank}: it holds ${this.queue.bytesFrom(chunk.header.rank)} ` +
          `bytes for ops not started yet, of the ${this.queue.perSenderBytes} each sender may (maxQueuedBytes ` +
          `${this.settings.maxQueuedBytes} shared by ${this.worldSize - 1}); that peer runs far ahead of this rank`,
        subject,
      );
    }
  }

  /** Takes a structurally valid chunk of the operation in flight. */
  private accept(op: ActiveOp, c: InboundChunk): void {
    const m = matchChunk(op, c);
    if (!m.ok) return this.invalid(m.reason, m.detail, c.subject);
    if (c.kind === 'rs') this.acceptContribution(op, c, m.offset, m.count);
    else this.acceptReduced(op, c, m.shardIndex, m.offset, m.count);
    settleIfDone(op);
  }

  private acceptContribution(op: ActiveOp, c: InboundChunk, offset: number, count: number): void {
    const h = c.header;
    const own = op.layout.shards[this.rank];
    const seen = h.rank * own.chunks + h.chunk;
    if (op.contributed[seen]) {
      return this.invalid('duplicate', `chunk ${h.chunk} from rank ${h.rank} arrived twice in op ${op.id}`, c.subject);
    }
    op.contributed[seen] = 1;
    const slot = stagingSlot(h.rank, this.rank, op.layout.maxShardLength) + (offset - own.start);
    decodeValues(op.dtype, c.data, op.staging.subarray(slot, slot + count));
    if (++op.contributions[h.chunk] === this.worldSize - 1) this.reduce(op, h.chunk, offset, count);
  }

  private reduce(op: ActiveOp, chunk: number, offset: number, count: number): void {
    const own = op.layout.shards[this.rank];
    const stride = op.layout.maxShardLength;
    sumInRankOrder(op.buf, offset, count, op.staging, stride, offset - own.start, this.rank, this.worldSize);
    const values = op.buf.subarray(offset, offset + count);
    const body = encodeValues(op.dtype, values, op.wire?.subarray(offset, offset + count));
    // The owner keeps exactly what it sends, so its replica matches the peers' bit for bit.
    if (op.dtype !== 'f32') decodeValues(op.dtype, body, values);
    if (op.operation === 'reduceScatter') {
      op.reducePending--;
      return;
    }
    try {
      this.publisher.send(
        this.subjects.ag[this.rank],
        { op: op.id, rank: this.rank, shard: this.rank, chunk, offset, count },
        op.dtype,
        body,
      );
    } catch (err) {
      const reason = `cannot publish reduced chunk ${chunk}: ${(err as Error).message}`;
      return failOp(op, new Error(`${op.operation} op ${op.id} (generation ${this.generation}) failed: ${reason}`));
    }
    op.reducePending--;
  }

  private acceptReduced(op: ActiveOp, c: InboundChunk, shardIndex: number, offset: number, count: number): void {
    const h = c.header;
    const seen = op.layout.chunkBase[shardIndex] + h.chunk;
    if (op.received[seen]) {
      return this.invalid('duplicate', `chunk ${h.chunk} of shard ${h.shard} arrived twice in op ${op.id}`, c.subject);
    }
    op.received[seen] = 1;
    decodeValues(op.dtype, c.data, op.buf.subarray(offset, offset + count));
    op.receivePending--;
  }

  private invalid(reason: InvalidReason, detail: string, subject: string): void {
    try {
      this.observer.invalid(reason, detail, subject);
    } catch (err) {
      this.log.error('the message observer threw', { reason, subject, error: err });
    }
  }
}
