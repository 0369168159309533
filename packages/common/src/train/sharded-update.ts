// ZeRO stage 1 (optimizer.shard): the update of this rank's shard of the parameters. The shard is
// the collective's block [floor(r·L/N), floor((r+1)·L/N)) of the flat parameter buffer, updated as
// one 1-D variable by one tfjs optimizer, so the optimizer's slots cover the shard only. The
// variable lives for the update alone, made from the host copy of the parameters the step keeps:
// between steps a rank holds the model and its shard's slots, nothing more. Every
// optimizer tfjs has is elementwise, so its math on the flat shard is the math on the shaped
// variables; decoupled weight decay takes a per-element mask of the variables that decay. An update
// stays open until the step's parameter all-gather succeeded: a failed step can roll the slots back
// (from a copy on the host, so the device holds one set of slots), so a redone step does not
// advance them twice (DESIGN §3.4).
import * as tf from '@tensorflow/tfjs';
import { shardRange } from '../collective/layout.js';
import type { ApplyOptions, GradientStep } from './gradient-step.js';
import { createOptimizer, type OptimizerSpecInput, type ScheduledOptimizer } from './optimizers.js';

/** Floats each rank contributes to the all-gather of the shards' statistics. */
export const SHARD_STATS_FLOATS = 3;

/**
 * Writes this rank's block of the statistics buffer (SHARD_STATS_FLOATS floats per rank): the squared
 * norm of its shard of the reduced sum (float64, carried as a float32 pair hi + lo) and whether the
 * shard is finite.
 */
export function writeShardStats(reduced: Float32Array, start: number, end: number, out: Float32Array, rank: number) {
  let squares = 0;
  let finite = 1;
  for (let i = start; i < end; i++) {
    const v = reduced[i];
    if (!Number.isFinite(v)) {
      finite = 0;
      squares = 0;
      break;
    }
    squares += v * v;
  }
  const hi = Math.fround(squares);
  const at = rank * SHARD_STATS_FLOATS;
  out[at] = hi;
  out[at + 1] = Math.fround(squares - hi);
  out[at + 2] = finite;
}

/** The gathered statistics: squares summed in rank order, so every rank gets the same bits. */
export function combineShardStats(stats: Float32Array, worldSize: number): { squares: number; finite: boolean } {
  let squares = 0;
  let finite = true;
  for (let r = 0; r < worldSize; r++) {
    const at = r * SHARD_STATS_FLOATS;
    squares += stats[at] + stats[at + 1];
    if (stats[at + 2] !== 1) finite = false;
  }
  return { squares, finite };
}

interface OpenUpdate {
  /** The optimizer's slots as they were, on the host: device memory is what sharding saves. */
  slots: [tf.Variable, Float32Array][];
  /** Its scalar fields (Adam's accBeta), as clones. */
  fields: [tf.Variable, tf.Tensor][];
  iterations: number;
  /** Whether the optimizer had created its slots: the first update creates them. */
  hadSlots: boolean;
}

export class ShardedUpdate {
  readonly start: number;
  readonly end: number;
  /** The name of the shard's variable while it exists (the optimizer's slots are named after it). */
  readonly name: string;
  private scheduled: ScheduledOptimizer;
  /** Which elements of the shard weight decay shrinks (GradientStep.decays, per element). */
  private decays?: Uint8Array;
  private readonly mean: Float32Array;
  /** The shard's parameters as the update starts from them (weight decay applied), uploaded each step. */
  private readonly shard: Float32Array;
  private open?: OpenUpdate;

  constructor(
    readonly step: GradientStep,
    private readonly spec: OptimizerSpecInput,
    readonly rank: number,
    readonly worldSize: number,
  ) {
    ({ start: this.start, end: this.end } = shardRange(step.size, rank, worldSize));
    this.name = `ddp-shard-${rank}-of-${worldSize}-${uid()}`;
    this.scheduled = createOptimizer(spec);
    this.mean = new Float32Array(this.end - this.start);
    this.shard = new Float32Array(this.end - this.start);
  }

  get optimizer(): tf.Optimizer {
    return this.scheduled.optimizer;
  }

  /**
   * Replaces the optimizer by a fresh one (its slots restored by the caller): tfjs replaces slots
   * without freeing earlier ones.
   */
  resetOptimizer(): tf.Optimizer {
    this.scheduled.dispose();
    this.scheduled = createOptimizer(this.spec);
    return this.optimizer;
  }

  /**
   * Applies the shard of the reduced sum to the shard of the parameters: divided by the global count
   * (and clipped to the global norm from `squares`, the ranks' combined squared norm), decayed, and
   * stepped by the optimizer; `params` is the full parameter buffer, the shard's part of which is
   * overwritten with the result. The update stays open until commit() or rollback().
   */
  async apply(
    reduced: Float32Array,
    params: Float32Array,
    globalCount: number,
    squares: number,
    options: ApplyOptions,
  ): Promise<{ gradNorm?: number; clipped: boolean }> {
    if (this.open) throw new Error('the previous sharded update was neither committed nor rolled back');
    let divisor = globalCount;
    let gradNorm: number | undefined;
    if (options.clipNorm !== undefined) {
      gradNorm = Math.sqrt(squares) / globalCount;
      if (gradNorm > options.clipNorm) divisor = (globalCount * gradNorm) / options.clipNorm;
    }
    // The same float32 quotients GradientStep.apply uploads, element for element.
    const d = Math.fround(divisor);
    for (let i = this.start; i < this.end; i++) this.mean[i - this.start] = reduced[i] / d;
    this.open = await this.begin();
    const decay = options.weightDecay ?? 0;
    const length = this.end - this.start;
    const shard = this.shard;
    shard.set(params.subarray(this.start, this.end));
    if (decay > 0) {
      // On the host, where the shard already is: float32 × float32 rounded once, as the device multiplies.
      const keep = Math.fround(1 - (options.learningRate as number) * decay);
      const mask = this.decayMask();
      for (let i = 0; i < length; i++) if (mask[i]) shard[i] = Math.fround(shard[i] * keep);
    }
    // tf.variable keeps its initial value's buffer alive besides its own; in a tidy it is freed.
    const flat = tf.tidy(() => tf.variable(tf.tensor(shard, [length], 'float32'), true, this.name));
    try {
      tf.tidy(() => {
        const grad = tf.tensor(this.mean, [length], 'float32');
        this.optimizer.applyGradients([{ name: this.name, tensor: grad }]);
      });
      params.set((await flat.data()) as Float32Array, this.start);
    } finally {
      flat.dispose();
    }
    return { gradNorm, clipped: divisor !== globalCount };
  }

  /** The step's parameters reached every rank: the open update stands. */
  commit(): void {
    const open = this.open;
    this.open = undefined;
    if (open) tf.dispose(open.fields.map(([, clone]) => clone));
  }

  /**
   * The step failed: slots and counters go back to where the update found them (the caller rereads
   * the parameters from the model, which the failed step did not touch).
   */
  rollback(): void {
    const open = this.open;
    this.open = undefined;
    if (!open) return;
    for (const [variable, values] of open.slots) tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
    for (const [variable, clone] of open.fields) variable.assign(clone);
    tf.dispose(open.fields.map(([, clone]) => clone));
    // Slots the failed update created: a fresh optimizer has none, as before it.
    if (!open.hadSlots) this.resetOptimizer();
    else (this.optimizer as unknown as { iterations_: number }).iterations_ = open.iterations;
  }

  /** Frees the optimizer (an open update's copies too: nothing is restored into what is freed). */
  dispose(): void {
    if (this.open) tf.dispose(this.open.fields.map(([, clone]) => clone));
    this.open = undefined;
    this.scheduled.dispose();
  }

  private decayMask(): Uint8Array {
    if (this.decays) return this.decays;
    const mask = new Uint8Array(this.end - this.start);
    this.step.variables.forEach((v, i) => {
      if (!this.step.decays[i]) return;
      const from = Math.max(this.step.offsets[i], this.start);
      const to = Math.min(this.step.offsets[i] + v.size, this.end);
      if (to > from) mask.fill(1, from - this.start, to - this.start);
    });
    this.decays = mask;
    return mask;
  }

  /** What the update is about to change: the slots (copied to the host) and the scalar fields. */
  private async begin(): Promise<OpenUpdate> {
    const optimizer = this.optimizer;
    const weights = await optimizer.getWeights();
    const slotVariables = weights.map((w) => w.tensor).filter((t): t is tf.Variable => t instanceof tf.Variable);
    for (const w of weights) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
    // Every read issued before the first is awaited (a GPU backend reads them back together).
    const values = await Promise.all(slotVariables.map(async (v) => ((await v.data()) as Float32Array).slice()));
    const slots = slotVariables.map((v, i): [tf.Variable, Float32Array] => [v, values[i]]);
    const fields = Object.values(optimizer).filter((v): v is tf.Variable => v instanceof tf.Variable);
    return {
      slots,
      fields: fields.map((v) => [v, tf.clone(v)]),
      iterations: (optimizer as unknown as { iterations_: number }).iterations_,
      hadSlots: slots.length > 0,
    };
  }
}

let counter = 0;
/** Variable names are global to the tfjs engine: every shard variable gets its own. */
function uid(): number {
  counter += 1;
  return counter;
}
