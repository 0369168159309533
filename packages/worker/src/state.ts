// A replica's full training state as bytes: parameters, optimizer slots, the last applied step and the
// communication hook's state. It travels to joiners and survivors (generation sync), to the coordinator
// (checkpoints) and back (resume), always as the same encoding, so every path restores the same thing.
import { Packr, Unpackr } from 'msgpackr';
import { getOptimizerState, type OptimizerState } from '@tfjs-ddp/common';
import type { Optimizer } from '@tensorflow/tfjs';

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export interface ReplicaState {
  weights: Float32Array;
  optimizer: OptimizerState;
  /** Global step of the last update applied, -1 before the first. */
  appliedStep: number;
  /** The communication hook's state (error-feedback residual, PowerSGD's Q); empty for hooks without. */
  hook: Uint8Array;
}

function bytesOf(a: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Copies into a fresh, aligned buffer: decoded byte strings may sit at any offset. */
function floats(b: Uint8Array): Float32Array {
  // new Uint8Array(view) copies; a Node Buffer's slice() would not.
  return new Float32Array(new Uint8Array(b).buffer);
}

function ints(b: Uint8Array): Int32Array {
  return new Int32Array(new Uint8Array(b).buffer);
}

export async function encodeState(
  weights: Float32Array,
  optimizer: Optimizer,
  appliedStep: number,
  hook: Uint8Array,
): Promise<Uint8Array> {
  const opt = await getOptimizerState(optimizer);
  return new Uint8Array(
    packr.pack({
      weights: bytesOf(weights),
      appliedStep,
      hook,
      optimizer: opt.entries.map((e) => ({ name: e.name, shape: e.shape, dtype: e.dtype, values: bytesOf(e.values) })),
    }),
  );
}

export function decodeState(bytes: Uint8Array, expectedWeights: number): ReplicaState {
  const raw = unpackr.unpack(bytes) as {
    weights: Uint8Array;
    appliedStep: number;
    hook?: Uint8Array;
    optimizer: { name: string; shape: number[]; dtype: 'float32' | 'int32'; values: Uint8Array }[];
  };
  const weights = floats(raw.weights);
  if (weights.length !== expectedWeights) {
    throw new Error(
      `the state holds ${weights.length} parameters but this model has ${expectedWeights}; it belongs to another model`,
    );
  }
  return {
    weights,
    appliedStep: raw.appliedStep,
    // States written before hooks existed carry none: the hook starts fresh.
    hook: raw.hook instanceof Uint8Array ? new Uint8Array(raw.hook) : new Uint8Array(0),
    optimizer: {
      entries: raw.optimizer.map((e) => ({
        name: e.name,
        shape: e.shape,
        dtype: e.dtype,
        values: e.dtype === 'int32' ? ints(e.values) : floats(e.values),
      })),
    },
  };
}

/** The state padded to whole floats, so the collective's broadcast can carry it unchanged. */
export function asFloats(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(Math.ceil(bytes.length / 4));
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
