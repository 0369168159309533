// Model parameters as one flat fp32 buffer in the model's fixed variable order: what rank 0
// broadcasts at start, what a newcomer receives, and what the drift check hashes.
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';

export function parameterCount(variables: readonly tf.Variable[]): number {
  return variables.reduce((n, v) => n + v.size, 0);
}

function checkLength(variables: readonly tf.Variable[], buffer: Float32Array, what: string): void {
  const expected = parameterCount(variables);
  if (buffer.length !== expected) {
    throw new Error(
      `${what} buffer holds ${buffer.length} floats; the model has ${expected} parameters in ` +
        `${variables.length} variables. Allocate new Float32Array(parameterCount(model.variables()))`,
    );
  }
}

/**
 * Copies every variable's values into out, in order. Reads back asynchronously, since WebGPU in Node
 * cannot read synchronously; every read is issued before the first is awaited, so they overlap.
 */
export async function readParametersAsync(variables: readonly tf.Variable[], out: Float32Array): Promise<void> {
  checkLength(variables, out, 'parameter');
  const values = await Promise.all(variables.map((v) => v.data()));
  let offset = 0;
  for (const data of values) {
    out.set(data as Float32Array, offset);
    offset += data.length;
  }
}

/** Assigns every variable from src, in order. */
export function writeParameters(variables: readonly tf.Variable[], src: Float32Array): void {
  checkLength(variables, src, 'parameter');
  let offset = 0;
  for (const v of variables) {
    // slice, not subarray: the cpu backend keeps the array it is given, and src will be reused.
    tf.tidy(() => v.assign(tf.tensor(src.slice(offset, offset + v.size), v.shape, 'float32')));
    offset += v.size;
  }
}

/** SHA-256 of the buffer's bytes, hex: replicas that agree bit for bit hash the same. */
export function parameterHash(buffer: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength))
    .digest('hex');
}
