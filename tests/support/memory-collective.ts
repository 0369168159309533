// Test support for the communication hooks: N ranks of a collective in one process, without NATS.
// allReduce sums in rank order in fp32 (what the NATS collective guarantees, f32 only), reduceScatter
// leaves that sum in each rank's own block only, and allGather copies every rank's block; an operation completes once every rank called it with the
// same op id. `failNext` makes the next operation reject on every rank, as an aborted step does.
import { shardRange, type Collective } from '@tfjs-ddp/common';

interface Pending {
  kind: 'allReduce' | 'reduceScatter' | 'allGather';
  bufs: (Float32Array | undefined)[];
  settle: ((err?: Error) => void)[];
}

export interface MemoryGroup {
  readonly collectives: Collective[];
  /** The next operation (every rank's call) rejects. */
  failNext(): void;
  /** Operations completed, per kind. */
  readonly counts: { allReduce: number; reduceScatter: number; allGather: number };
}

export function memoryGroup(worldSize: number): MemoryGroup {
  const pending = new Map<number, Pending>();
  const counts = { allReduce: 0, reduceScatter: 0, allGather: 0 };
  let failing = false;

  const run = (kind: Pending['kind'], rank: number, buf: Float32Array, op: number | undefined) =>
    new Promise<void>((resolve, reject) => {
      if (op === undefined) throw new Error('hooks must pass explicit op ids');
      const p: Pending = pending.get(op) ?? { kind, bufs: Array(worldSize), settle: [] };
      pending.set(op, p);
      if (p.kind !== kind) throw new Error(`op ${op}: ${kind} on rank ${rank}, ${p.kind} on another`);
      p.bufs[rank] = buf;
      p.settle.push((err) => (err ? reject(err) : resolve()));
      if (p.settle.length < worldSize) return;
      pending.delete(op);
      if (failing) {
        failing = false;
        for (const s of p.settle) s(new Error(`op ${op} aborted`));
        return;
      }
      const bufs = p.bufs as Float32Array[];
      if (new Set(bufs.map((b) => b.length)).size !== 1) throw new Error(`op ${op}: ranks passed different lengths`);
      if (kind === 'allReduce' || kind === 'reduceScatter') {
        const sum = Float32Array.from(bufs[0]);
        for (let r = 1; r < worldSize; r++) for (let i = 0; i < sum.length; i++) sum[i] += bufs[r][i];
        if (kind === 'allReduce') for (const b of bufs) b.set(sum);
        // The rest of a reduce-scatter's buffer is unspecified: NaN, so a caller that reads it fails.
        else
          bufs.forEach((b, r) => {
            const { start, end } = shardRange(sum.length, r, worldSize);
            b.fill(NaN);
            b.set(sum.subarray(start, end), start);
          });
      } else {
        for (let r = 0; r < worldSize; r++) {
          const { start, end } = shardRange(bufs[0].length, r, worldSize);
          const block = bufs[r].slice(start, end);
          for (const b of bufs) b.set(block, start);
        }
      }
      counts[kind]++;
      for (const s of p.settle) s();
    });

  const collectives = Array.from({ length: worldSize }, (_, rank): Collective => ({
    rank,
    worldSize,
    generation: 0,
    allReduce: (buf, opts) => {
      if ((opts?.dtype ?? 'f32') !== 'f32') throw new Error('the memory collective sums f32 only');
      return run('allReduce', rank, buf, opts?.op);
    },
    reduceScatter: (buf, opts) => {
      if ((opts?.dtype ?? 'f32') !== 'f32') throw new Error('the memory collective sums f32 only');
      return run('reduceScatter', rank, buf, opts?.op);
    },
    allGather: (buf, opts) => run('allGather', rank, buf, opts?.op),
    broadcast: () => Promise.reject(new Error('not used by hooks')),
    barrier: () => Promise.reject(new Error('not used by hooks')),
    abort: () => {},
    stats: () => ({ opsCompleted: 0, opsFailed: 0, bufferAllocations: 0, queuedBytes: 0 }),
    close: async () => {},
  }));
  return {
    collectives,
    counts,
    failNext: () => {
      failing = true;
    },
  };
}
