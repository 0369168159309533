// PowerSGD's passes over the gradient (low-rank.ts) on the WebAssembly kernels of
// kernels/low-rank.wat, with the same signatures and the same bits as the JavaScript ones. The
// hook's buffers live in the kernel's memory (its views' byteOffset is the address the kernel
// takes); the gradient stays where the caller has it and goes through a block of that memory, a
// few rows at a time.
import { instantiateKernel, layout } from './kernels/instantiate.js';
import { WASM_BASE64 } from './kernels/low-rank-wasm.js';
import { decompressWithFeedback, type MatrixView } from './low-rank.js';

/** Floats of the gradient copied in or out at a time (at least one row): 64 KiB. */
const BLOCK = 16384;

export interface LowRankSizes {
  /** Floats of the gradient. */
  length: number;
  /** Floats of the P and Q all-reduce buffers. */
  pLength: number;
  qLength: number;
  /** Doubles of the accumulator scratch. */
  acc: number;
  /** The widest matrix. */
  maxCols: number;
}

export interface LowRankBuffers {
  residual: Float32Array;
  next: Float32Array;
  pBuf: Float32Array;
  qBuf: Float32Array;
  qOwn: Float32Array;
  qWarm: Float32Array;
  acc: Float64Array;
}

type Export = (...args: number[]) => number;

/** The hook's buffers and their sizes, in the order they lie in memory. */
function bufferParts(sizes: LowRankSizes) {
  return {
    residual: [sizes.length, 4],
    next: [sizes.length, 4],
    pBuf: [sizes.pLength, 4],
    qBuf: [sizes.qLength, 4],
    qOwn: [sizes.qLength, 4],
    qWarm: [sizes.qLength, 4],
    acc: [sizes.acc, 8],
  } as const;
}

function buffersIn(buffer: ArrayBuffer, at: Record<keyof LowRankBuffers, number>, sizes: LowRankSizes): LowRankBuffers {
  const f32 = (key: keyof LowRankBuffers, n: number) => new Float32Array(buffer, at[key], n);
  return {
    residual: f32('residual', sizes.length),
    next: f32('next', sizes.length),
    pBuf: f32('pBuf', sizes.pLength),
    qBuf: f32('qBuf', sizes.qLength),
    qOwn: f32('qOwn', sizes.qLength),
    qWarm: f32('qWarm', sizes.qLength),
    acc: new Float64Array(buffer, at.acc, sizes.acc),
  };
}

/** The hook's buffers in ordinary memory, for the JavaScript passes. */
export function lowRankBuffers(sizes: LowRankSizes): LowRankBuffers {
  const { bytes, at } = layout(bufferParts(sizes));
  return buffersIn(new ArrayBuffer(bytes), at, sizes);
}

export class LowRankKernels {
  private constructor(
    private readonly kernel: { project: Export; transpose: Export; decompress4: Export },
    private readonly block: Float32Array,
    /** Q and Q_own of one matrix transposed (4 × cols), for the decompression. */
    private readonly qT: Float32Array,
    private readonly qOwnT: Float32Array,
    /** The hook's buffers, in the kernel's memory. */
    readonly buffers: LowRankBuffers,
  ) {}

  /** The kernels with room for a hook of these sizes, or undefined where they cannot run. */
  static create(sizes: LowRankSizes): LowRankKernels | undefined {
    const block = Math.max(BLOCK, sizes.maxCols);
    const { bytes, at } = layout({
      ...bufferParts(sizes),
      block: [block, 4],
      qT: [4 * sizes.maxCols, 4],
      qOwnT: [4 * sizes.maxCols, 4],
    });
    const instance = instantiateKernel(WASM_BASE64, bytes);
    if (!instance) return undefined;
    const b = instance.buffer;
    const { project, transpose, decompress4 } = instance.exports;
    return new LowRankKernels(
      { project, transpose, decompress4 },
      new Float32Array(b, at.block, block),
      new Float32Array(b, at.qT, 4 * sizes.maxCols),
      new Float32Array(b, at.qOwnT, 4 * sizes.maxCols),
      buffersIn(b, at, sizes),
    );
  }

  /** feedbackAndProject of low-rank.ts: m = g + residual, P = m·Q. */
  feedbackAndProject(
    v: MatrixView,
    g: Float32Array,
    residual: Float32Array,
    m: Float32Array,
    q: Float32Array,
    qAt: number,
    r: number,
    p: Float32Array,
    pAt: number,
  ): void {
    const { rows, cols, offset } = v;
    const per = Math.max(1, Math.floor(this.block.length / cols));
    for (let i0 = 0; i0 < rows; i0 += per) {
      const n = Math.min(per, rows - i0);
      const from = offset + i0 * cols;
      this.block.set(g.subarray(from, from + n * cols));
      this.kernel.project(
        this.block.byteOffset,
        residual.byteOffset + from * 4,
        m.byteOffset + from * 4,
        n,
        cols,
        q.byteOffset + qAt * 4,
        r,
        p.byteOffset + (pAt + i0 * r) * 4,
      );
    }
  }

  /** transposeProject of low-rank.ts: Q = mᵀ·P. */
  transposeProject(
    v: MatrixView,
    m: Float32Array,
    p: Float32Array,
    pAt: number,
    r: number,
    q: Float32Array,
    qAt: number,
    acc: Float64Array,
  ): void {
    const { rows, cols, offset } = v;
    acc.fill(0, 0, cols * r);
    this.kernel.transpose(m.byteOffset + offset * 4, rows, cols, p.byteOffset + pAt * 4, r, acc.byteOffset);
    for (let x = 0; x < cols * r; x++) q[qAt + x] = acc[x];
  }

  /** decompressWithFeedback of low-rank.ts: out = P·Qᵀ, m −= P·Q_ownᵀ; false when out is not finite. */
  decompressWithFeedback(
    v: MatrixView,
    p: Float32Array,
    pAt: number,
    q: Float32Array,
    qOwn: Float32Array,
    qAt: number,
    r: number,
    out: Float32Array,
    m: Float32Array,
    acc: Float64Array,
  ): boolean {
    // The kernel does the default rank; other ranks take the JavaScript pass (same bits).
    if (r !== 4) return decompressWithFeedback(v, p, pAt, q, qOwn, qAt, r, out, m, acc);
    const { rows, cols, offset } = v;
    // Columns of Q become rows, so the kernel reads four neighbouring j of one t as a vector.
    const { qT, qOwnT } = this;
    for (let j = 0; j < cols; j++) {
      for (let t = 0; t < 4; t++) {
        qT[t * cols + j] = q[qAt + j * 4 + t];
        qOwnT[t * cols + j] = qOwn[qAt + j * 4 + t];
      }
    }
    const per = Math.max(1, Math.floor(this.block.length / cols));
    let finite = true;
    for (let i0 = 0; i0 < rows; i0 += per) {
      const n = Math.min(per, rows - i0);
      const from = offset + i0 * cols;
      const ok = this.kernel.decompress4(
        p.byteOffset + (pAt + i0 * 4) * 4,
        qT.byteOffset,
        qOwnT.byteOffset,
        n,
        cols,
        this.block.byteOffset,
        m.byteOffset + from * 4,
      );
      finite = ok === 1 && finite;
      out.set(this.block.subarray(0, n * cols), from);
    }
    return finite;
  }
}
