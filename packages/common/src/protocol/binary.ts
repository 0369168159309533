// The building blocks of the binary encodings (control messages, replica and hook states): plain
// msgpack maps, and float arrays as raw bytes and back.
import { Packr, Unpackr } from 'msgpackr';

// Plain maps, no msgpackr record extension: other languages' msgpack decoders can read the bytes.
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** msgpack bytes of `value`, owned by the caller (msgpackr returns a view of its reusable buffer). */
export function packPlain(value: unknown): Uint8Array {
  return new Uint8Array(packr.pack(value));
}

/** Decodes msgpack bytes, maps as plain objects. Throws on bytes that are not msgpack. */
export function unpackPlain(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}

/** The bytes of a typed array, without copying. */
export function byteView(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The floats in `bytes`, copied into a fresh, aligned buffer: decoded byte strings may sit at any offset. */
export function floatsOf(bytes: Uint8Array): Float32Array {
  // new Uint8Array(view) copies; a Node Buffer's slice() would not.
  return new Float32Array(new Uint8Array(bytes).buffer);
}
