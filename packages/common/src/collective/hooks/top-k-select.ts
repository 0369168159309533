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
/** Candidates aimed for, as a multiple of k. */
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
    const made = kernel === 'js' ? undefined : WasmPass.create(length, capacityFor(firstTarget(k), length));
    if (kernel === 'wasm' && !made) {
      throw new Error('the WebAssembly top-k pass cannot run here: no WebAssembly SIMD, or not enough memory');
    }
    this.wasm = made?.pass;
    this.kernel = this.wasm ? 'wasm' : 'js';
    this.residualBuf = made?.residual ?? new Float32Array(length);
    this.sumBuf = made?.sum ?? new Float32Array(length);
    if (!this.wasm) this.reserve(firstTarget(k));
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
    let target = firstTarget(k);
    let threshold = thresholdFor(sorted, target, length);
    // The first pass forms the sum and collects what reaches the threshold, counting past its room.
    let cand = this.wasm ? this.wasm.candidates : this.candidates;
    let vals = this.wasm ? this.wasm.values : this.values;
    let found = this.wasm
      ? this.wasm.addCollect(g, this.residualBuf, this.sumBuf, threshold)
      : addAndCollect(g, this.residualBuf, this.sumBuf, threshold, cand, vals);
    if (!this.wasm) g.fill(0);
    // The sample misjudged: too few passed (lower the threshold), or more than there was room for
    // (make exactly that much room); collect again from the sum.
    while (found < k || found > cand.length) {
      if (found < k) {
        target *= 4;
        threshold = thresholdFor(sorted, target, length);
      }
      this.reserve(found > cand.length ? found : target);
      cand = this.candidates;
      vals = this.values;
      found = collectRange(this.sumBuf, 0, length, threshold, cand, vals, 0, cand.length);
    }
    this.pick(found, cand, vals, indices, values);
  }

  /** The step succeeded: the residual becomes the sum less what was sent (`indices`). */
  commit(indices: Uint32Array): void {
    const sum = this.sumBuf;
    for (let j = 0; j < indices.length; j++) sum[indices[j]] = 0;
    [this.residualBuf, this.sumBuf] = [this.sumBuf, this.residualBuf];
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

  /** Room for about `target` candidates in the JavaScript arrays. */
  private reserve(target: number): void {
    const want = capacityFor(target, this.length);
    if (this.candidates.length >= want) return;
    this.candidates = new Int32Array(want);
    this.values = new Float32Array(want);
  }

  /** The k largest among the `found` candidates, ties to the lower index, in index order. */
  private pick(found: number, cand: Int32Array, vals: Float32Array, indices: Uint32Array, values: Float32Array): void {
    const k = this.k;
    if (k === 0) return;
    if (this.work.length < found) this.work = new Float32Array(Math.max(found, cand.length));
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

/** Candidates aimed for first: about 2k, so a sample that underestimates rarely needs a second pass. */
function firstTarget(k: number): number {
  return HEADROOM * k + 64;
}

/** Room for about `target` candidates: half as many again, for a sample that guessed low; at most length. */
function capacityFor(target: number, length: number): number {
  return Math.min(length, Math.max(1024, Math.ceil(target * 1.5)));
}

/**
 * The WebAssembly pass: its memory holds a block of g, the residual, the sum and the candidates. g
 * itself stays where the caller has it and is copied in a block at a time, zeroed behind.
 */
class WasmPass {
  private constructor(
    private readonly run: (...args: number[]) => number,
    private readonly block: Float32Array,
    readonly candidates: Int32Array,
    readonly values: Float32Array,
  ) {}

  /** The pass, with the residual and sum views the selector keeps (in the pass's memory). */
  static create(
    length: number,
    capacity: number,
  ): { pass: WasmPass; residual: Float32Array; sum: Float32Array } | undefined {
    const { bytes, at } = layout({
      block: [Math.min(BLOCK, length), 4],
      residual: [length, 4],
      sum: [length, 4],
      candidates: [capacity, 4],
      values: [capacity, 4],
    });
    const kernel = instantiateKernel(WASM_BASE64, bytes);
    if (!kernel) return undefined;
    const b = kernel.buffer;
    const pass = new WasmPass(
      kernel.exports.addCollect,
      new Float32Array(b, at.block, Math.min(BLOCK, length)),
      new Int32Array(b, at.candidates, capacity),
      new Float32Array(b, at.values, capacity),
    );
    return { pass, residual: new Float32Array(b, at.residual, length), sum: new Float32Array(b, at.sum, length) };
  }

  /**
   * sum = g + residual (both views of this pass's memory), g zeroed, and the elements of sum that
   * reach `threshold` as candidates; returns how many passed, also beyond the room for them.
   */
  addCollect(g: Float32Array, residual: Float32Array, sum: Float32Array, threshold: number): number {
    const { block, candidates, values } = this;
    let count = 0;
    for (let from = 0; from < g.length; from += block.length) {
      const to = Math.min(g.length, from + block.length);
      block.set(g.subarray(from, to));
      g.fill(0, from, to);
      count = this.run(
        block.byteOffset,
        residual.byteOffset + from * 4,
        sum.byteOffset + from * 4,
        to - from,
        threshold,
        candidates.byteOffset,
        values.byteOffset,
        count,
        candidates.length,
        from,
      );
    }
    return count;
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
 * `vals`; returns how many passed, also beyond the room in `at` (sum is complete either way).
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
  return collectRange(sum, len - (len % 4), len, threshold, at, vals, n, cap);
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
