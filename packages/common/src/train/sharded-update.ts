// ZeRO stage 1 (optimizer.shard): the update of this rank's shard of the parameters. The shard is
// the collective's block [floor(r·L/N), floor((r+1)·L/N)) of the flat parameter buffer, kept as one
// 1-D variable with one tfjs optimizer over it, so the optimizer's slots cover the shard only. Every
// optimizer tfjs has is elementwise, so its math on the flat shard is the math on the shaped
// variables; decoupled weight decay takes a per-element mask of the variables that decay. An update
// stays open until the step's parameter all-gather succeeded: a failed step can roll the slots back
// (from a copy on the host, so the device holds one set of slots), so a redone step does not
// advance them twice (DESIGN §3.4).
import * as tf from '@tensorflow/tfjs';
import type { ApplyOptions, GradientStep } from './gradient-step.js';
import { createOptimizer, type OptimizerSpecInput, type ScheduledOptimizer } from './optimizers.js';

/** Floats each rank contributes to the all-gather of the shards' statistics. */
export const SHARD_STATS_FLOATS = 3;

/** This rank's shard of a buffer of `length` floats over `worldSize` ranks (the allGather block). */
export function shardRange(length: number, rank: number, worldSize: number): { start: number; end: number } {
  return { start: Math.floor((rank * length) / worldSize), end: Math.floor(((rank + 1) * length) / worldSize) };
}

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
  readonly flat: tf.Variable;
  private scheduled: ScheduledOptimizer;
  /** Which elements of the shard weight decay shrinks (GradientStep.decays, per element); made on first use. */
  private decayMask?: tf.Tensor;
  private readonly mean: Float32Array;
  private open?: OpenUpdate;
  /** The shard variable no longer holds the model's parameters (they were set from elsewhere). */
  private stale = true;

  constructor(
    readonly step: GradientStep,
    private readonly spec: OptimizerSpecInput,
    readonly rank: number,
    readonly worldSize: number,
  ) {
    ({ start: this.start, end: this.end } = shardRange(step.size, rank, worldSize));
    const length = this.end - this.start;
    // tf.variable keeps its initial value's buffer alive besides its own: free it.
    const zeros = tf.zeros([length], 'float32');
    this.flat = tf.variable(zeros, true, `ddp-shard-${rank}-of-${worldSize}-${uid()}`);
    zeros.dispose();
    this.scheduled = createOptimizer(spec);
    this.mean = new Float32Array(length);
  }

  get optimizer(): tf.Optimizer {
    return this.scheduled.optimizer;
  }

  /** The model's parameters were set from elsewhere (a state loaded, best weights restored). */
  invalidate(): void {
    this.stale = true;
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
    if (this.stale) {
      tf.tidy(() => this.flat.assign(tf.tensor(params.slice(this.start, this.end), [this.end - this.start])));
      this.stale = false;
    }
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
    tf.tidy(() => {
      if (decay > 0) {
        const keep = tf.scalar(1 - (options.learningRate as number) * decay, 'float32');
        this.flat.assign(tf.where(this.mask(), tf.mul(this.flat, keep), this.flat));
      }
      const grad = tf.tensor(this.mean, [this.mean.length], 'float32');
      this.optimizer.applyGradients([{ name: this.flat.name, tensor: grad }]);
    });
    params.set((await this.flat.data()) as Float32Array, this.start);
    return { gradNorm, clipped: divisor !== globalCount };
  }

  /** The step's parameters reached every rank: the open update stands. */
  commit(): void {
    const open = this.open;
    this.open = undefined;
    if (open) tf.dispose(open.fields.map(([, clone]) => clone));
  }

  /**
   * The step failed: slots and counters go back to where the update found them; the shard is
   * taken from the parameters again at the next apply (the caller rereads them from the model).
   */
  rollback(): void {
    const open = this.open;
    this.open = undefined;
    if (!open) return;
    this.stale = true;
    for (const [variable, values] of open.slots) tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
    for (const [variable, clone] of open.fields) variable.assign(clone);
    tf.dispose(open.fields.map(([, clone]) => clone));
    // Slots the failed update created: a fresh optimizer has none, as before it.
    if (!open.hadSlots) this.resetOptimizer();
    else (this.optimizer as unknown as { iterations_: number }).iterations_ = open.iterations;
  }

  dispose(): void {
    this.rollback();
    this.scheduled.dispose();
    tf.dispose([this.flat, ...(this.decayMask ? [this.decayMask] : [])]);
  }

  private mask(): tf.Tensor {
    if (this.decayMask) return this.decayMask;
    const length = this.end - this.start;
    const mask = new Uint8Array(length);
    this.step.variables.forEach((v, i) => {
      if (!this.step.decays[i]) return;
      const from = Math.max(this.step.offsets[i], this.start);
      const to = Math.min(this.step.offsets[i] + v.size, this.end);
      if (to > from) mask.fill(1, from - this.start, to - this.start);
    });
    this.decayMask = tf.keep(tf.tensor(mask, [length], 'bool'));
    return this.decayMask;
  }

  /** What the update is about to change: the slots (copied to the host) and the scalar fields. */
  private async begin(): Promise<OpenUpdate> {
    const optimizer = this.optimizer;
    const weights = await optimizer.getWeights();
    const slots: [tf.Variable, Float32Array][] = [];
    for (const w of weights) {
      if (w.tensor instanceof tf.Variable) slots.push([w.tensor, ((await w.tensor.data()) as Float32Array).slice()]);
      else w.tensor.dispose();
    }
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
