// Fuzzes the two parsers that see untrusted bytes: decodeMessage and the chunk-header reader and
// check (readChunkHeader, then checkChunkHeader, as a receiver runs them).
// Whatever comes in, they return a verdict instead of throwing, and every rejection names a known
// reason and says what was wrong.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Packr } from 'msgpackr';
import { headers, type MsgHdrs } from '@nats-io/nats-core';
import {
  CHUNK_HEADER_KEYS,
  INVALID_REASONS,
  PROTOCOL_VERSION,
  checkChunkHeader,
  decodeMessage,
  encodeChunkHeader,
  encodeMessage,
  readChunkHeader,
} from '@tfjs-ddp/common';

// Deterministic, so a failure reproduces.
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)];
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  return { next, int, pick, bytes };
}

const step = z
  .object({
    job: z.string(),
    step: z.number().int().min(0),
    ranks: z.array(z.number().int()),
    lr: z.number(),
    note: z.string().optional(),
  })
  .strict();

describe('decodeMessage under fuzzing', () => {
  it('never throws on 12,000 random, truncated, mutated, oversized, mistyped and wrong-version inputs', () => {
    const r = rng(1);
    const packr = new Packr({ useRecords: false });
    const maxBytes = 256;
    const valid = () =>
      encodeMessage(step, {
        job: 'j',
        step: r.int(1000),
        ranks: Array.from({ length: r.int(8) }, () => r.int(64)),
        lr: r.next(),
        note: r.next() < 0.5 ? 'x'.repeat(r.int(40)) : undefined,
      });
    const randomValue = (depth: number): unknown => {
      switch (r.int(depth > 2 ? 6 : 8)) {
        case 0:
          return r.int(2 ** 31) - 2 ** 30;
        case 1:
          return r.next() * 1e9;
        case 2:
          return 'k'.repeat(r.int(10));
        case 3:
          return r.next() < 0.5;
        case 4:
          return null;
        case 5:
          return r.bytes(r.int(8));
        case 6:
          return Array.from({ length: r.int(4) }, () => randomValue(depth + 1));
        default:
          return Object.fromEntries(
            Array.from({ length: r.int(5) }, () => [
              r.pick(['job', 'step', 'ranks', 'lr', 'v', 'z']),
              randomValue(depth + 1),
            ]),
          );
      }
    };
    const generators: Record<string, () => Uint8Array> = {
      random: () => r.bytes(r.int(300)),
      truncated: () => {
        const b = valid();
        return b.subarray(0, r.int(b.length));
      },
      mutated: () => {
        const b = valid().slice();
        for (let k = 0; k <= r.int(4); k++) b[r.int(b.length)] = r.int(256);
        return b;
      },
      oversized: () => new Uint8Array(maxBytes + 1 + r.int(1000)),
      wrongVersion: () =>
        packr.pack({
          job: 'j',
          step: 1,
          ranks: [],
          lr: 0.1,
          v: r.pick([0, PROTOCOL_VERSION + 1, 99, -1, String(PROTOCOL_VERSION), null, 1.5]),
        }),
      wrongTypes: () => packr.pack({ ...(randomValue(0) as object), job: 'j', v: PROTOCOL_VERSION }),
      anyValue: () => packr.pack(randomValue(0)),
      valid,
    };
    const perKind: Record<string, Record<string, number>> = {};
    for (let i = 0; i < 12_000; i++) {
      const kind = r.pick(Object.keys(generators));
      const bytes = generators[kind]();
      let result: ReturnType<typeof decodeMessage<typeof step>>;
      expect(() => (result = decodeMessage(step, bytes, { maxBytes, job: 'j' })), `${kind} input ${i}`).not.toThrow();
      const outcome = result!.ok ? 'ok' : result!.reason;
      if (!result!.ok) {
        expect(INVALID_REASONS).toContain(result!.reason);
        expect(result!.detail.length).toBeGreaterThan(0);
      }
      perKind[kind] ??= {};
      perKind[kind][outcome] = (perKind[kind][outcome] ?? 0) + 1;
    }
    expect(Object.keys(perKind.valid)).toEqual(['ok']);
    expect(Object.keys(perKind.oversized)).toEqual(['size']);
    expect(Object.keys(perKind.wrongVersion)).toEqual(['version']);
    expect(perKind.truncated.decode).toBeGreaterThan(0);
    expect(perKind.wrongTypes.schema).toBeGreaterThan(0);
    expect(perKind.random.ok ?? 0).toBe(0);
  });
});

/** What a receiver in a world of 4 ranks makes of a chunk's headers and body length. */
function parseChunk(hdrs: MsgHdrs | undefined, byteLength: number) {
  const read = readChunkHeader(hdrs);
  if (!read.ok) return read;
  const checked = checkChunkHeader(read.header, byteLength, 4);
  return checked.ok ? read : checked;
}

describe('chunk-header reader and check under fuzzing', () => {
  it('never throw on 12,000 random, partial, mistyped, out-of-range and wrong-size headers', () => {
    const r = rng(2);
    const keys = Object.values(CHUNK_HEADER_KEYS);
    const randomText = () =>
      r.pick([
        () => String(r.int(10_000)),
        () => String(-r.int(100)),
        () => (r.next() * 100).toFixed(2),
        () => r.pick(['f32', 'f16', 'bf16', 'f64', '', ' ', 'NaN', 'Infinity', '1e3', '0x10', '١']),
        () => String.fromCharCode(...Array.from({ length: r.int(12) }, () => 32 + r.int(95))),
        () => '9'.repeat(1 + r.int(30)),
      ])();
    let accepted = 0;
    const reasons: Record<string, number> = {};
    for (let i = 0; i < 12_000; i++) {
      const count = r.int(1200);
      const dtype = r.pick(['f32', 'f16', 'bf16'] as const);
      let hdrs = encodeChunkHeader({
        op: r.int(50),
        rank: r.int(5),
        shard: r.int(5),
        chunk: r.int(20),
        offset: r.int(5000),
        count,
        dtype,
      });
      switch (r.int(4)) {
        case 0:
          hdrs = headers();
          for (const k of keys) if (r.next() < 0.9) hdrs.set(k, randomText());
          break;
        case 1:
          hdrs.delete(r.pick(keys));
          break;
        case 2:
          hdrs.append(r.pick(keys), randomText());
          break;
        default:
          hdrs.set(r.pick(keys), randomText());
      }
      const bpe = dtype === 'f32' ? 4 : 2;
      const byteLength = r.pick([count * bpe, count * bpe - 1, count * bpe + r.int(9), r.int(10_000), 0]);
      let result: ReturnType<typeof parseChunk>;
      expect(() => (result = parseChunk(r.next() < 0.02 ? undefined : hdrs, byteLength))).not.toThrow();
      if (result!.ok) {
        accepted++;
        const h = result!.header;
        expect(h.rank).toBeLessThan(4);
        expect(h.shard).toBeLessThan(4);
        expect(byteLength).toBe(h.count * (h.dtype === 'f32' ? 4 : 2));
      } else {
        expect(INVALID_REASONS).toContain(result!.reason);
        expect(result!.detail.length).toBeGreaterThan(0);
        reasons[result!.reason] = (reasons[result!.reason] ?? 0) + 1;
      }
    }
    for (const reason of ['header', 'version', 'dtype', 'rank', 'range', 'size']) {
      expect(reasons[reason], reason).toBeGreaterThan(0);
    }
    expect(accepted).toBeGreaterThan(0);
  });
});
