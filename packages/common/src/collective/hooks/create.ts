// Builds the hook a job's spec asks for, from the shapes of the model's variables (the order their
// gradients lie in the flat buffer): PowerSGD needs them to find the matrices.
import { formatIssues, type WireDtype } from '../../protocol/index.js';
import type { CommHook } from './comm-hook.js';
import { createPlainHook } from './plain.js';
import { createPowerSgdHook } from './power-sgd.js';
import { commHookSpecSchema, compressionConflict, type CommHookSpecInput } from './spec.js';
import { createTopKHook } from './top-k.js';

export interface CommHookOptions {
  /** The job's allreduce.dtype: the wire format of the plain all-reduce (default f32). */
  dtype?: WireDtype;
  /** Seeds PowerSGD's initial Q; must be equal on every rank (the job's seed). */
  seed?: number;
  /**
   * Forces the top-k and PowerSGD passes onto WebAssembly or JavaScript (both give the same bits;
   * tests compare them). By default WebAssembly where the runtime has SIMD.
   */
  kernel?: 'wasm' | 'js';
}

export function createCommHook(
  spec: CommHookSpecInput,
  shapes: readonly (readonly number[])[],
  options: CommHookOptions = {},
): CommHook {
  const parsed = commHookSpecSchema.safeParse(spec);
  if (!parsed.success) throw new Error(`invalid compression: ${formatIssues(parsed.error, '(compression)')}`);
  const hook = parsed.data;
  const dtype = options.dtype ?? 'f32';
  const conflict = compressionConflict(hook.type, dtype);
  if (conflict) throw new Error(conflict);
  for (const shape of shapes) {
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new RangeError(`expected variable shapes of non-negative integers, got [${shape.join(', ')}]`);
    }
  }
  const length = shapes.reduce((sum, s) => sum + s.reduce((a, b) => a * b, 1), 0);
  switch (hook.type) {
    case 'none':
      return createPlainHook('none', length, dtype);
    case 'f16':
    case 'bf16':
      return createPlainHook(hook.type, length, hook.type);
    case 'topk':
      return createTopKHook(length, hook.ratio, options.kernel);
    case 'powersgd':
      return createPowerSgdHook(shapes, {
        rank: hook.rank,
        warmStart: hook.warmStart,
        seed: options.seed ?? 0,
        kernel: options.kernel,
      });
  }
}
