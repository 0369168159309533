// This replica's part of a sharded optimizer (optimizer.shard: ZeRO stage 1): the update of its
// shard for the generation's layout, the host copy of the parameters the step all-gathers, and the
// optimizer state in the unsharded form while the slots are not sharded yet (a state just loaded or
// synced: it is split for this rank's shard at the next step, whatever the world size now).
//
// Gathering the state (for a checkpoint or a new generation): an update a failed step left open
// stands or is undone by the root's applied step, then every member says which elements of the
// slots it holds, at which step; the members that hold the root's step must tile the
// buffer, and one all-reduce per slot kind assembles it (the others add -0, the exact identity of
// float addition, so the bits are the holders'). Checkpoints are gathered at checkpoint time rather
// than written per shard: the coordinator keeps one state file, and any world size (or an unsharded
// job) resumes from it by slicing.
import {
  fullSlots,
  getOptimizerState,
  setOptimizerState,
  shardSlots,
  shardState,
  ShardedUpdate,
  STATE_GATHER_OPS,
  toVariableState,
  type Collective,
  type GradientStep,
  type JobSpec,
  type OptimizerState,
} from '@tfjs-ddp/common';
import type { Optimizer } from '@tensorflow/tfjs';

const META = 4;

export class ShardedOptimizer {
  /** The full parameters on the host: the shard is written in, the all-gather fills the rest. */
  readonly params: Float32Array;
  private update?: ShardedUpdate;
  /** The unsharded-form state to split at the next step; undefined once split (or when fresh). */
  private pending?: OptimizerState;
  private paramsStale = true;
  /**
   * The step of an update left open by a step that failed after it: it stands if that step was
   * applied on any rank (its parameters' all-gather completed there, so every rank updated its
   * shard) and is rolled back otherwise; the next sync decides, from the root's applied step.
   */
  private openStep = -1;

  constructor(
    private readonly step: GradientStep,
    private readonly spec: JobSpec,
  ) {
    this.params = new Float32Array(step.size);
  }

  /** The model's parameters were set from elsewhere: the host copy and the shard are reread. */
  invalidate(): void {
    this.paramsStale = true;
  }

  /** Takes a whole state (loaded or synced) in the unsharded form; it is split at the next step. */
  take(state: OptimizerState | undefined): void {
    this.update?.dispose();
    this.update = undefined;
    this.openStep = -1;
    this.pending = state;
    this.invalidate();
  }

  /** The shard's update for `c`'s layout, with the host parameters current. */
  async prepare(c: Collective): Promise<ShardedUpdate> {
    // A step redone without a sync in between: nothing of the failed attempt stands.
    this.settle(Number.NaN);
    let u = this.update;
    if (!u || u.rank !== c.rank || u.worldSize !== c.worldSize) {
      if (u && !this.pending) {
        throw new Error(
          `the sharded optimizer holds shard ${u.rank} of ${u.worldSize} but the generation needs shard ${c.rank} of ${c.worldSize}; ` +
            `its state must be gathered first (a generation change syncs it)`,
        );
      }
      u?.dispose();
      u = new ShardedUpdate(this.step, this.spec.optimizer, c.rank, c.worldSize);
      if (this.pending && this.pending.entries.length > 0)
        await setOptimizerState(u.optimizer, shardState(this.pending, this.step, u.start, u.end, u.name));
      this.pending = undefined;
      this.update = u;
    }
    if (this.paramsStale) {
      await this.step.getWeightsAsync(this.params);
      this.paramsStale = false;
    }
    return u;
  }

  /** Step `step` failed after the update: it stays open for the next sync; the host parameters are reread. */
  failed(step: number): void {
    this.openStep = step;
    this.paramsStale = true;
  }

  /** The step applied everywhere (`applied`) decides an open update: it stands, or it is undone. */
  private settle(applied: number): void {
    if (this.openStep < 0) return;
    if (this.openStep === applied) this.update?.commit();
    else this.update?.rollback();
    this.openStep = -1;
  }

  get optimizer(): Optimizer | undefined {
    return this.update?.optimizer;
  }

  /**
   * The whole state in the unsharded form, assembled from every member of `c` (ops op … op +
   * STATE_GATHER_OPS − 1); `appliedStep` is this replica's, `root` the member whose step counts.
   * Undefined when the root has applied nothing (a fresh optimizer).
   */
  async gather(c: Collective, op: number, appliedStep: number, root: number): Promise<OptimizerState | undefined> {
    const L = this.step.size;
    const table = new Float32Array(META * c.worldSize);
    const ints = new Int32Array(table.buffer);
    ints.set([appliedStep, this.openStep], META * c.rank);
    await c.allGather(table, { op });
    const step = ints[META * root];
    this.settle(step);
    const own = await this.heldState();
    const held = new Float32Array(META * c.worldSize);
    const heldInts = new Int32Array(held.buffer);
    heldInts.set(
      [
        Math.max(appliedStep, ints[META * c.rank + 1] === step ? step : -1),
        own?.start ?? 0,
        own?.end ?? 0,
        own?.slots.length ?? 0,
      ],
      META * c.rank,
    );
    await c.allGather(held, { op: op + 1 });
    const at = (r: number, k: number) => heldInts[META * r + k];
    if (step < 0) return undefined;
    const kinds = at(root, 3);
    // No slots (SGD): nothing to lose with a worker; the counters are the root's.
    if (kinds === 0) return own ? toVariableState(own.scalars, [], this.step) : { entries: [] };
    if (kinds > STATE_GATHER_OPS - 2) throw new Error(`an optimizer with ${kinds} slot kinds cannot be gathered`);
    const holders = [...Array(c.worldSize).keys()].filter((r) => at(r, 0) === step && at(r, 2) > at(r, 1));
    // One holder of the whole buffer is enough; otherwise the holders' shards must tile it.
    const whole = holders.find((r) => at(r, 1) === 0 && at(r, 2) === L);
    const chosen = whole !== undefined ? [whole] : holders.sort((a, b) => at(a, 1) - at(b, 1));
    let next = 0;
    for (const r of chosen) {
      if (at(r, 1) !== next) break;
      next = at(r, 2);
    }
    if (next !== L) {
      throw new Error(
        `the sharded optimizer state at step ${step} is incomplete: no member holds the slots from element ${next} of ${L} ` +
          `(optimizer.shard keeps each shard's slots on one worker only, and that worker is gone). ` +
          `Resume the job from its last checkpoint, or train with optimizer.shard: false to survive losing workers`,
      );
    }
    const mine = chosen.includes(c.rank) && own ? own : undefined;
    const slots = [];
    for (let k = 0; k < kinds; k++) {
      const values = new Float32Array(L).fill(-0);
      if (mine) values.set(mine.slots[k].values, mine.start);
      await c.allReduce(values, { op: op + 2 + k, dtype: 'f32' });
      slots.push({ suffix: mine?.slots[k].suffix ?? '', values });
    }
    // Suffixes only name the slots; a replica that held none takes tfjs's by position on restore.
    return own ? toVariableState(own.scalars, slots, this.step) : { entries: [] };
  }

  dispose(): void {
    this.update?.dispose();
    this.update = undefined;
  }

  /** What this replica holds: its shard's slots, or the whole pending state as one shard. */
  private async heldState(): Promise<
    | { start: number; end: number; slots: { suffix: string; values: Float32Array }[]; scalars: OptimizerState }
    | undefined
  > {
    if (this.pending) {
      const slots = fullSlots(this.pending, this.step);
      return { start: 0, end: this.step.size, slots, scalars: this.pending };
    }
    if (!this.update) return undefined;
    const state = await getOptimizerState(this.update.optimizer);
    return { start: this.update.start, end: this.update.end, slots: shardSlots(state), scalars: state };
  }
}
