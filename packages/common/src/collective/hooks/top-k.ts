// Top-k sparsification with error feedback. Each rank adds its residual (what earlier steps did not
// send) to the gradient, sends the k entries of largest magnitude as (index, value) pairs and keeps
// the rest as the new residual, so nothing is lost, only delayed. The pairs of all ranks are
// all-gathered in one operation, and every rank adds them up in rank order in fp32: the same
// additions in the same order, so the reduced gradient is bit-identical everywhere.
import type { Collective } from '../collective.js';
import type { CommHook, CommHookContext, ResidualPolicy } from './comm-hook.js';
import { decodeHookState, encodeHookState } from './hook-state.js';
import { TopKSelector, type TopKKernel } from './top-k-select.js';

export function createTopKHook(length: number, ratio: number, kernel?: TopKKernel): CommHook {
  return new TopKHook(length, ratio, kernel);
}

class TopKHook implements CommHook {
  readonly type = 'topk';
  private readonly k: number;
  /** Holds the residual, and g + residual of the step in flight, which becomes it once the step succeeded. */
  private readonly selector: TopKSelector;
  private blocks = new Float32Array(0);
  private steps = 0;

  constructor(
    readonly length: number,
    ratio: number,
    kernel?: TopKKernel,
  ) {
    if (!(ratio > 0 && ratio <= 1)) throw new RangeError(`expected a top-k ratio in (0, 1], got ${ratio}`);
    this.k = Math.min(length, Math.ceil(ratio * length));
    this.selector = new TopKSelector(length, this.k, kernel);
  }

  async reduce(grad: Float32Array, c: Collective, ctx: CommHookContext): Promise<void> {
    if (grad.length !== this.length) {
      throw new RangeError(`the topk hook reduces ${this.length} floats, got a buffer of ${grad.length}`);
    }
    const k = this.k;
    const n = c.worldSize;
    // Rank r's block: k indices (uint32 bits in float slots), then their k values.
    const block = 2 * k;
    if (this.blocks.length !== n * block) this.blocks = new Float32Array(n * block);
    const own = this.blocks.subarray(c.rank * block, (c.rank + 1) * block);
    const indices = new Uint32Array(own.buffer, own.byteOffset, k);
    const values = own.subarray(k);
    this.selector.select(grad, indices, values); // leaves grad zeroed
    await c.allGather(this.blocks, { op: ctx.op, timeoutMs: ctx.timeoutMs, signal: ctx.signal });
    const all = new Uint32Array(this.blocks.buffer, this.blocks.byteOffset, this.blocks.length);
    let finite = true;
    for (let r = 0; r < n; r++) {
      const at = r * block;
      for (let j = 0; j < k; j++) {
        const i = all[at + j];
        if (i >= this.length) {
          throw new RangeError(`rank ${r} sent index ${i} for a gradient of ${this.length} floats; its build differs`);
        }
        const v = this.blocks[at + k + j];
        if (!Number.isFinite(v)) finite = false;
        grad[i] += v;
      }
    }
    // A NaN or Inf sent means every rank skips this update; the state stays as it was. (Finite values
    // whose sum overflows are not caught here: the update is skipped, the residual is still finite.)
    if (!finite) return;
    this.selector.commit(indices);
    this.steps++;
  }

  state(): Uint8Array {
    return encodeHookState({
      type: this.type,
      length: this.length,
      residual: this.selector.residual,
      shared: new Float32Array(0),
      steps: this.steps,
    });
  }

  load(bytes: Uint8Array, residual: ResidualPolicy): void {
    if (bytes.length === 0) {
      if (residual !== 'keep') this.selector.residual.fill(0);
      this.steps = 0;
      return;
    }
    const s = decodeHookState(bytes, this.type, this.length, 0);
    if (residual === 'take') this.selector.residual.set(s.residual);
    else if (residual === 'clear') this.selector.residual.fill(0);
    this.steps = s.steps;
  }
}
