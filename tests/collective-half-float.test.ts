// The f16/bf16 wire conversions: exact decoding, round-to-nearest-even encoding, and the special
// values (infinities, NaN, subnormals, signed zero) every gradient format has to survive.
import { describe, expect, it } from 'vitest';
import {
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  fromBfloat16Bits,
  fromFloat16Bits,
  toBfloat16Bits,
  toFloat16Bits,
} from '@tfjs-ddp/common';

const f32 = (x: number) => Math.fround(x);
const hex = (n: number) => '0x' + n.toString(16).padStart(4, '0');

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** A random f32 from random bits: every exponent, subnormals, infinities and NaN included. */
function randomF32(next: () => number): number {
  const u = new Uint32Array([Math.floor(next() * 4294967296)]);
  return new Float32Array(u.buffer)[0];
}

describe('f16', () => {
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [65504, 0x7bff],
    [65519.99, 0x7bff],
    [65520, 0x7c00],
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [0, 0x0000],
    [-0, 0x8000],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000],
    [2 ** -25 * 1.0000001, 0x0001],
    [3 * 2 ** -25, 0x0002],
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
    [1e-10, 0x0000],
  ])('encodes %d as the nearest f16 (ties to even)', (x, bits) => {
    expect(hex(toFloat16Bits(x))).toBe(hex(bits));
  });

  it('encodes NaN as a quiet NaN and keeps the sign of infinities', () => {
    const h = toFloat16Bits(NaN);
    expect(h & 0x7c00).toBe(0x7c00);
    expect(h & 0x03ff).not.toBe(0);
    expect(fromFloat16Bits(h)).toBeNaN();
  });

  it.each([
    [0x3c00, 1],
    [0x0001, 2 ** -24],
    [0x03ff, 1023 * 2 ** -24],
    [0x7bff, 65504],
    [0x7c00, Infinity],
    [0xfc00, -Infinity],
    [0x3555, 0.333251953125],
  ])('decodes %s exactly', (bits, x) => {
    expect(fromFloat16Bits(bits)).toBe(x);
  });

  it('decodes -0 with its sign and every NaN pattern as NaN', () => {
    expect(Object.is(fromFloat16Bits(0x8000), -0)).toBe(true);
    for (const h of [0x7c01, 0x7e00, 0xfe00, 0x7fff]) expect(fromFloat16Bits(h)).toBeNaN();
  });

  it('round-trips every one of the 65536 f16 values that is not NaN', () => {
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
      if (toFloat16Bits(fromFloat16Bits(h)) !== h) expect(hex(toFloat16Bits(fromFloat16Bits(h)))).toBe(hex(h));
    }
  });

  it('picks the nearest f16 for 200,000 random floats, the even one on ties', () => {
    const next = rng(7);
    for (let i = 0; i < 200_000; i++) {
      const x = i % 2 ? randomF32(next) : f32((next() - 0.5) * 2 ** Math.floor(next() * 40 - 26));
      if (Number.isNaN(x)) continue;
      const h = toFloat16Bits(x);
      const y = fromFloat16Bits(h);
      if (!Number.isFinite(x)) continue;
      if (!Number.isFinite(y)) {
        // Beyond the largest f16 plus half a unit (65504 + 16), round-to-nearest overflows.
        expect(Math.abs(x)).toBeGreaterThanOrEqual(65520);
        continue;
      }
      const magnitude = h & 0x7fff;
      const err = Math.abs(x - y);
      for (const n of [magnitude - 1, magnitude + 1]) {
        if (n < 0 || n >= 0x7c00) continue;
        const other = fromFloat16Bits((h & 0x8000) | n);
        const otherErr = Math.abs(x - other);
        if (otherErr < err || (otherErr === err && (magnitude & 1) === 1)) {
          throw new Error(`${x} encoded as ${hex(h)} (${y}) but ${hex((h & 0x8000) | n)} (${other}) is nearer or even`);
        }
      }
    }
  });

  it('converts whole arrays and sub-arrays like the scalar functions', () => {
    const next = rng(3);
    const src = Float32Array.from({ length: 1000 }, () => randomF32(next));
    const halves = new Uint16Array(1000);
    float32ToFloat16(src.subarray(3), halves.subarray(3));
    for (let i = 3; i < 1000; i++) expect(halves[i]).toBe(toFloat16Bits(src[i]));
    const back = new Float32Array(1000);
    float16ToFloat32(halves, back);
    for (let i = 0; i < 1000; i++)
      expect(Object.is(back[i], fromFloat16Bits(halves[i])) || Number.isNaN(back[i])).toBe(true);
    expect(() => float32ToFloat16(src, halves.subarray(1))).toThrow(/equal length, got 1000 and 999/);
  });
});

describe('bf16', () => {
  it.each([
    [1, 0x3f80],
    [-1, 0xbf80],
    [1 + 2 ** -8, 0x3f80],
    [1 + 3 * 2 ** -8, 0x3f82],
    [3.4028234663852886e38, 0x7f80],
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [-0, 0x8000],
    [2 ** -149, 0x0000],
    [2 ** -133, 0x0001],
    [3 * 2 ** -134, 0x0002],
    [0.1, 0x3dcd],
  ])('encodes %d as the nearest bf16 (ties to even)', (x, bits) => {
    expect(hex(toBfloat16Bits(x))).toBe(hex(bits));
  });

  it('keeps NaN a quiet NaN of the same sign', () => {
    expect(hex(toBfloat16Bits(NaN) & 0x7fc0)).toBe(hex(0x7fc0));
    expect(fromBfloat16Bits(toBfloat16Bits(NaN))).toBeNaN();
    const signalling = new Float32Array(new Uint32Array([0xff800001]).buffer)[0];
    expect(toBfloat16Bits(signalling) & 0xffc0).toBe(0xffc0);
  });

  it('decodes by placing the bits in the top half of an f32', () => {
    expect(fromBfloat16Bits(0x3f80)).toBe(1);
    expect(fromBfloat16Bits(0x4049)).toBe(3.140625);
    expect(fromBfloat16Bits(0xff80)).toBe(-Infinity);
    expect(fromBfloat16Bits(0x0001)).toBe(2 ** -133);
  });

  it('picks the nearest bf16 for 200,000 random floats, the even one on ties', () => {
    const next = rng(11);
    for (let i = 0; i < 200_000; i++) {
      const x = randomF32(next);
      if (!Number.isFinite(x)) continue;
      const h = toBfloat16Bits(x);
      const y = fromBfloat16Bits(h);
      if (!Number.isFinite(y)) {
        // Beyond the largest bf16 (0x7f7f) plus half a unit, round-to-nearest overflows.
        expect(Math.abs(x)).toBeGreaterThanOrEqual(fromBfloat16Bits(0x7f7f) + 2 ** 119);
        continue;
      }
      const err = Math.abs(x - y);
      for (const n of [(h & 0x7fff) - 1, (h & 0x7fff) + 1]) {
        if (n < 0 || n >= 0x7f80) continue;
        const other = fromBfloat16Bits((h & 0x8000) | n);
        const otherErr = Math.abs(x - other);
        if (otherErr < err || (otherErr === err && (h & 1) === 1)) {
          throw new Error(`${x} encoded as ${hex(h)} but ${hex((h & 0x8000) | n)} is nearer or even`);
        }
      }
    }
  });

  it('converts whole arrays like the scalar functions', () => {
    const next = rng(5);
    const src = Float32Array.from({ length: 500 }, () => randomF32(next));
    const halves = new Uint16Array(500);
    float32ToBfloat16(src, halves);
    const back = new Float32Array(500);
    bfloat16ToFloat32(halves, back);
    for (let i = 0; i < 500; i++) {
      expect(halves[i]).toBe(toBfloat16Bits(src[i]));
      expect(Object.is(back[i], fromBfloat16Bits(halves[i])) || Number.isNaN(back[i])).toBe(true);
    }
  });
});
