// The optimizer state of a sharded optimizer (optimizer.shard) in the form an unsharded one writes:
// per variable, slot kind after slot kind, as tfjs's getWeights lists them. A rank's shard state
// (one flat variable per slot kind) is split from that form for any world size and joined back
// into it once every shard's slots are gathered, so checkpoints read the same either way and
// resume at another world size, or unsharded, exactly.
import type { GradientStep } from './gradient-step.js';
import type { OptimizerState, OptimizerStateEntry } from './optimizer-state.js';

/**
 * Operation ids a sharded optimizer's state gather takes (a sync or checkpoint of a job with
 * optimizer.shard): the members' applied steps, the table of what each holds, then one all-reduce
 * per slot kind (at most 3: RMSProp, centered).
 */
export const STATE_GATHER_OPS = 5;

/** Scalars and fields (iteration count, Adam's accBeta) that every rank holds alike. */
function isScalar(e: OptimizerStateEntry): boolean {
  return e.name.startsWith('#') || e.shape.length === 0;
}

/** One slot kind (Adam's m or v) over the whole flat parameter buffer. */
export interface FullSlot {
  /** What tfjs appends to a variable's name for this slot (m, v, accumulator, …). */
  suffix: string;
  values: Float32Array;
}

function suffixOf(name: string): string {
  const at = name.lastIndexOf('/');
  return at < 0 ? name : name.slice(at + 1);
}

/** The slots of a shard optimizer's state, in kind order, with the shard's values. */
export function shardSlots(state: OptimizerState): { suffix: string; values: Float32Array }[] {
  return state.entries
    .filter((e) => !isScalar(e))
    .map((e) => ({ suffix: suffixOf(e.name), values: e.values as Float32Array }));
}

/** The state in the unsharded form: the shard optimizer's scalars around every variable's slots. */
export function toVariableState(shard: OptimizerState, slots: FullSlot[], step: GradientStep): OptimizerState {
  const scalars = shard.entries.filter(isScalar);
  const entries: OptimizerStateEntry[] = scalars.filter((e) => !e.name.startsWith('#'));
  for (const slot of slots) {
    step.variables.forEach((v, i) => {
      const at = step.offsets[i];
      entries.push({
        name: `${v.name}/${slot.suffix}`,
        shape: [...v.shape],
        dtype: 'float32',
        values: slot.values.slice(at, at + v.size),
      });
    });
  }
  entries.push(...scalars.filter((e) => e.name.startsWith('#')));
  return { entries };
}

/** Every slot kind of an unsharded-form state, each over the whole flat parameter buffer. */
export function fullSlots(state: OptimizerState, step: GradientStep): FullSlot[] {
  const slots = state.entries.filter((e) => !isScalar(e));
  const n = step.variables.length;
  if (slots.length % n !== 0) {
    throw new Error(
      `the optimizer state holds ${slots.length} slots, not a whole number of slots for each of the model's ${n} variables; it belongs to another model`,
    );
  }
  const out: FullSlot[] = [];
  for (let k = 0; k < slots.length / n; k++) {
    const values = new Float32Array(step.size);
    for (let i = 0; i < n; i++) {
      const e = slots[k * n + i];
      if (e.values.length !== step.variables[i].size) {
        throw new Error(
          `optimizer slot ${e.name} holds ${e.values.length} values, variable ${step.variables[i].name} has ${step.variables[i].size}; the state belongs to another model`,
        );
      }
      values.set(e.values as Float32Array, step.offsets[i]);
    }
    out.push({ suffix: suffixOf(slots[k * n].name), values });
  }
  return out;
}

/** The state of the shard optimizer over [start, end) (variable `flatName`), from an unsharded-form state. */
export function shardState(
  state: OptimizerState,
  step: GradientStep,
  start: number,
  end: number,
  flatName: string,
): OptimizerState {
  const scalars = state.entries.filter(isScalar);
  const entries: OptimizerStateEntry[] = scalars.filter((e) => !e.name.startsWith('#'));
  for (const slot of fullSlots(state, step)) {
    entries.push({
      name: `${flatName}/${slot.suffix}`,
      shape: [end - start],
      dtype: 'float32',
      values: slot.values.slice(start, end),
    });
  }
  entries.push(...scalars.filter((e) => e.name.startsWith('#')));
  return { entries };
}
