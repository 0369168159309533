// Finds the k largest magnitudes of a gradient in about one pass. A sample of the magnitudes (runs
// spread over the buffer) gives a threshold that about 2k elements pass; the pass that forms g + residual also
// collects those candidates, and an exact selection among the candidates picks the k. When the
// sample misjudged and fewer than k pass, the threshold is lowered and the candidates collected
// again (it ends at "every element"), so the result is always the exact top k.

/**
 * The threshold's sample: RUNS runs of RUN consecutive elements spread evenly over the buffer.
 * Runs read whole cache lines; 65536 scattered elements of a 64 MiB buffer took about 6 ms on one
 * core, mostly cache misses.
 */
const RUN = 64;
const RUNS = 256;
/** Candidates aimed for, as a multiple of k, so a sample that underestimates rarely needs a second pass. */
const HEADROOM = 2;

export class TopKSelector {
  private readonly sample: Float32Array;
  /** Candidates in index order: their indices and their values (g + residual). */
  private candidates = new Int32Array(0);
  private values = new Float32Array(0);
  private work = new Float32Array(0);

  constructor(
    readonly length: number,
    readonly k: number,
  ) {
    if (!Number.isSafeInteger(k) || k < 0 || k > length) {
      throw new RangeError(`expected k in [0, ${length}], got ${k}`);
    }
    this.sample = new Float32Array(Math.min(length, RUN * RUNS));
  }

  /**
   * Writes g + residual into `sum`, and the indices of its k largest magnitudes and their values
   * into `indices` and `values`, in ascending index order. NaN and ±Inf count as largest (so they are
   * sent and the step is seen to be non-finite); among equal magnitudes the lower index wins.
   */
  select(g: Float32Array, residual: Float32Array, sum: Float32Array, indices: Uint32Array, values: Float32Array): void {
    const { length, k } = this;
    if (g.length !== length || residual.length !== length || sum.length !== length) {
      throw new RangeError(
        `expected buffers of ${length} floats, got ${g.length}, ${residual.length} and ${sum.length}`,
      );
    }
    if (indices.length !== k || values.length !== k) {
      throw new RangeError(`expected room for ${k} indices and values, got ${indices.length} and ${values.length}`);
    }
    const sorted = this.sampleMagnitudes(g, residual);
    let target = HEADROOM * k + 64;
    let threshold = thresholdFor(sorted, target, length);
    this.reserve(target);
    let found = addAndCollect(g, residual, sum, threshold, this.candidates, this.values);
    while (found < k) {
      if (found < 0) this.reserve(this.candidates.length * 2);
      else {
        target *= 4;
        threshold = thresholdFor(sorted, target, length);
        this.reserve(target);
      }
      found = collect(sum, threshold, this.candidates, this.values);
    }
    this.pick(found, indices, values);
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
    this.work = new Float32Array(want);
  }

  /** The k largest among the `found` candidates, ties to the lower index, in index order. */
  private pick(found: number, indices: Uint32Array, values: Float32Array): void {
    const k = this.k;
    if (k === 0) return;
    const cand = this.candidates;
    const vals = this.values;
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
