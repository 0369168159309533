// Finds the k largest magnitudes of gradient + residual in about one pass. A sample of the
// magnitudes (runs spread over the buffer) gives a threshold that about 2k elements pass; the pass
// that forms g + residual also collects those candidates, and an exact selection among the
// candidates picks the k. When the sample misjudged and fewer than k pass, the threshold is lowered
// and the candidates collected again (it ends at "every element"), so the result is always the
// exact top k.
//
// The pass over every element runs in WebAssembly with SIMD (kernels/top-k.wat) where the runtime
// has it, and in JavaScript otherwise; both give the same bits. For the WebAssembly pass the
// residual and the sum live in the kernel's memory, so the selector owns them.
import { instantiateKernel, layout } from './kernels/instantiate.js';
import { WASM_BASE64 } from './kernels/top-k-wasm.js';

/**
 * The threshold's sample: RUNS runs of RUN consecutive elements spread evenly over the buffer.
 * Runs read whole cache lines; 65536 scattered elements of a 64 MiB buffer took about 6 ms on one
 * core, mostly cache misses.
 */
const RUN = 64;
const RUNS = 256;
/** Candidates aimed for, as a multiple of k, so a sample that underestimates rarely needs a second pass. */
const HEADROOM = 2;

/** Elements of g copied into the kernel's memory at a time: 64 KiB, which stays in the L2 cache. */
const BLOCK = 16384;

export type TopKKernel = 'wasm' | 'js';

export class TopKSelector {
  /** The pass that ran: `wasm` unless the runtime lacks WebAssembly SIMD or the memory for it. */
  readonly kernel: TopKKernel;
  private readonly sample: Float32Array;
  private readonly wasm: WasmPass | undefined;
  private residualBuf: Float32Array;
  private sumBuf: Float32Array;
  /** Candidates of a JavaScript pass (and of a second pass after a misjudged sample). */
  private candidates = new Int32Array(0);
  private values = new Float32Array(0);
  private work = new Float32Array(0);

  /** `kernel` forces a pass (tests compare the two); by default WebAssembly where it can run. */
  constructor(
    readonly length: number,
    readonly k: number,
    kernel?: TopKKernel,
  ) {
    if (!Number.isSafeInteger(k) || k < 0 || k > length) {
      throw new RangeError(`expected k in [0, ${length}], got ${k}`);
    }
    this.sample = new Float32Array(Math.min(length, RUN * RUNS));
    this.wasm = kernel === 'js' ? undefined : WasmPass.create(length, firstCapacity(k, length));
    if (kernel === 'wasm' && !this.wasm) {
      throw new Error('the WebAssembly top-k pass cannot run here: no WebAssembly SIMD, or not enough memory');
    }
    this.kernel = this.wasm ? 'wasm' : 'js';
    this.residualBuf = this.wasm ? this.wasm.residual : new Float32Array(length);
    this.sumBuf = this.wasm ? this.wasm.sum : new Float32Array(length);
  }

  /** What earlier steps did not send; the caller may read and overwrite it (state, load). */
  get residual(): Float32Array {
    return this.residualBuf;
  }

  /** g + residual of the last select(). */
  get sum(): Float32Array {
    return this.sumBuf;
  }

  /**
   * Forms sum = g + residual (leaving g zeroed, ready to take the reduced gradient), and writes the
   * indices of the k largest magnitudes of sum and their values into `indices` and `values`, in
   * ascending index order. NaN and ±Inf count as largest (so they are sent and the step is seen to
   * be non-finite); among equal magnitudes the lower index wins. The residual is not changed.
   */
  select(g: Float32Array, indices: Uint32Array, values: Float32Array): void {
    const { length, k } = this;
    if (g.length !== length) throw new RangeError(`expected a buffer of ${length} floats, got ${g.length}`);
    if (indices.length !== k || values.length !== k) {
      throw new RangeError(`expected room for ${k} indices and values, got ${indices.length} and ${values.length}`);
    }
    const sorted = this.sampleMagnitudes(g, this.residualBuf);
    let target = HEADROOM * k + 64;
    let threshold = thresholdFor(sorted, target, length);
    let found: number;
    if (this.wasm) {
      found = this.wasm.addCollect(g, threshold);
      if (found >= k) {
        this.pick(found, this.wasm.candidates, this.wasm.values, indices, values);
        return;
      }
      // Too few passed, or more than there was room for: the JavaScript collection below goes on.
      this.reserve(found < 0 ? this.wasm.capacity : target);
    } else {
      this.reserve(target);
      found = addAndCollect(g, this.residualBuf, this.sumBuf, threshold, this.candidates, this.values);
      g.fill(0);
    }
    while (found < k) {
      if (found < 0) this.reserve(this.candidates.length * 2);
      else {
        target *= 4;
        threshold = thresholdFor(sorted, target, length);
        this.reserve(target);
      }
      found = collect(this.sumBuf, threshold, this.candidates, this.values);
    }
    this.pick(found, this.candidates, this.values, indices, values);
  }

  /** The step succeeded: the residual becomes the sum less what was sent (`indices`). */
  commit(indices: Uint32Array): void {
    const sum = this.sumBuf;
    for (let j = 0; j < indices.length; j++) sum[indices[j]] = 0;
    [this.residualBuf, this.sumBuf] = [this.sumBuf, this.residualBuf];
    this.wasm?.swap();
  }

  private sampleMagnitudes(g: Float32Array, residual: Float32Array): Float32Array {
    const s = this.sample;
    const n = this.length;
    if (s.length === n) {
      for (let i = 0; i < n; i++) s[i] = magnitude(g[i] + residual[i]);
    } else {
      for (let run = 0; run < RUNS; run++) {
        const from = Math.floor((run * (n - RUN)) / (RUNS - 1));
        for (let j = 0; j < RUN; j++) s[run * RUN + j] = magnitude(g[from + j] + residual[from + j]);
      }
    }
    return s.sort();
  }

  /** Room for about `target` candidates (more, for a sample that guessed low; at most length). */
  private reserve(target: number): void {
    const want = Math.min(this.length, Math.max(1024, Math.ceil(target * 1.5)));
    if (this.candidates.length >= want) return;
    this.candidates = new Int32Array(want);
    this.values = new Float32Array(want);
  }

  /** The k largest among the `found` candidates, ties to the lower index, in index order. */
  private pick(found: number, cand: Int32Array, vals: Float32Array, indices: Uint32Array, values: Float32Array): void {
    const k = this.k;
    if (k === 0) return;
    if (this.work.length < found) this.work = new Float32Array(Math.max(found, this.candidates.length));
    const work = this.work.subarray(0, found);
    for (let j = 0; j < found; j++) work[j] = magnitude(vals[j]);
    const kth = kthLargest(work, k);
    let above = 0;
    for (let j = 0; j < found; j++) if (magnitude(vals[j]) > kth) above++;
    let ties = k - above;
    let o = 0;
    for (let j = 0; j < found; j++) {
      const m = magnitude(vals[j]);
      if (m > kth || (m === kth && ties-- > 0)) {
        indices[o] = cand[j];
        values[o++] = vals[j];
      }
    }
  }
}

/** Candidates the first pass has room for: about what the sample aims at, with headroom. */
function firstCapacity(k: number, length: number): number {
  return Math.min(length, Math.max(1024, Math.ceil((HEADROOM * k + 64) * 1.5)));
}

/**
 * The WebAssembly pass and its memory: a block of g, the residual, the sum and the candidates.
 * g itself stays where the caller has it and is copied in a block at a time, zeroed behind.
 */
class WasmPass {
  residual: Float32Array;
  sum: Float32Array;
  readonly candidates: Int32Array;
  readonly values: Float32Array;
  private residualAt: number;
  private sumAt: number;
  private readonly block: Float32Array;

  private constructor(
    private readonly run: (...args: number[]) => number,
    buffer: ArrayBuffer,
    at: Record<'block' | 'residual' | 'sum' | 'candidates' | 'values', number>,
    readonly length: number,
    readonly capacity: number,
  ) {
    this.block = new Float32Array(buffer, at.block, Math.min(BLOCK, length));
    this.residualAt = at.residual;
    this.residual = new Float32Array(buffer, at.residual, length);
    this.sumAt = at.sum;
    this.sum = new Float32Array(buffer, at.sum, length);
    this.candidates = new Int32Array(buffer, at.candidates, capacity);
    this.values = new Float32Array(buffer, at.values, capacity);
  }

  static create(length: number, capacity: number): WasmPass | undefined {
    const { bytes, at } = layout({
      block: [Math.min(BLOCK, length), 4],
      residual: [length, 4],
      sum: [length, 4],
      candidates: [capacity, 4],
      values: [capacity, 4],
    });
    const kernel = instantiateKernel(WASM_BASE64, bytes);
    if (!kernel) return undefined;
    return new WasmPass(kernel.exports.addCollect, kernel.buffer, at, length, capacity);
  }

  /**
   * sum = g + residual, g zeroed, and the elements of sum that reach `threshold` as candidates;
   * returns how many, or -1 when more passed than there is room for (sum is complete either way).
   */
  addCollect(g: Float32Array, threshold: number): number {
    const { block, length, capacity } = this;
    const blockAt = block.byteOffset;
    const candidatesAt = this.candidates.byteOffset;
    const valuesAt = this.values.byteOffset;
    let count = 0;
    for (let from = 0; from < length; from += block.length) {
      const to = Math.min(length, from + block.length);
      block.set(g.subarray(from, to));
      g.fill(0, from, to);
      count = this.run(
        blockAt,
        this.residualAt + from * 4,
        this.sumAt + from * 4,
        to - from,
        threshold,
        candidatesAt,
        valuesAt,
        count,
        capacity,
        from,
      );
    }
    return count > capacity ? -1 : count;
  }

  swap(): void {
    [this.residual, this.sum] = [this.sum, this.residual];
    [this.residualAt, this.sumAt] = [this.sumAt, this.residualAt];
  }
}

/** |x|, with NaN as +Infinity so that it sorts above every number. */
function magnitude(x: number): number {
  const m = Math.abs(x);
  return m === m ? m : Infinity;
}

/** A magnitude about `target` of `length` elements reach, judged from the sorted sample. */
function thresholdFor(sorted: Float32Array, target: number, length: number): number {
  if (target >= length) return -Infinity;
  const q = sorted.length - Math.ceil((target * sorted.length) / length);
  return q <= 0 ? -Infinity : sorted[q];
}

/**
 * sum = g + residual, and the elements whose magnitude reaches `threshold` into `at` (index) and
 * `vals`; returns how many, or -1 when they did not fit (sum is complete either way).
 *
 * Four elements a turn with one test for all four: on 16 Mi floats (one core, about 0.2% passing)
 * this took about 30 ms where the one-at-a-time loop took about 55 ms; the loop is bound by
 * instructions, not memory (a 64 MiB memcpy takes 6 ms).
 */
function addAndCollect(
  g: Float32Array,
  residual: Float32Array,
  sum: Float32Array,
  threshold: number,
  at: Int32Array,
  vals: Float32Array,
): number {
  const cap = at.length;
  const len = Math.min(g.length, residual.length, sum.length);
  let n = 0;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    // Rounded as stored, so the threshold judges the same value the selection later compares.
    const x0 = Math.fround(g[i] + residual[i]);
    const x1 = Math.fround(g[i + 1] + residual[i + 1]);
    const x2 = Math.fround(g[i + 2] + residual[i + 2]);
    const x3 = Math.fround(g[i + 3] + residual[i + 3]);
    sum[i] = x0;
    sum[i + 1] = x1;
    sum[i + 2] = x2;
    sum[i + 3] = x3;
    // Written so that NaN passes: it must be sent, not hidden in the residual.
    if (!(
      Math.abs(x0) < threshold &&
      Math.abs(x1) < threshold &&
      Math.abs(x2) < threshold &&
      Math.abs(x3) < threshold
    )) {
      n = collectRange(sum, i, i + 4, threshold, at, vals, n, cap);
    }
  }
  for (; i < len; i++) sum[i] = g[i] + residual[i];
  n = collectRange(sum, len - (len % 4), len, threshold, at, vals, n, cap);
  return n > cap ? -1 : n;
}

/** Appends the elements of sum[from, to) that reach `threshold`; counts past `cap` without storing. */
function collectRange(
  sum: Float32Array,
  from: number,
  to: number,
  threshold: number,
  at: Int32Array,
  vals: Float32Array,
  n: number,
  cap: number,
): number {
  for (let j = from; j < to; j++) {
    const x = sum[j];
    if (!(Math.abs(x) < threshold)) {
      if (n < cap) {
        at[n] = j;
        vals[n] = x;
      }
      n++;
    }
  }
  return n;
}

function collect(sum: Float32Array, threshold: number, at: Int32Array, vals: Float32Array): number {
  let n = 0;
  const cap = at.length;
  for (let i = 0; i < sum.length; i++) {
    const x = sum[i];
    if (!(Math.abs(x) < threshold)) {
      if (n === cap) return -1;
      at[n] = i;
      vals[n++] = x;
    }
  }
  return n;
}
/** The k-th largest value of `keys` (1 ≤ k ≤ length), by quickselect; reorders keys. */
function kthLargest(keys: Float32Array, k: number): number {
  const want = keys.length - k;
  let lo = 0;
  let hi = keys.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    // Median of three, so sorted or constant runs do not degrade to quadratic time.
    const a = keys[lo];
    const b = keys[mid];
    const c = keys[hi];
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (keys[i] < pivot) i++;
      while (keys[j] > pivot) j--;
      if (i <= j) {
        const t = keys[i];
        keys[i] = keys[j];
        keys[j] = t;
        i++;
        j--;
      }
    }
    if (want <= j) hi = j;
    else if (want >= i) lo = i;
    else return keys[want];
  }
  return keys[want];
}
