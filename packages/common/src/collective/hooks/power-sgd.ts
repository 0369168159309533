// PowerSGD (Vogels, Karimireddy and Jaggi, 2019) with error feedback and warm start. Every
// matrix-shaped gradient M (2-D, or a conv kernel as (kh·kw·in) × out) is approximated at rank r by
// one step of power iteration: P = M·Q, all-reduce P, orthonormalise it, Q = Mᵀ·P, all-reduce Q,
// M ≈ P·Qᵀ. Vectors (biases), and matrices too small to gain from it, go uncompressed in the first
// all-reduce. Each rank keeps what its own factor did not carry (M − P·Q_ownᵀ) as residual for the
// next step; Q starts from the previous step's, which the all-reduce made equal on every rank.
import { createPrng } from '../../data/index.js';
import type { Collective } from '../collective.js';
import type { CommHook, CommHookContext, ResidualPolicy } from './comm-hook.js';
import { decodeHookState, encodeHookState } from './hook-state.js';
import {
  decompressWithFeedback,
  feedbackAndProject,
  orthonormalizeColumns,
  transposeProject,
  type MatrixView,
} from './low-rank.js';
import { LowRankKernels, lowRankBuffers } from './low-rank-wasm.js';

/** The passes over the gradient: in JavaScript, or on the WebAssembly kernels (same bits). */
interface LowRankPasses {
  feedbackAndProject: typeof feedbackAndProject;
  transposeProject: typeof transposeProject;
  decompressWithFeedback: typeof decompressWithFeedback;
}
const JS_PASSES: LowRankPasses = { feedbackAndProject, transposeProject, decompressWithFeedback };

/** Stream id of the initial Q, so it is independent of the data plan's use of the same seed. */
const Q_STREAM = 0x70736764;

interface Compressed extends MatrixView {
  /** Where its P starts in the first all-reduce's buffer, and its Q in the second's. */
  readonly pAt: number;
  readonly qAt: number;
}

export interface PowerSgdLayout {
  readonly matrices: readonly Compressed[];
  /** Ranges of the gradient sent as they are, after the P factors in the first all-reduce. */
  readonly plain: readonly { readonly offset: number; readonly length: number }[];
  readonly length: number;
  /** Floats of the first all-reduce: every P, then (from plainAt) the plain ranges. */
  readonly pLength: number;
  readonly plainAt: number;
  /** Floats of the second all-reduce: every Q. */
  readonly qLength: number;
}

/**
 * Which variables (`shapes`, in the order their gradients lie in the flat buffer) are compressed at
 * rank r: those with at least 2 dimensions whose factors are smaller than the matrix itself.
 */
export function powerSgdLayout(shapes: readonly (readonly number[])[], r: number): PowerSgdLayout {
  const matrices: Compressed[] = [];
  const plain: { offset: number; length: number }[] = [];
  let offset = 0;
  let pLength = 0;
  let qLength = 0;
  for (const shape of shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    const cols = shape.length >= 2 ? shape[shape.length - 1] : size;
    const rows = shape.length >= 2 ? size / cols : 1;
    if (shape.length >= 2 && (rows + cols) * r < size) {
      matrices.push({ offset, rows, cols, pAt: pLength, qAt: qLength });
      pLength += rows * r;
      qLength += cols * r;
    } else if (size > 0) {
      const last = plain.at(-1);
      if (last && last.offset + last.length === offset) last.length += size;
      else plain.push({ offset, length: size });
    }
    offset += size;
  }
  const plainLength = plain.reduce((a, p) => a + p.length, 0);
  return { matrices, plain, length: offset, pLength: pLength + plainLength, plainAt: pLength, qLength };
}

export interface PowerSgdSettings {
  rank: number;
  warmStart: boolean;
  /** Seeds the initial Q; equal on every rank. */
  seed: number;
  /** Forces the passes' implementation (tests compare the two); by default WebAssembly where it runs. */
  kernel?: 'wasm' | 'js';
}

export function createPowerSgdHook(shapes: readonly (readonly number[])[], settings: PowerSgdSettings): CommHook {
  return new PowerSgdHook(powerSgdLayout(shapes, settings.rank), settings);
}

class PowerSgdHook implements CommHook {
  readonly type = 'powersgd';
  readonly length: number;
  /** Which passes run: `wasm` unless the runtime lacks WebAssembly SIMD or the memory for it, or nothing is compressed. */
  readonly kernel: 'wasm' | 'js';
  private readonly r: number;
  private readonly passes: LowRankPasses;
  private residual: Float32Array;
  /** g + residual of the step in flight, then the new residual; swapped in once the step succeeded. */
  private next: Float32Array;
  private readonly pBuf: Float32Array;
  private readonly qBuf: Float32Array;
  private readonly qOwn: Float32Array;
  /** The Q each step starts from (shared: equal on every rank). */
  private readonly qWarm: Float32Array;
  private readonly acc: Float64Array;
  private readonly work: Float64Array;
  private steps = 0;

  constructor(
    private readonly layout: PowerSgdLayout,
    private readonly settings: PowerSgdSettings,
  ) {
    this.length = layout.length;
    this.r = settings.rank;
    let scratch = 0;
    let maxCols = 0;
    for (const m of layout.matrices) {
      scratch = Math.max(scratch, m.cols * Math.max(this.r, 2), m.rows * this.r);
      maxCols = Math.max(maxCols, m.cols);
    }
    // Only the compressed matrices carry a residual; plain ranges stay zero in it.
    const residualLength = layout.matrices.length ? layout.length : 0;
    const sizes = {
      length: residualLength,
      pLength: layout.pLength,
      qLength: layout.qLength,
      acc: scratch,
      maxCols,
    };
    const kernels = layout.matrices.length && settings.kernel !== 'js' ? LowRankKernels.create(sizes) : undefined;
    if (settings.kernel === 'wasm' && !kernels) {
      throw new Error(
        'the WebAssembly PowerSGD passes cannot run here: no WebAssembly SIMD, not enough memory, or no matrix to compress',
      );
    }
    this.kernel = kernels ? 'wasm' : 'js';
    this.passes = kernels ?? JS_PASSES;
    const b = kernels?.buffers ?? lowRankBuffers(sizes);
    this.residual = b.residual;
    this.next = b.next;
    this.pBuf = b.pBuf;
    this.qBuf = b.qBuf;
    this.qOwn = b.qOwn;
    this.qWarm = b.qWarm;
    this.acc = b.acc;
    this.work = new Float64Array(scratch);
    this.initialQ(this.qWarm, 0);
  }

  async reduce(grad: Float32Array, c: Collective, ctx: CommHookContext): Promise<void> {
    if (grad.length !== this.length) {
      throw new RangeError(`the powersgd hook reduces ${this.length} floats, got a buffer of ${grad.length}`);
    }
    const { matrices, plain } = this.layout;
    const r = this.r;
    const q = this.settings.warmStart ? this.qWarm : this.initialQ(this.qBuf, this.steps);
    const passes = this.passes;
    for (const m of matrices)
      passes.feedbackAndProject(m, grad, this.residual, this.next, q, m.qAt, r, this.pBuf, m.pAt);
    let at = this.layout.plainAt;
    for (const p of plain) {
      this.pBuf.set(grad.subarray(p.offset, p.offset + p.length), at);
      at += p.length;
    }
    const opts = { timeoutMs: ctx.timeoutMs, signal: ctx.signal };
    await c.allReduce(this.pBuf, { ...opts, op: ctx.op });
    if (matrices.length) {
      for (const m of matrices) orthonormalizeColumns(this.pBuf, m.pAt, m.rows, r, this.work);
      for (const m of matrices) passes.transposeProject(m, this.next, this.pBuf, m.pAt, r, this.qBuf, m.qAt, this.acc);
      this.qOwn.set(this.qBuf);
      await c.allReduce(this.qBuf, { ...opts, op: ctx.op + 1 });
    }

    let finite = true;
    for (const m of matrices) {
      finite =
        passes.decompressWithFeedback(m, this.pBuf, m.pAt, this.qBuf, this.qOwn, m.qAt, r, grad, this.next, this.acc) &&
        finite;
    }
    at = this.layout.plainAt;
    for (const p of plain) {
      const reduced = this.pBuf.subarray(at, at + p.length);
      grad.set(reduced, p.offset);
      finite = finite && reduced.every(Number.isFinite);
      at += p.length;
    }
    if (!finite) return;
    [this.residual, this.next] = [this.next, this.residual];
    this.qWarm.set(this.qBuf);
    this.reviveColumns();
    this.steps++;
  }

  state(): Uint8Array {
    return encodeHookState({
      type: this.type,
      length: this.length,
      residual: this.residual.length ? this.residual : new Float32Array(this.length),
      shared: this.qWarm,
      steps: this.steps,
    });
  }

  load(bytes: Uint8Array, residual: ResidualPolicy): void {
    if (bytes.length === 0) {
      if (residual !== 'keep') this.residual.fill(0);
      this.initialQ(this.qWarm, 0);
      this.steps = 0;
      return;
    }
    const s = decodeHookState(bytes, this.type, this.length, this.qWarm.length);
    if (residual === 'take') this.residual.set(s.residual.subarray(0, this.residual.length));
    else if (residual === 'clear') this.residual.fill(0);
    this.qWarm.set(s.shared);
    this.steps = s.steps;
  }

  /** Fills `q` with the seeded standard-normal Q of `step` (step 0: the warm start's first). */
  private initialQ(q: Float32Array, step: number): Float32Array {
    for (const [index, m] of this.layout.matrices.entries()) {
      const rng = createPrng(this.settings.seed, Q_STREAM, index, step);
      for (let x = 0; x < m.cols * this.r; x++) q[m.qAt + x] = rng.normal();
    }
    return q;
  }

  /**
   * A Q column that came back zero (a zero gradient, or P of lower rank) would make every later P
   * column zero too; it restarts from the initial Q's column instead.
   */
  private reviveColumns(): void {
    const r = this.r;
    let fresh: Float32Array | undefined;
    for (const m of this.layout.matrices) {
      for (let t = 0; t < r; t++) {
        let zero = true;
        for (let j = 0; j < m.cols && zero; j++) zero = this.qWarm[m.qAt + j * r + t] === 0;
        if (!zero) continue;
        fresh ??= this.initialQ(new Float32Array(this.qWarm.length), 0);
        for (let j = 0; j < m.cols; j++) this.qWarm[m.qAt + j * r + t] = fresh[m.qAt + j * r + t];
      }
    }
  }
}
