// How a job reduces its gradients (`allreduce.compression` in the job spec): a plain all-reduce,
// one in half precision on the wire, top-k sparsification or PowerSGD's low-rank approximation,
// the last two with error feedback. One schema, shared by the job spec and createCommHook.
import { z } from 'zod';
import type { WireDtype } from '../../protocol/index.js';

export const COMM_HOOK_TYPES = ['none', 'f16', 'bf16', 'topk', 'powersgd'] as const;
export type CommHookType = (typeof COMM_HOOK_TYPES)[number];

const topKSchema = z.strictObject({
  type: z.literal('topk'),
  /** Fraction of the gradient's elements each rank sends per step: k = ceil(ratio·L). */
  ratio: z.number().gt(0).max(1).default(0.01),
});

const powerSgdSchema = z.strictObject({
  type: z.literal('powersgd'),
  /** Rank of the approximation of each matrix-shaped gradient. */
  rank: z.number().int().min(1).max(64).default(4),
  /** Start each step's power iteration from the previous step's Q (Vogels et al.); false: a fresh random Q. */
  warmStart: z.boolean().default(true),
});

const objectSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('none') }),
    z.strictObject({ type: z.literal('f16') }),
    z.strictObject({ type: z.literal('bf16') }),
    topKSchema,
    powerSgdSchema,
  ],
  { error: () => `expected type to be one of ${COMM_HOOK_TYPES.join(', ')}` },
);

/** A hook by name (`compression: topk`, with default settings) or as an object with its settings. */
export const commHookSpecSchema = z.preprocess((v) => (typeof v === 'string' ? { type: v } : v), objectSchema);

export type CommHookSpec = z.output<typeof commHookSpecSchema>;
export type CommHookSpecInput = z.input<typeof objectSchema> | CommHookType;

/**
 * Why a hook and the job's `allreduce.dtype` cannot go together, or undefined when they can. Only the
 * plain all-reduce takes its wire format from `dtype`; the other hooks choose their own.
 */
export function compressionConflict(hook: CommHookType, dtype: WireDtype): string | undefined {
  if (hook === 'none' || dtype === 'f32' || hook === dtype) return undefined;
  return (
    `got compression ${hook} with dtype ${dtype}; compression ${hook} sets its own wire format, ` +
    `so leave dtype at f32 (or use compression ${dtype} alone)`
  );
}
