// IEEE binary16 (f16) and bfloat16 (bf16) conversions for the wire formats. Float-to-half rounds to
// nearest, ties to even, overflows to infinity and keeps subnormals, infinities and NaN (as a quiet
// NaN); half-to-float is exact. Conversions work on the raw bits through Uint32Array views, so NaN
// bit patterns survive, and decoding f16 is a lookup in a 65536-entry table built on first use.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0];
}

// |x| + 0.5 rounded to f32 puts the f16 subnormal grid (steps of 2^-24) into the low mantissa bits,
// so the f32 addition does the round-to-nearest-even. The sum is computed in f64 and rounded once
// more to f32, which is exact for a sum of two f32 values (f64 has more than 2·24+2 bits).
const DENORM_MAGIC_BITS = 126 << 23;
const DENORM_MAGIC = 0.5;

function f16FromBits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  let a = u & 0x7fffffff;
  if (a >= 0x47800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00);
  if (a < 0x38800000) return sign | (bitsOf(bitsToFloat(a) + DENORM_MAGIC) - DENORM_MAGIC_BITS);
  const mantissaOdd = (a >>> 13) & 1;
  // Rebias the exponent from 127 to 15 and add just under half a unit (plus the odd bit for ties to even).
  a += ((15 - 127) << 23) + 0xfff + mantissaOdd;
  return sign | (a >>> 13);
}

function bitsToFloat(bits: number): number {
  u32[0] = bits;
  return f32[0];
}

function bf16FromBits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

function f16ToBitsOfF32(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return (sign | (mantissa === 0 ? 0 : bitsOf(mantissa * 2 ** -24))) >>> 0;
  if (exponent === 31) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
}

let f16Table: Uint32Array | undefined;
function f16DecodeTable(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToBitsOfF32(h);
  }
  return f16Table;
}

/** The f16 bit pattern nearest to x (ties to even). */
export function toFloat16Bits(x: number): number {
  return f16FromBits(bitsOf(x));
}

export function fromFloat16Bits(h: number): number {
  return bitsToFloat(f16DecodeTable()[h & 0xffff]);
}

/** The bf16 bit pattern nearest to x (ties to even). */
export function toBfloat16Bits(x: number): number {
  return bf16FromBits(bitsOf(x));
}

export function fromBfloat16Bits(h: number): number {
  return bitsToFloat((h & 0xffff) << 16);
}

function bitsView(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

function checkLengths(src: ArrayLike<number>, dst: ArrayLike<number>): void {
  if (src.length !== dst.length) {
    throw new RangeError(`expected source and destination of equal length, got ${src.length} and ${dst.length}`);
  }
}

export function float32ToFloat16(src: Float32Array, dst: Uint16Array): void {
  checkLengths(src, dst);
  const bits = bitsView(src);
  for (let i = 0; i < bits.length; i++) dst[i] = f16FromBits(bits[i]);
}

export function float16ToFloat32(src: Uint16Array, dst: Float32Array): void {
  checkLengths(src, dst);
  const table = f16DecodeTable();
  const out = bitsView(dst);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
}

export function float32ToBfloat16(src: Float32Array, dst: Uint16Array): void {
  checkLengths(src, dst);
  const bits = bitsView(src);
  for (let i = 0; i < bits.length; i++) dst[i] = bf16FromBits(bits[i]);
}

export function bfloat16ToFloat32(src: Uint16Array, dst: Float32Array): void {
  checkLengths(src, dst);
  const out = bitsView(dst);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
}
