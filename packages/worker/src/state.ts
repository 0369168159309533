// A replica's full training state as bytes: parameters, optimizer slots, the last applied step and the
// communication hook's state. It travels to joiners and survivors (generation sync), to the coordinator
// (checkpoints) and back (resume), always as the same encoding, so every path restores the same thing.
import { byteView, floatsOf, getOptimizerState, packPlain, unpackPlain, type OptimizerState } from '@tfjs-ddp/common';
import type { Optimizer } from '@tensorflow/tfjs';

export interface ReplicaState {
  weights: Float32Array;
  optimizer: OptimizerState;
  /** Global step of the last update applied, -1 before the first. */
  appliedStep: number;
  /** The communication hook's state (error-feedback residual, PowerSGD's Q); empty for hooks without. */
  hook: Uint8Array;
}

/** Like floatsOf: decoded byte strings may sit at any offset, so copy into an aligned buffer. */
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
  return packPlain({
    weights: byteView(weights),
    appliedStep,
    hook,
    optimizer: opt.entries.map((e) => ({ name: e.name, shape: e.shape, dtype: e.dtype, values: byteView(e.values) })),
  });
}

export function decodeState(bytes: Uint8Array, expectedWeights: number): ReplicaState {
  const raw = unpackPlain(bytes) as {
    weights: Uint8Array;
    appliedStep: number;
    hook?: Uint8Array;
    optimizer: { name: string; shape: number[]; dtype: 'float32' | 'int32'; values: Uint8Array }[];
  };
  const weights = floatsOf(raw.weights);
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
        values: e.dtype === 'int32' ? ints(e.values) : floatsOf(e.values),
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
