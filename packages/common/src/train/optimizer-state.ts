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

/**
 * Entries of scalars an optimizer keeps outside getWeights() carry this prefix and the field's name.
 * tfjs's Adam keeps accBeta1/accBeta2 (β^t, multiplied once per step) that way, Adamax accBeta1 and
 * its iteration; their setWeights recomputes them as pow(β, iterations + 1), which differs from the
 * repeated product in the last bits. A replica restored that way drifts from the one it came from
 * on its next update, so the state carries them and they are restored exactly.
 */
const FIELD = '#';

/** The optimizer's own variables that getWeights() leaves out, by field name. */
function fieldVariables(optimizer: tf.Optimizer): [string, tf.Variable][] {
  return Object.entries(optimizer).filter((e): e is [string, tf.Variable] => e[1] instanceof tf.Variable);
}

async function entryOf(name: string, tensor: tf.Tensor): Promise<OptimizerStateEntry> {
  const values = (await tensor.data()) as Float32Array | Int32Array;
  return { name, shape: [...tensor.shape], dtype: tensor.dtype as 'float32' | 'int32', values: values.slice() };
}

export async function getOptimizerState(optimizer: tf.Optimizer): Promise<OptimizerState> {
  const weights = await optimizer.getWeights();
  try {
    const entries: OptimizerStateEntry[] = [];
    for (const { name, tensor } of weights) entries.push(await entryOf(name, tensor));
    for (const [field, variable] of fieldVariables(optimizer)) entries.push(await entryOf(FIELD + field, variable));
    return { entries };
  } finally {
    // getWeights hands out the live slot variables plus a fresh iteration-count scalar; free only the latter.
    tf.dispose(weights.map((w) => w.tensor).filter((t) => !(t instanceof tf.Variable)));
  }
}

/**
 * Restores state into an optimizer that has not applied gradients yet (tfjs replaces its slots
 * without freeing earlier ones). Afterwards the optimizer's next update is bit for bit the one the
 * optimizer the state was read from would have applied.
 */
export async function setOptimizerState(optimizer: tf.Optimizer, state: OptimizerState): Promise<void> {
  const fields = new Map(fieldVariables(optimizer));
  const slots = state.entries.filter((e) => !e.name.startsWith(FIELD));
  // Copies: the cpu backend adopts the array it is given, and the slots must not alias the caller's state.
  const named = slots.map((e) => ({ name: e.name, tensor: tf.tensor(e.values.slice(), e.shape, e.dtype) }));
  try {
    await optimizer.setWeights(named);
  } finally {
    tf.dispose(named.map((n) => n.tensor));
  }
  for (const e of state.entries) {
    if (!e.name.startsWith(FIELD)) continue;
    const field = e.name.slice(FIELD.length);
    const variable = fields.get(field);
    if (!variable) {
      throw new Error(
        `the optimizer state has a field "${field}" that this ${optimizer.getClassName()} optimizer does not have; it was written by another optimizer type`,
      );
    }
    tf.tidy(() => variable.assign(tf.tensor(e.values.slice(), e.shape, e.dtype)));
  }
}
