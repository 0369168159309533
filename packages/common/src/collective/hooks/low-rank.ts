// The arithmetic of PowerSGD on one row-major matrix M (rows × cols) held inside a flat gradient
// buffer: P = M·Q, Q = Mᵀ·P, orthonormal columns of P, and M ≈ P·Qᵀ. P (rows × r) and Q (cols × r)
// are row-major too, so each row of M meets contiguous rows of Q. Sums run in f64 in a fixed order
// and are stored in f32, so equal inputs give equal bits on every rank.
//
// The loops over M take the r columns of P and Q four at a time with four named accumulators, and
// the remaining r mod 4 one at a time: with a loop over t inside, one PowerSGD step on a 4096 × 4096
// matrix at r = 4 took about 500 ms instead of about 300 ms on one core (V8 keeps named locals in
// registers, a small accumulator array in memory).

/** The largest finite float32: a sum beyond it is stored as Infinity. */
const F32_MAX = 3.4028234663852886e38;

export interface MatrixView {
  /** Where the matrix starts in the flat buffers. */
  readonly offset: number;
  readonly rows: number;
  readonly cols: number;
}

/** m = g + residual over the matrix, and P = m·Q into p (rows × r at pAt). */
export function feedbackAndProject(
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
  const { offset, rows, cols } = v;
  const wide = r - (r % 4);
  for (let i = 0; i < rows; i++) {
    const row = offset + i * cols;
    for (let j = 0; j < cols; j++) m[row + j] = g[row + j] + residual[row + j];
    const pi = pAt + i * r;
    for (let t = 0; t < wide; t += 4) {
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      for (let j = 0, qj = qAt + t; j < cols; j++, qj += r) {
        const x = m[row + j];
        a0 += x * q[qj];
        a1 += x * q[qj + 1];
        a2 += x * q[qj + 2];
        a3 += x * q[qj + 3];
      }
      p[pi + t] = a0;
      p[pi + t + 1] = a1;
      p[pi + t + 2] = a2;
      p[pi + t + 3] = a3;
    }
    for (let t = wide; t < r; t++) {
      let a = 0;
      for (let j = 0, qj = qAt + t; j < cols; j++, qj += r) a += m[row + j] * q[qj];
      p[pi + t] = a;
    }
  }
}

/** Q = mᵀ·P into q (cols × r at qAt); `acc` holds at least cols·r doubles. */
export function transposeProject(
  v: MatrixView,
  m: Float32Array,
  p: Float32Array,
  pAt: number,
  r: number,
  q: Float32Array,
  qAt: number,
  acc: Float64Array,
): void {
  const { offset, rows, cols } = v;
  const wide = r - (r % 4);
  acc.fill(0, 0, cols * r);
  for (let i = 0; i < rows; i++) {
    const row = offset + i * cols;
    const pi = pAt + i * r;
    for (let t = 0; t < wide; t += 4) {
      const p0 = p[pi + t];
      const p1 = p[pi + t + 1];
      const p2 = p[pi + t + 2];
      const p3 = p[pi + t + 3];
      for (let j = 0, aj = t; j < cols; j++, aj += r) {
        const x = m[row + j];
        acc[aj] += x * p0;
        acc[aj + 1] += x * p1;
        acc[aj + 2] += x * p2;
        acc[aj + 3] += x * p3;
      }
    }
    for (let t = wide; t < r; t++) {
      const pt = p[pi + t];
      for (let j = 0, aj = t; j < cols; j++, aj += r) acc[aj] += m[row + j] * pt;
    }
  }
  for (let x = 0; x < cols * r; x++) q[qAt + x] = acc[x];
}

/**
 * out = P·Qᵀ (the reduced approximation) and, in place, m = m − P·Q_ownᵀ (the new residual: what
 * this rank's own factor did not carry). `acc` holds at least 2·cols doubles. Returns false when a
 * value of out is not finite as stored (float32).
 */
export function decompressWithFeedback(
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
  const { offset, rows, cols } = v;
  const wide = r - (r % 4);
  let finite = true;
  for (let i = 0; i < rows; i++) {
    const row = offset + i * cols;
    const pi = pAt + i * r;
    if (r === 4) {
      // The default rank in one pass, without the accumulators.
      const p0 = p[pi];
      const p1 = p[pi + 1];
      const p2 = p[pi + 2];
      const p3 = p[pi + 3];
      for (let j = 0, qj = qAt; j < cols; j++, qj += 4) {
        const x = p0 * q[qj] + p1 * q[qj + 1] + p2 * q[qj + 2] + p3 * q[qj + 3];
        out[row + j] = x;
        m[row + j] -= p0 * qOwn[qj] + p1 * qOwn[qj + 1] + p2 * qOwn[qj + 2] + p3 * qOwn[qj + 3];
        if (!(Math.abs(Math.fround(x)) <= F32_MAX)) finite = false;
      }
      continue;
    }
    // acc[j]: P·Qᵀ, acc[cols + j]: P·Q_ownᵀ, summed over t in a fixed order.
    acc.fill(0, 0, 2 * cols);
    for (let t = 0; t < wide; t += 4) {
      const p0 = p[pi + t];
      const p1 = p[pi + t + 1];
      const p2 = p[pi + t + 2];
      const p3 = p[pi + t + 3];
      for (let j = 0, qj = qAt + t; j < cols; j++, qj += r) {
        acc[j] += p0 * q[qj] + p1 * q[qj + 1] + p2 * q[qj + 2] + p3 * q[qj + 3];
        acc[cols + j] += p0 * qOwn[qj] + p1 * qOwn[qj + 1] + p2 * qOwn[qj + 2] + p3 * qOwn[qj + 3];
      }
    }
    for (let t = wide; t < r; t++) {
      const pt = p[pi + t];
      for (let j = 0, qj = qAt + t; j < cols; j++, qj += r) {
        acc[j] += pt * q[qj];
        acc[cols + j] += pt * qOwn[qj];
      }
    }
    for (let j = 0; j < cols; j++) {
      const x = acc[j];
      out[row + j] = x;
      m[row + j] -= acc[cols + j];
      if (!(Math.abs(Math.fround(x)) <= F32_MAX)) finite = false;
    }
  }
  return finite;
}

/**
 * Below this fraction of its length before projection, what is left of a column is rounding noise
 * (P had rank < r): it is set to zero rather than blown up into a direction that is not orthogonal.
 */
const DEPENDENT = 1e-4;

/**
 * Orthonormalises the r columns of p (rows × r at pAt) in place: Gram-Schmidt in f64, each column
 * projected twice (one pass leaves f32-level non-orthogonality). A column that depends on the
 * earlier ones becomes zero; a non-finite one stays as it is. `work` holds at least rows·r doubles.
 */
export function orthonormalizeColumns(p: Float32Array, pAt: number, rows: number, r: number, work: Float64Array): void {
  for (let x = 0; x < rows * r; x++) work[x] = p[pAt + x];
  for (let t = 0; t < r; t++) {
    const before = Math.sqrt(dot(work, rows, r, t, t));
    // NaN or Inf must reach the result, so the step is seen to be non-finite and skipped.
    if (!Number.isFinite(before)) continue;
    for (let pass = 0; pass < 2; pass++) {
      for (let s = 0; s < t; s++) {
        const d = dot(work, rows, r, s, t);
        if (d === 0) continue;
        for (let i = 0; i < rows; i++) work[i * r + t] -= d * work[i * r + s];
      }
    }
    const after = Math.sqrt(dot(work, rows, r, t, t));
    const scale = after > DEPENDENT * before && after > 0 ? 1 / after : 0;
    for (let i = 0; i < rows; i++) work[i * r + t] *= scale;
  }
  for (let x = 0; x < rows * r; x++) p[pAt + x] = work[x];
}

function dot(w: Float64Array, rows: number, r: number, a: number, b: number): number {
  let s = 0;
  for (let i = 0; i < rows; i++) s += w[i * r + a] * w[i * r + b];
  return s;
}
