// The reduce and update of a step with optimizer.shard (ZeRO stage 1): a reduce-scatter leaves this
// rank the reduced sum of its shard; a small all-gather of every shard's squared norm and finite
// flag gives every rank the same global norm (summed in rank order) and the same decision to skip;
// the rank updates its shard of the parameters with its shard's optimizer, and an all-gather of the
// parameters (the bytes an all-reduce's second phase carries) sets every replica alike. Operation
// ids cmd.op … cmd.op + 2 of the step's block.
import {
  combineShardStats,
  setLearningRate,
  SHARD_STATS_FLOATS,
  writeShardStats,
  type Collective,
  type JobSpec,
  type WireDtype,
} from '@tfjs-ddp/common';
import type { Replica } from './replica.js';
import type { ShardedOptimizer } from './sharded-optimizer.js';

export interface ShardedStepCommand {
  step: number;
  op: number;
  lr: number;
  globalCount: number;
}

/** The wire format of the gradient's reduce-scatter: the plain hook's (f16/bf16 compression or allreduce.dtype). */
function wireDtype(spec: JobSpec): WireDtype {
  const type = spec.allreduce.compression.type;
  return type === 'f16' || type === 'bf16' ? type : spec.allreduce.dtype;
}

/**
 * Reduces `grad` (this rank's gradient sum; unspecified afterwards) and applies the step; rejects
 * with the parameters as they were when an operation fails, the shard's update left open for the
 * next sync to keep (the step was applied on another rank) or undo.
 */
export async function shardedReduceAndApply(
  replica: Replica & { sharded: ShardedOptimizer },
  spec: JobSpec,
  grad: Float32Array,
  c: Collective,
  cmd: ShardedStepCommand,
  signal: AbortSignal,
): Promise<{ nonFinite: boolean; gradNorm?: number; commMs: number }> {
  const sharded = replica.sharded;
  // The step's allreduce phase is the collective operations; apply is the rest.
  let commMs = 0;
  const timed = async (operation: Promise<void>) => {
    const t = performance.now();
    try {
      await operation;
    } finally {
      commMs += performance.now() - t;
    }
  };
  const update = await sharded.prepare(c);
  await timed(c.reduceScatter(grad, { op: cmd.op, dtype: wireDtype(spec), signal }));
  const stats = new Float32Array(SHARD_STATS_FLOATS * c.worldSize);
  writeShardStats(grad, update.start, update.end, stats, c.rank);
  await timed(c.allGather(stats, { op: cmd.op + 1, signal }));
  const { squares, finite } = combineShardStats(stats, c.worldSize);
  if (!finite) return { nonFinite: true, commMs };
  setLearningRate(update.optimizer, cmd.lr);
  try {
    const { gradNorm } = await update.apply(grad, sharded.params, cmd.globalCount, squares, {
      clipNorm: spec.optimizer.clipNorm,
      weightDecay: spec.optimizer.weightDecay,
      learningRate: cmd.lr,
    });
    await timed(c.allGather(sharded.params, { op: cmd.op + 2, signal }));
    replica.step.setWeights(sharded.params);
    update.commit();
    return { nonFinite: false, gradNorm, commMs };
  } catch (err) {
    sharded.failed(cmd.step);
    throw err;
  }
}
