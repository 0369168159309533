// This worker's replica: the model's parameters (through its GradientStep), the optimizer, the
// communication hook's state and the last step applied, with the best epoch's weights when early
// stopping keeps them. Its full state as bytes travels to joiners and survivors (generation sync),
// to the coordinator (checkpoints) and back (resume), always as the same encoding, so every path
// restores the same thing.
import {
  byteView,
  ChunkAssembler,
  type AssemblerLimits,
  createCommHook,
  createOptimizer,
  floatsOf,
  getOptimizerState,
  packPlain,
  parameterHash,
  setOptimizerState,
  STATE_GATHER_OPS,
  unpackPlain,
  type Collective,
  type CommHook,
  type GradientStep,
  type JobSpec,
  type OptimizerState,
  type ResidualPolicy,
  type ScheduledOptimizer,
} from '@tfjs-ddp/common';
import type { Optimizer } from '@tensorflow/tfjs';
import { ShardedOptimizer } from './sharded-optimizer.js';

interface ReplicaState {
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

function encodeState(weights: Float32Array, opt: OptimizerState, appliedStep: number, hook: Uint8Array): Uint8Array {
  return packPlain({
    weights: byteView(weights),
    appliedStep,
    hook,
    optimizer: opt.entries.map((e) => ({ name: e.name, shape: e.shape, dtype: e.dtype, values: byteView(e.values) })),
  });
}

function decodeState(bytes: Uint8Array, expectedWeights: number): ReplicaState {
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
function asFloats(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(Math.ceil(bytes.length / 4));
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

export class Replica {
  /** Reduces each step's gradient (the job's allreduce.compression); its state travels with the replica's. */
  readonly hook: CommHook;
  /** Global step of the last update this replica applied; -1 before the first. */
  appliedStep = -1;
  /** With optimizer.shard: the shard's update and slots, in place of the full optimizer's. */
  readonly sharded?: ShardedOptimizer;
  private scheduled: ScheduledOptimizer;
  /** Scratch for reading the parameters back (sync, checkpoints, hashes). */
  private readonly weights: Float32Array;
  private best?: Float32Array;
  /** A checkpoint's state in chunks; one the coordinator stopped sending is dropped after stepMs, when it gave up too. */
  private readonly loading: ChunkAssembler;

  constructor(
    readonly step: GradientStep,
    private readonly spec: JobSpec,
    onLoadDrop?: AssemblerLimits['onDrop'],
  ) {
    this.loading = new ChunkAssembler({ maxAgeMs: spec.timeouts.stepMs, onDrop: onLoadDrop });
    this.scheduled = createOptimizer(spec.optimizer);
    this.weights = new Float32Array(step.size);
    this.hook = createCommHook(
      spec.allreduce.compression,
      step.variables.map((v) => v.shape),
      { dtype: spec.allreduce.dtype, seed: spec.seed },
    );
    if (spec.optimizer.shard) this.sharded = new ShardedOptimizer(step, spec);
  }

  get optimizer(): Optimizer {
    return this.scheduled.optimizer;
  }

  /**
   * The whole state as bytes (a checkpoint's state.bin). With optimizer.shard the optimizer state is
   * `gathered`, what gatherState() assembled just before (absent: nothing applied yet).
   */
  async encode(gathered?: OptimizerState): Promise<Uint8Array> {
    await this.step.getWeightsAsync(this.weights);
    const opt = this.sharded ? (gathered ?? { entries: [] }) : await getOptimizerState(this.optimizer);
    return encodeState(this.weights, opt, this.appliedStep, this.hook.state());
  }

  /**
   * With optimizer.shard, every member of `c` assembles the whole optimizer state (ops op … op +
   * STATE_GATHER_OPS − 1) for encode(): a checkpoint's, on rank 0; the others drop it.
   */
  async gatherState(c: Collective, op: number, root = 0): Promise<OptimizerState | undefined> {
    return this.sharded?.gather(c, op, this.appliedStep, root);
  }

  /**
   * The root's whole state to every rank of `c` (ops `op` and `op + 1`); returns this rank's
   * parameter hash afterwards, for the coordinator to check they agree.
   */
  async sync(c: Collective, op: number, root: number): Promise<string> {
    // The length travels as raw uint32 bits: the broadcast copies bytes, and a float cannot count past 2^24 exactly.
    const size = new Float32Array(1);
    const length = new Uint32Array(size.buffer);
    let state: Float32Array = new Float32Array(0);
    // A sharded state is first assembled from the members' shards (of the generation before).
    let gathered: OptimizerState | undefined;
    if (this.sharded) {
      gathered = await this.gatherState(c, op, root);
      op += STATE_GATHER_OPS;
    }
    if (c.rank === root) {
      const bytes = await this.encode(gathered);
      length[0] = bytes.length;
      state = asFloats(bytes);
    }
    await c.broadcast(size, { root, op });
    if (c.rank !== root) state = new Float32Array(Math.ceil(length[0] / 4));
    await c.broadcast(state, { root, op: op + 1 });
    // Residuals are per rank: survivors keep theirs, joiners start from zero.
    // The root's weights are still the ones it read above; the others read what they received.
    if (c.rank !== root) {
      await this.apply(new Uint8Array(state.buffer, 0, length[0]), 'keep');
      await this.step.getWeightsAsync(this.weights);
    } else this.sharded?.take(gathered);
    return parameterHash(this.weights);
  }

  /**
   * One chunk of a checkpoint's state (command `id`, `index` of `total`); once all arrived, the state
   * is loaded and the parameter hash returned.
   */
  async load(
    chunk: { id: number; index: number; total: number; data: Uint8Array },
    rank: number,
  ): Promise<string | undefined> {
    const name = `load-${chunk.id}`;
    if (!this.loading.add(name, chunk.index, chunk.total, chunk.data)) return undefined;
    const bytes = this.loading.take(name);
    // The checkpoint holds rank 0's residual: one rank takes it, so it is applied once, not N times.
    await this.apply(bytes, rank === 0 ? 'take' : 'clear');
    return this.hash();
  }

  /** Keeps the current weights as the best so far. */
  async snapshot(): Promise<void> {
    this.best ??= new Float32Array(this.step.size);
    await this.step.getWeightsAsync(this.best);
  }

  /** Back to the snapshot; false when there is none (this worker joined after it was taken). */
  restore(): boolean {
    if (!this.best) return false;
    this.step.setWeights(this.best);
    this.sharded?.invalidate();
    return true;
  }

  /** Hash of the current parameters, for the drift check. */
  hash(): Promise<string> {
    return this.step.hashAsync(this.weights);
  }

  dispose(): void {
    this.loading.clear();
    this.scheduled.dispose();
    this.sharded?.dispose();
  }

  private async apply(bytes: Uint8Array, residual: ResidualPolicy): Promise<void> {
    const state = decodeState(bytes, this.step.size);
    this.hook.load(state.hook, residual);
    this.step.setWeights(state.weights);
    this.appliedStep = state.appliedStep;
    // Split for this rank's shard at the next step, once the generation's layout is known.
    if (this.sharded) return this.sharded.take(state.optimizer.entries.length > 0 ? state.optimizer : undefined);
    // tfjs replaces optimizer slots without freeing the old ones: restore into a fresh optimizer.
    this.scheduled.dispose();
    this.scheduled = createOptimizer(this.spec.optimizer);
    await setOptimizerState(this.optimizer, state.optimizer);
  }
}
