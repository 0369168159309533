// Moves chunk values between fp32 buffers and wire bytes. f32 goes out as a byte view of the caller's
// buffer (no copy); f16/bf16 are encoded into a caller-owned scratch. Wire bytes are little-endian,
// which is the host order on every platform Node runs gradients on (checked at startup).
import { endianness } from 'node:os';
import { byteView, type WireDtype } from '../protocol/index.js';
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from './half-float.js';

export function assertLittleEndian(): void {
  if (endianness() !== 'LE') {
    throw new Error('the collective sends raw little-endian floats; this host is big-endian, which is not supported');
  }
}

/**
 * The wire bytes of `values`. For f16/bf16 they are written to `scratch` (same length as values) and
 * the returned bytes view it, so both must stay untouched until the publish has been flushed.
 */
export function encodeValues(dtype: WireDtype, values: Float32Array, scratch: Uint16Array | undefined): Uint8Array {
  if (dtype === 'f32') return byteView(values);
  if (!scratch) throw new Error(`a ${dtype} encode needs a scratch buffer`);
  if (dtype === 'f16') float32ToFloat16(values, scratch);
  else float32ToBfloat16(values, scratch);
  return byteView(scratch);
}

let unaligned = new Uint16Array(0);

/** Writes the values in wire `bytes` into `out` (bytes.length = out.length × bytes per element). */
export function decodeValues(dtype: WireDtype, bytes: Uint8Array, out: Float32Array): void {
  if (dtype === 'f32') {
    byteView(out).set(bytes);
    return;
  }
  let halves: Uint16Array;
  if (bytes.byteOffset % 2 === 0) {
    halves = new Uint16Array(bytes.buffer, bytes.byteOffset, out.length);
  } else {
    // A message body can start at any byte of the socket read buffer; realign it once.
    if (unaligned.length < out.length) unaligned = new Uint16Array(out.length);
    halves = unaligned.subarray(0, out.length);
    byteView(halves).set(bytes);
  }
  if (dtype === 'f16') float16ToFloat32(halves, out);
  else bfloat16ToFloat32(halves, out);
}

/** Rounds `values` in place to what the wire carries, so a rank's own data matches what peers receive. */
export function roundToWire(dtype: WireDtype, values: Float32Array, scratch: Uint16Array | undefined): void {
  if (dtype === 'f32') return;
  decodeValues(dtype, encodeValues(dtype, values, scratch), values);
}
