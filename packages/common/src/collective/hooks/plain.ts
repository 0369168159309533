// The hooks without state: one all-reduce of the whole gradient, in fp32 (`none`, or the job's
// wire dtype) or in half precision on the wire (`f16`, `bf16`; sums still accumulate in fp32).
import type { WireDtype } from '../../protocol/index.js';
import type { CommHook } from './comm-hook.js';

export function createPlainHook(type: 'none' | 'f16' | 'bf16', length: number, dtype: WireDtype): CommHook {
  return {
    type,
    length,
    async reduce(grad, c, ctx) {
      if (grad.length !== length) {
        throw new RangeError(`the ${type} hook reduces ${length} floats, got a buffer of ${grad.length}`);
      }
      await c.allReduce(grad, { op: ctx.op, dtype, timeoutMs: ctx.timeoutMs, signal: ctx.signal });
    },
    state: () => new Uint8Array(0),
    load(state) {
      if (state.length > 0) {
        throw new Error(`the ${type} hook keeps no state, got ${state.length} bytes; they belong to another job`);
      }
    },
  };
}
