// Optimizer state (iteration count, moments, accumulators) as plain typed arrays, for checkpoints and
// for handing a newcomer rank 0's state. tfjs keeps the per-variable slots by position, so state is
// restored into an optimizer that will see the variables in the same order.
import * as tf from '@tensorflow/tfjs';

export interface OptimizerStateEntry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  values: Float32Array | Int32Array;
}

export interface OptimizerState {
  entries: OptimizerStateEntry[];
}

export async function getOptimizerState(optimizer: tf.Optimizer): Promise<OptimizerState> {
  const weights = await optimizer.getWeights();
  try {
    const entries: OptimizerStateEntry[] = [];
    for (const { name, tensor } of weights) {
      const values = (await tensor.data()) as Float32Array | Int32Array;
      entries.push({
        name,
        shape: [...tensor.shape],
        dtype: tensor.dtype as 'float32' | 'int32',
        values: values.slice(),
      });
    }
    return { entries };
  } finally {
    // getWeights hands out the live slot variables plus a fresh iteration-count scalar; free only the latter.
    tf.dispose(weights.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable)));
  }
}

/**
 * Restores state into an optimizer that has not applied gradients yet (tfjs replaces its slots
 * without freeing earlier ones).
 */
export async function setOptimizerState(optimizer: tf.Optimizer, state: OptimizerState): Promise<void> {
  // Copies: the cpu backend adopts the array it is given, and the slots must not alias the caller's state.
  const named = state.entries.map((e) => ({ name: e.name, tensor: tf.tensor(e.values.slice(), e.shape, e.dtype) }));
  try {
    await optimizer.setWeights(named);
  } finally {
    tf.dispose(named.map((n) => n.tensor));
  }
}
