// The generic wire-protocol pieces: subjects, the control-message codec, chunk headers and the
// observer that counts dropped messages.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Packr } from 'msgpackr';
import { headers, type Msg, type MsgHdrs } from '@nats-io/nats-core';
import {
  CHUNK_HEADER_KEYS,
  INVALID_REASONS,
  PROTOCOL_VERSION,
  createCountingObserver,
  decodeMessage,
  encodeChunkHeader,
  encodeMessage,
  isValidJobId,
  jobSubjects,
  senderToken,
  validateJobId,
  type Logger,
} from '@tfjs-ddp/common';
import { readInboundChunk } from '../packages/common/src/collective/inbound-chunk.js';

const heartbeat = z.object({ job: z.string(), rank: z.number().int().min(0), at: z.number() }).strict();
const raw = new Packr({ useRecords: false });

describe('subjects', () => {
  it('builds every control and data subject of a job under ddp.<job>', () => {
    const s = jobSubjects('mnist_run-1');
    expect([s.register, s.heartbeat, s.report, s.control]).toEqual([
      'ddp.mnist_run-1.register',
      'ddp.mnist_run-1.heartbeat',
      'ddp.mnist_run-1.report',
      'ddp.mnist_run-1.control',
    ]);
    const d = s.data(3);
    expect([d.rs(1, 'w-0'), d.rsFromAny(1), d.ag(2, 2), d.bc(0, 'host.example:1')]).toEqual([
      'ddp.mnist_run-1.g3.w-0.rs.1',
      'ddp.mnist_run-1.g3.*.rs.1',
      'ddp.mnist_run-1.g3.2.ag.2',
      'ddp.mnist_run-1.g3.host%2Eexample:1.bc.0',
    ]);
    // Escaping keeps distinct ids distinct and never yields a '.', which would move the sender token.
    expect(senderToken('a.b')).not.toBe(senderToken('a%2Eb'));
    expect(() => senderToken('a b')).toThrow(/invalid sender "a b"/);
  });

  it('rejects job ids that would break a subject, saying what is allowed', () => {
    for (const bad of ['', 'a.b', 'a b', 'a*', '>', 'x'.repeat(65), 'ü']) {
      expect(() => validateJobId(bad)).toThrow(/invalid job id .*expected 1-64 characters/);
      expect(isValidJobId(bad), bad).toBe(false);
    }
    expect(validateJobId('A-z_09')).toBe('A-z_09');
    expect(isValidJobId('A-z_09')).toBe(true);
    expect(() => jobSubjects('a.b')).toThrow(/invalid job id/);
    expect(() => jobSubjects('ok').data(-1)).toThrow(/invalid generation -1/);
    expect(() => jobSubjects('ok').data(0).rs(1.5, 0)).toThrow(/invalid shard 1.5/);
  });
});

describe('control-message codec', () => {
  it('round-trips a message and stamps the protocol version', () => {
    const bytes = encodeMessage(heartbeat, { job: 'j', rank: 2, at: 1.5 });
    expect(new Packr({ useRecords: false }).unpack(bytes)).toEqual({ job: 'j', rank: 2, at: 1.5, v: PROTOCOL_VERSION });
    expect(decodeMessage(heartbeat, bytes, { maxBytes: 1024, job: 'j' })).toEqual({
      ok: true,
      value: { job: 'j', rank: 2, at: 1.5 },
    });
  });

  it('refuses to encode a value that does not match its schema', () => {
    expect(() => encodeMessage(heartbeat, { job: 'j', rank: -1, at: 0 })).toThrow(/does not match its schema: rank/);
  });

  it('names both versions when a peer speaks another protocol version', () => {
    const bytes = raw.pack({ job: 'j', rank: 0, at: 0, v: PROTOCOL_VERSION + 1 });
    expect(decodeMessage(heartbeat, bytes, { maxBytes: 1024 })).toEqual({
      ok: false,
      reason: 'version',
      detail: expect.stringMatching(
        new RegExp(`expected protocol version ${PROTOCOL_VERSION}, got ${PROTOCOL_VERSION + 1}`),
      ) as unknown,
    });
    const none = decodeMessage(heartbeat, raw.pack({ job: 'j', rank: 0, at: 0 }), { maxBytes: 1024 });
    expect(none).toMatchObject({
      ok: false,
      reason: 'version',
      detail: expect.stringContaining('got none') as unknown,
    });
  });

  it('classifies each kind of bad input by reason', () => {
    const good = encodeMessage(heartbeat, { job: 'j', rank: 0, at: 0 });
    const cases: [Uint8Array, string][] = [
      [good, 'size'],
      [new Uint8Array([0xd9]), 'decode'],
      [good.subarray(0, good.length - 3), 'decode'],
      [raw.pack([1, 2, 3]), 'schema'],
      [raw.pack('text'), 'schema'],
      [raw.pack(new Date(0)), 'schema'],
      [raw.pack({ job: 'j', rank: 'zero', at: 0, v: PROTOCOL_VERSION }), 'schema'],
      [raw.pack({ job: 'j', rank: 0, at: 0, extra: 1, v: PROTOCOL_VERSION }), 'schema'],
      [raw.pack({ job: 'other', rank: 0, at: 0, v: PROTOCOL_VERSION }), 'job'],
    ];
    for (const [i, [bytes, reason]] of cases.entries()) {
      const r = decodeMessage(heartbeat, bytes, { maxBytes: i === 0 ? good.length - 1 : 1024, job: 'j' });
      expect(r, `case ${i}`).toMatchObject({ ok: false, reason });
    }
  });
});

describe('chunk header', () => {
  const fields = { op: 7, rank: 1, shard: 2, chunk: 3, offset: 100, count: 10, dtype: 'f16' as const };
  // Rank 0 of 4 receives a contribution to shard 2 on its reduce-scatter subject.
  const arrival = { kind: 'rs', subjectShard: 2, senderRank: 1, subject: 'ddp.j.g0.1.rs.2' } as const;
  const limits = { rank: 0, worldSize: 4, maxBodyBytes: 1024 };
  const read = (hdrs: MsgHdrs | undefined, bytes: number) =>
    readInboundChunk({ data: new Uint8Array(bytes), headers: hdrs } as Msg, arrival, limits);

  it('round-trips through NATS headers', () => {
    expect(read(encodeChunkHeader(fields), 20)).toEqual({
      ok: true,
      chunk: { ...arrival, header: { v: PROTOCOL_VERSION, ...fields }, data: new Uint8Array(20) },
    });
  });

  function withField(key: string, value: string | undefined, extra?: string) {
    const h = encodeChunkHeader(fields);
    h.delete(key);
    if (value !== undefined) h.set(key, value);
    if (extra !== undefined) h.append(key, extra);
    return h;
  }

  it.each([
    [
      'a missing field',
      withField(CHUNK_HEADER_KEYS.chunk, undefined),
      20,
      'header',
      /exactly one Ddp-Chunk header, got 0/,
    ],
    ['a repeated field', withField(CHUNK_HEADER_KEYS.rank, '1', '2'), 20, 'header', /exactly one Ddp-Rank/],
    ['a negative number', withField(CHUNK_HEADER_KEYS.offset, '-1'), 20, 'header', /Ddp-Offset to be a non-negative/],
    ['a fraction', withField(CHUNK_HEADER_KEYS.count, '1.5'), 20, 'header', /Ddp-Count/],
    ['a leading zero', withField(CHUNK_HEADER_KEYS.op, '07'), 20, 'header', /Ddp-Op/],
    ['an unsafe integer', withField(CHUNK_HEADER_KEYS.op, '9999999999999999'), 20, 'header', /Ddp-Op/],
    [
      'another version',
      withField(CHUNK_HEADER_KEYS.v, String(PROTOCOL_VERSION + 1)),
      20,
      'version',
      new RegExp(`expected chunk protocol version ${PROTOCOL_VERSION}, got ${PROTOCOL_VERSION + 1}`),
    ],
    ['an unknown dtype', withField(CHUNK_HEADER_KEYS.dtype, 'f64'), 20, 'dtype', /got "f64"/],
    ['a rank outside the world', withField(CHUNK_HEADER_KEYS.rank, '4'), 20, 'rank', /below the world size 4, got 4/],
    ['a shard outside the world', withField(CHUNK_HEADER_KEYS.shard, '9'), 20, 'range', /shard below/],
    ['a shard the subject does not name', withField(CHUNK_HEADER_KEYS.shard, '3'), 20, 'header', /but the subject is/],
    ['a contribution from the receiver', withField(CHUNK_HEADER_KEYS.rank, '0'), 20, 'rank', /from this rank \(0\)/],
    ['a truncated body', encodeChunkHeader(fields), 19, 'size', /expected 20 bytes for 10 f16 elements, got 19/],
    ['an oversized body', encodeChunkHeader(fields), 21, 'size', /got 21/],
    ['a body over the chunk limit', encodeChunkHeader(fields), 1025, 'size', /at most 1024 bytes, got 1025/],
    ['no headers at all', undefined, 20, 'header', /without headers/],
    ['empty headers', headers(), 20, 'header', /exactly one/],
  ])('rejects %s', (_name, hdrs, bytes, reason, detail) => {
    const r = read(hdrs, bytes);
    expect(r).toMatchObject({ ok: false, reason });
    expect(r.ok ? '' : r.detail).toMatch(detail);
  });
});

describe('counting observer', () => {
  it('counts drops per reason and logs at most one line per reason per interval, then says how many it skipped', () => {
    const lines: Record<string, unknown>[] = [];
    const log: Logger = {
      debug: () => {},
      info: () => {},
      warn: (_m, f) => void lines.push(f ?? {}),
      error: () => {},
      child: () => log,
    };
    let now = 0;
    const o = createCountingObserver({ log, logIntervalMs: 1000, now: () => now });
    o.invalid('size', 'too big', 's.1');
    o.invalid('size', 'too big', 's.1');
    o.invalid('size', 'too big', 's.1');
    o.invalid('rank', 'rank 9', 's.2');
    now = 1500;
    o.invalid('size', 'too big', 's.1');
    o.stale('s.3');
    o.bytesIn(10);
    o.bytesOut(4);
    expect(o.counts()).toEqual({ ...Object.fromEntries(INVALID_REASONS.map((r) => [r, 0])), size: 4, rank: 1 });
    expect([o.invalidTotal(), o.staleTotal(), o.bytesInTotal(), o.bytesOutTotal()]).toEqual([5, 1, 10, 4]);
    expect(lines).toEqual([
      { reason: 'size', detail: 'too big', subject: 's.1', notLoggedSinceLast: undefined },
      { reason: 'rank', detail: 'rank 9', subject: 's.2', notLoggedSinceLast: undefined },
      { reason: 'size', detail: 'too big', subject: 's.1', notLoggedSinceLast: 2 },
    ]);
  });
});
