// Test support for the collective: N ranks in this process, each with its own connection to every
// NATS server (a pool, as a worker holds), seeded random gradients, and the reference results the
// collective must reproduce bit for bit.
import { expect } from 'vitest';
import type { MsgHdrs } from '@nats-io/nats-core';
import {
  connectServerPool,
  createCountingObserver,
  createNatsCollective,
  fromBfloat16Bits,
  fromFloat16Bits,
  silentLogger,
  toBfloat16Bits,
  toFloat16Bits,
  type Collective,
  type CountingObserver,
  type NatsCollectiveOptions,
  type NatsConnection,
  type NatsServerPool,
  type WireDtype,
} from '@tfjs-ddp/common';

/** 4 KiB chunks: 1024 f32 or 2048 f16/bf16 elements, so modest buffers already span many chunks. */
export const CHUNK_BYTES = 4096;

export interface Ranks {
  /** Rank r's connections, one per server. */
  readonly pools: NatsServerPool[];
  /** Rank r's connection to the first server. */
  readonly ncs: NatsConnection[];
  readonly collectives: Collective[];
  readonly observers: CountingObserver[];
  close(): Promise<void>;
}

export type RankOptions = Partial<Omit<NatsCollectiveOptions, 'rank' | 'worldSize' | 'observer'>>;

/** Connects `worldSize` ranks to every server of `urls`, each rank on connections of its own, and creates their collectives. */
export async function startRanks(
  urls: string | readonly string[],
  worldSize: number,
  options: RankOptions = {},
): Promise<Ranks> {
  const pools: NatsServerPool[] = [];
  const collectives: Collective[] = [];
  const observers: CountingObserver[] = [];
  const close = async () => {
    await Promise.allSettled(collectives.map((c) => c.close()));
    await Promise.allSettled(pools.map((p) => p.close()));
  };
  try {
    for (let rank = 0; rank < worldSize; rank++) {
      pools.push(
        await connectServerPool({ servers: typeof urls === 'string' ? [urls] : [...urls], name: `rank-${rank}` }),
      );
      observers.push(createCountingObserver());
      collectives.push(
        await createNatsCollective(pools[rank], {
          job: 'test-job',
          generation: 0,
          log: silentLogger,
          ...options,
          rank,
          worldSize,
          observer: observers[rank],
        }),
      );
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { pools, ncs: pools.map((p) => p.connections[0]), collectives, observers, close };
}

/**
 * Publishes hand-made chunks as a rank would: each through the server that carries the subject's
 * shard (the trailing number of `…rs.S`, `…ag.S`, `…bc.S`; shard S on server S mod K, every server
 * up), where the ranks subscribed it, so what it sends never waits on interest crossing a route.
 */
export interface Forger {
  publish(subject: string, body: Uint8Array, opts?: { headers?: MsgHdrs }): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

export async function connectForger(urls: readonly string[]): Promise<Forger> {
  const pool = await connectServerPool({ servers: [...urls], name: 'forger' });
  const via = (subject: string) => {
    const shard = Number(/\.(\d+)$/.exec(subject)?.[1] ?? 0);
    return pool.connections[shard % pool.connections.length];
  };
  return {
    publish: (subject, body, opts) => via(subject).publish(subject, body, opts),
    flush: async () => void (await Promise.all(pool.connections.map((nc) => nc.flush()))),
    close: () => pool.close(),
  };
}

/** Deterministic pseudo-random numbers in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One buffer per rank with values spread over several magnitudes, so summation order matters. */
export function randomBuffers(worldSize: number, length: number, seed: number): Float32Array[] {
  const next = rng(seed);
  return Array.from({ length: worldSize }, () =>
    Float32Array.from({ length }, () => (next() - 0.5) * 2 ** Math.floor(next() * 12 - 6)),
  );
}

function wireRound(dtype: WireDtype, x: number): number {
  if (dtype === 'f16') return fromFloat16Bits(toFloat16Bits(x));
  if (dtype === 'bf16') return fromBfloat16Bits(toBfloat16Bits(x));
  return x;
}

/**
 * The all-reduce result every rank must end with: the wire-rounded contributions summed in rank
 * order in fp32, then rounded to the wire format.
 */
export function expectedSum(buffers: Float32Array[], dtype: WireDtype = 'f32'): Float32Array {
  const acc = buffers[0].map((x) => wireRound(dtype, x));
  for (let r = 1; r < buffers.length; r++) {
    for (let i = 0; i < acc.length; i++) acc[i] = Math.fround(acc[i] + wireRound(dtype, buffers[r][i]));
  }
  return acc.map((x) => wireRound(dtype, x));
}

export function bytesOf(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Fails, naming `what` and the first element that differs, unless `a` and `b` hold the same bits. */
export function expectSameBits(a: Float32Array, b: Float32Array, what: string): void {
  if (bytesOf(a).equals(bytesOf(b))) return;
  if (a.length !== b.length) expect.fail(`${what}: expected ${b.length} elements, got ${a.length}`);
  const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
  const [abits, bbits] = [bits(a), bits(b)];
  const i = abits.findIndex((v, k) => v !== bbits[k]);
  expect.fail(`${what}: element ${i} is ${a[i]}, expected ${b[i]} (bits differ)`);
}

/** Polls until `condition` holds; fails naming `what` after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
