// The interface every gradient communication hook implements: the training step hands it this
// rank's gradient sum and a collective, and gets back the sum over all ranks (or its compressed
// approximation), bit-identical on every rank. Hooks with error feedback carry state from step to
// step, which travels with the replica's state (checkpoints, joiners).
import type { Collective } from '../collective.js';
import type { CommHookType } from './spec.js';

/**
 * Operation ids a hook may use in one step: ctx.op … ctx.op + COMM_HOOK_OPS - 1. The coordinator
 * reserves this many per step, since a hook may run several collective operations.
 */
export const COMM_HOOK_OPS = 16;

export interface CommHookContext {
  /** First operation id of the block reserved for this step. */
  op: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * What happens to this rank's error-feedback residual when a state is loaded: `take` the one in the
 * state (resuming from a checkpoint rank 0 wrote), `keep` the own (a survivor or joiner taking the
 * root's state: residuals are per rank), or `clear` it (resuming, on ranks other than 0).
 */
export type ResidualPolicy = 'take' | 'keep' | 'clear';

export interface CommHook {
  readonly type: CommHookType;
  /** Floats of the gradient buffers it reduces. */
  readonly length: number;
  /**
   * Replaces `grad` with the sum over all ranks (or its approximation). When the operation fails,
   * or the result holds NaN or Inf (the step's update is skipped), the hook's state stays as it was,
   * so a redone step starts from the same state; `grad` is then unspecified.
   */
  reduce(grad: Float32Array, c: Collective, ctx: CommHookContext): Promise<void>;
  /** The hook's state as bytes: empty for stateless hooks. */
  state(): Uint8Array;
  /** Restores a state from state(); empty bytes reset the hook to its initial state. */
  load(state: Uint8Array, residual: ResidualPolicy): void;
}
