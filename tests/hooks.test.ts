// The gradient communication hooks against an in-process collective: the compression spec, top-k's
// exact selection and error feedback, PowerSGD's exactness at low rank and its error feedback, and
// that a failed or non-finite step leaves every hook's state as it was.
import { describe, expect, it } from 'vitest';
import {
  commHookSpecSchema,
  createCommHook,
  decodeHookState,
  powerSgdLayout,
  validateJobSpec,
  type CommHook,
  type CommHookSpecInput,
  JobSpecError,
} from '@tfjs-ddp/common';
import { readFileSync } from 'node:fs';
import { TopKSelector, type TopKKernel } from '../packages/common/src/collective/hooks/top-k-select.js';
import { memoryGroup, type MemoryGroup } from './support/memory-collective.js';
import { expectSameBits, randomBuffers, rng } from './support/collective-ranks.js';

function hooksFor(spec: CommHookSpecInput, shapes: number[][], worldSize: number): CommHook[] {
  return Array.from({ length: worldSize }, () => createCommHook(spec, shapes, { seed: 5 }));
}

let nextOp = 0;
/** One step on every rank: each reduces a copy of its gradient; returns the reduced copies. */
async function step(hooks: CommHook[], group: MemoryGroup, grads: Float32Array[]): Promise<Float32Array[]> {
  const bufs = grads.map((g) => Float32Array.from(g));
  const op = (nextOp += 16);
  await Promise.all(hooks.map((h, r) => h.reduce(bufs[r], group.collectives[r], { op })));
  return bufs;
}

const residualOf = (h: CommHook) => decodeHookState(h.state(), h.type, h.length).residual;

describe('the compression spec', () => {
  it('takes a hook by name with its default settings', () => {
    expect(commHookSpecSchema.parse('none')).toEqual({ type: 'none' });
    expect(commHookSpecSchema.parse('topk')).toEqual({ type: 'topk', ratio: 0.01 });
    expect(commHookSpecSchema.parse('powersgd')).toEqual({ type: 'powersgd', rank: 4, warmStart: true });
    expect(commHookSpecSchema.parse({ type: 'powersgd', rank: 2 })).toEqual({
      type: 'powersgd',
      rank: 2,
      warmStart: true,
    });
  });

  it('refuses an unknown hook naming the known ones, and a ratio outside (0, 1]', () => {
    const unknown = commHookSpecSchema.safeParse('zip');
    expect(unknown.success).toBe(false);
    expect(unknown.error?.issues[0].message).toContain('none, f16, bf16, topk, powersgd');
    for (const ratio of [0, 1.5]) expect(commHookSpecSchema.safeParse({ type: 'topk', ratio }).success).toBe(false);
    expect(() => createCommHook({ type: 'powersgd', rank: 0 }, [[4, 4]])).toThrow(/invalid compression: rank/);
  });

  const job = (allreduce: Record<string, unknown>) => ({
    name: 'tiny',
    model: { zoo: 'linear' },
    data: { train: { type: 'synthetic-linear', n: 10, w: [1], b: 0, noise: 0, seed: 1 } },
    optimizer: { type: 'sgd', learningRate: 0.1 },
    loss: 'mse',
    batchSize: 2,
    epochs: 1,
    allreduce,
  });

  it('is part of the job spec, none by default', () => {
    expect(validateJobSpec(job({}), 'x.yaml').allreduce.compression).toEqual({ type: 'none' });
    expect(validateJobSpec(job({ compression: 'topk' }), 'x.yaml').allreduce.compression.type).toBe('topk');
    expect(validateJobSpec(job({ dtype: 'bf16', compression: 'none' }), 'x.yaml').allreduce.dtype).toBe('bf16');
  });

  it('refuses a wire dtype next to a hook that sets its own', () => {
    expect(() => validateJobSpec(job({ dtype: 'f16', compression: 'topk' }), 'x.yaml')).toThrow(JobSpecError);
    expect(() => validateJobSpec(job({ dtype: 'f16', compression: 'topk' }), 'x.yaml')).toThrow(
      /compression topk with dtype f16.*leave dtype at f32/,
    );
    expect(() => createCommHook('powersgd', [[4, 4]], { dtype: 'bf16' })).toThrow(/leave dtype at f32/);
  });
});

/** Indices of the k largest magnitudes (NaN largest, ties to the lower index), ascending: by full sort. */
function referenceTopK(values: Float32Array, k: number): number[] {
  const mag = (x: number) => (Number.isNaN(x) ? Infinity : Math.abs(x));
  const order = [...values.keys()].sort((a, b) => mag(values[b]) - mag(values[a]) || a - b);
  return order.slice(0, k).sort((a, b) => a - b);
}

/** The positions the selector samples its threshold from: 256 runs of 64, spread evenly. */
function sampled(length: number): Set<number> {
  const at = new Set<number>();
  for (let run = 0; run < 256; run++) {
    const from = Math.floor((run * (length - 64)) / 255);
    for (let j = 0; j < 64; j++) at.add(from + j);
  }
  return at;
}

describe('top-k selection', () => {
  const next = rng(11);
  const sampledAt400k = sampled(400_000);
  const sampledAt300k = sampled(300_000);
  const cases: [string, number, number, (i: number) => number][] = [
    ['random magnitudes', 5_000, 50, () => (next() - 0.5) * 2 ** (next() * 20 - 10)],
    ['all equal: ties go to the lower index', 3_000, 30, () => 1],
    ['mostly zeros', 4_000, 100, (i) => (i % 97 === 0 ? i : 0)],
    ['NaN and Inf count as largest', 2_000, 5, (i) => (i === 7 ? NaN : i === 1500 ? -Infinity : next())],
    ['k equal to the length', 100, 100, () => next() - 0.5],
    // Above the sample size, with large values exactly where the sample looks: the first threshold
    // is too high, fewer than k pass, and the selection lowers it until k do.
    ['a sample that misjudges', 400_000, 100_000, (i) => (sampledAt400k.has(i) ? 1000 : next())],
    // The sample sees only zeros, so every element passes its threshold: more than there is room for.
    ['a sample that sees only zeros', 300_000, 3_000, (i) => (sampledAt300k.has(i) ? 0 : next())],
  ];

  const kernels: TopKKernel[] = ['js', 'wasm'];
  it.each(kernels.flatMap((kernel) => cases.map((c) => [kernel, ...c] as const)))(
    '%s pass: %s',
    (kernel, _name, length, k, value) => {
      const g = Float32Array.from({ length }, (_, i) => value(i));
      const selector = new TopKSelector(length, k, kernel);
      expect(selector.kernel).toBe(kernel);
      selector.residual.set(Float32Array.from({ length }, (_, i) => (i % 3 === 0 ? 0.25 : 0)));
      const expectedSum = g.map((x, i) => x + selector.residual[i]);
      const indices = new Uint32Array(k);
      const values = new Float32Array(k);
      selector.select(g, indices, values);
      expect(selector.sum).toEqual(expectedSum);
      expect(g.every((x) => x === 0)).toBe(true);
      expect([...indices]).toEqual(referenceTopK(expectedSum, k));
      expect(values).toEqual(Float32Array.from(indices, (i) => expectedSum[i]));
      selector.commit(indices);
      const sent = new Set(indices);
      expect(selector.residual).toEqual(expectedSum.map((x, i) => (sent.has(i) ? 0 : x)));
    },
  );

  it('gives the same bits from the WebAssembly and the JavaScript pass, step after step', () => {
    // Across block boundaries (16,384 floats a block) and with a tail that is not a multiple of 8.
    const length = 3 * 16_384 + 13;
    const k = 500;
    const next = rng(12);
    const selectors = kernels.map((kernel) => new TopKSelector(length, k, kernel));
    for (let t = 0; t < 5; t++) {
      const g = Float32Array.from({ length }, () => (next() - 0.5) * 2 ** (next() * 30 - 15));
      if (t === 3) g[length - 1] = NaN;
      const out = selectors.map((s) => {
        const indices = new Uint32Array(k);
        const values = new Float32Array(k);
        s.select(Float32Array.from(g), indices, values);
        s.commit(indices);
        return { indices, values, residual: Float32Array.from(s.residual) };
      });
      expect(out[1].indices).toEqual(out[0].indices);
      expectSameBits(out[1].values, out[0].values, `values of step ${t}`);
      expectSameBits(out[1].residual, out[0].residual, `residual after step ${t}`);
      if (t === 3) expect(out[0].indices[k - 1]).toBe(length - 1);
    }
  });
});

describe('the WebAssembly kernels', () => {
  it('are the committed build of their .wat source (npm run build:wasm)', async () => {
    const { assemble, kernelSources, moduleText } = await import('../scripts/build-wasm.mjs');
    const sources = kernelSources();
    expect(sources.length).toBeGreaterThan(0);
    for (const { wat, ts } of sources) {
      expect(readFileSync(ts, 'utf8'), `${ts} is stale: run npm run build:wasm`).toBe(
        moduleText(wat, await assemble(wat)),
      );
    }
  });
});

describe('top-k with error feedback', () => {
  const length = 10_007;
  const shapes = [[length]];

  it('sends the k largest of gradient + residual and keeps the rest: residual + sent equals the input', async () => {
    const group = memoryGroup(1);
    const [hook] = hooksFor({ type: 'topk', ratio: 0.01 }, shapes, 1);
    const [g] = randomBuffers(1, length, 3);
    const [sent] = await step([hook], group, [g]);
    const residual = residualOf(hook);
    expect(sent.filter((x) => x !== 0).length).toBe(Math.ceil(0.01 * length));
    for (let i = 0; i < length; i++) {
      expect(sent[i] === 0 || residual[i] === 0, `element ${i} both sent and kept`).toBe(true);
    }
    expectSameBits(
      sent.map((x, i) => x + residual[i]),
      g,
      'residual + sent',
    );
    const smallestSent = Math.min(...sent.filter((x) => x !== 0).map(Math.abs));
    expect(Math.max(...residual.map(Math.abs))).toBeLessThanOrEqual(smallestSent);

    // The next step sends from gradient + residual.
    const [g2] = randomBuffers(1, length, 4);
    const [sent2] = await step([hook], group, [g2]);
    const residual2 = residualOf(hook);
    expectSameBits(
      sent2.map((x, i) => x + residual2[i]),
      g2.map((x, i) => x + residual[i]),
      'step 2',
    );
  });

  it('gives every rank the rank-order fp32 sum of what each rank sent, bit for bit', async () => {
    const group = memoryGroup(3);
    const hooks = hooksFor('topk', shapes, 3);
    const grads = randomBuffers(3, length, 5);
    const out = await step(hooks, group, grads);
    const sent = grads.map((g, r) => {
      const residual = residualOf(hooks[r]);
      return g.map((x, i) => x - residual[i]);
    });
    const expected = new Float32Array(length);
    for (const s of sent) for (let i = 0; i < length; i++) expected[i] += s[i];
    for (const [r, o] of out.entries()) expectSameBits(o, expected, `rank ${r}`);
    expect(group.counts).toEqual({ allReduce: 0, reduceScatter: 0, allGather: 1 });
  });

  it('delays what it does not send instead of losing it', async () => {
    const group = memoryGroup(2);
    const hooks = hooksFor({ type: 'topk', ratio: 0.05 }, [[200]], 2);
    const next = rng(6);
    // Magnitudes of one order, so that every element's turn comes within the run.
    const grads = [0, 1].map(() => Float32Array.from({ length: 200 }, () => 0.5 + next()));
    const applied = new Float64Array(200);
    const steps = 100;
    for (let t = 0; t < steps; t++) {
      const [o] = await step(hooks, group, grads);
      for (let i = 0; i < 200; i++) applied[i] += o[i];
    }
    // Applied so far plus what the ranks still hold is what they were given, up to fp32 rounding.
    const [held0, held1] = hooks.map(residualOf);
    for (let i = 0; i < 200; i++) {
      const given = steps * (grads[0][i] + grads[1][i]);
      const held = held0[i] + held1[i];
      expect(Math.abs(applied[i] + held - given)).toBeLessThanOrEqual(1e-4 * (Math.abs(given) + 1));
      expect(applied[i], `element ${i} was never sent`).not.toBe(0);
    }
  });

  it('leaves its state as it was when the step fails or the result is not finite', async () => {
    const group = memoryGroup(2);
    const calm = memoryGroup(2);
    const hooks = hooksFor('topk', shapes, 2);
    const twins = hooksFor('topk', shapes, 2);
    const [a, b, c] = [1, 2, 3].map((s) => randomBuffers(2, length, s));
    await step(hooks, group, a);
    await step(twins, calm, a);
    const before = hooks.map((h) => h.state());
    group.failNext();
    await expect(step(hooks, group, b)).rejects.toThrow(/aborted/);
    const poisoned = b.map((g) => Float32Array.from(g));
    poisoned[1][42] = NaN;
    const out = await step(hooks, group, poisoned);
    expect(Number.isNaN(out[0][42])).toBe(true);
    hooks.forEach((h, r) => expect(Buffer.from(h.state()).equals(before[r])).toBe(true));
    // The redone step matches a run that never failed.
    const redone = await step(hooks, group, b);
    const undisturbed = await step(twins, calm, b);
    expectSameBits(redone[0], undisturbed[0], 'redone step');
    expectSameBits((await step(hooks, group, c))[1], (await step(twins, calm, c))[1], 'the step after');
  });

  it('restores its residual from a state as told: take, keep or clear', async () => {
    const group = memoryGroup(1);
    const [hook] = hooksFor('topk', shapes, 1);
    await step([hook], group, randomBuffers(1, length, 8));
    const saved = hook.state();
    const residual = residualOf(hook);
    expect(residual.some((x) => x !== 0)).toBe(true);

    const [fresh] = hooksFor('topk', shapes, 1);
    fresh.load(saved, 'take');
    expectSameBits(residualOf(fresh), residual, 'take');
    await step([fresh], group, randomBuffers(1, length, 9));
    const own = residualOf(fresh);
    fresh.load(saved, 'keep');
    expectSameBits(residualOf(fresh), own, 'keep');
    fresh.load(saved, 'clear');
    expect(residualOf(fresh).every((x) => x === 0)).toBe(true);

    expect(() => createCommHook('topk', [[length + 1]]).load(saved, 'take')).toThrow(
      /expected the state of a topk hook over 10008 floats, got one of a topk hook over 10007/,
    );
    expect(() => createCommHook('none', shapes).load(saved, 'take')).toThrow(/keeps no state/);
  });
});

/** A rows × cols matrix of rank `rank` (a product of random factors), row-major. */
function lowRank(rows: number, cols: number, rank: number, seed: number): Float32Array {
  const next = rng(seed);
  const a = Array.from({ length: rows * rank }, () => next() - 0.5);
  const b = Array.from({ length: cols * rank }, () => next() - 0.5);
  const m = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let t = 0; t < rank; t++) s += a[i * rank + t] * b[j * rank + t];
      m[i * cols + j] = s;
    }
  }
  return m;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  return maxAbs(a.map((x, i) => x - b[i]));
}

describe('PowerSGD', () => {
  it('compresses matrices and conv kernels whose factors are smaller, and sends the rest as they are', () => {
    const layout = powerSgdLayout([[784, 128], [128], [128, 10], [10], [3, 3, 8, 16], [16], [2, 2]], 4);
    expect(layout.matrices.map((m) => [m.offset, m.rows, m.cols])).toEqual([
      [0, 784, 128],
      [784 * 128 + 128, 128, 10],
      [784 * 128 + 128 + 1280 + 10, 72, 16],
    ]);
    const convEnd = 784 * 128 + 128 + 1280 + 10 + 1152;
    expect(layout.plain).toEqual([
      { offset: 784 * 128, length: 128 },
      { offset: 784 * 128 + 128 + 1280, length: 10 },
      { offset: convEnd, length: 16 + 4 },
    ]);
    expect(layout.pLength).toBe((784 + 128 + 72) * 4 + 128 + 10 + 20);
    expect(layout.qLength).toBe((128 + 10 + 16) * 4);
  });

  const shapes = [[64, 48], [48], [3, 3, 8, 16]];
  const length = 64 * 48 + 48 + 3 * 3 * 8 * 16;
  /** A gradient whose matrices have rank `rank` and whose vector is random. */
  function gradient(rank: number, seed: number): Float32Array {
    const g = new Float32Array(length);
    g.set(lowRank(64, 48, rank, seed));
    g.set(randomBuffers(1, 48, seed)[0], 64 * 48);
    g.set(lowRank(72, 16, rank, seed + 1), 64 * 48 + 48);
    return g;
  }

  it.each([1, 2, 4])('is exact on matrices of rank %i ≤ r = 4, with nothing left in the residual', async (rank) => {
    const group = memoryGroup(1);
    const [hook] = hooksFor({ type: 'powersgd', rank: 4 }, shapes, 1);
    const g = gradient(rank, 20 + rank);
    const [out] = await step([hook], group, [g]);
    expect(maxDiff(out, g)).toBeLessThan(1e-5 * maxAbs(g));
    expect(maxAbs(residualOf(hook))).toBeLessThan(1e-5 * maxAbs(g));
    expectSameBits(out.subarray(64 * 48, 64 * 48 + 48), g.subarray(64 * 48, 64 * 48 + 48), 'the vector');
  });

  it('is exact when the sum over ranks has rank ≤ r, and bit-identical on every rank', async () => {
    const group = memoryGroup(3);
    const hooks = hooksFor({ type: 'powersgd', rank: 4 }, shapes, 3);
    // Each rank's matrices have rank 1, so their sum has rank ≤ 3.
    const grads = [0, 1, 2].map((r) => gradient(1, 40 + 2 * r));
    const out = await step(hooks, group, grads);
    const sum = new Float32Array(length);
    for (const g of grads) for (let i = 0; i < length; i++) sum[i] += g[i];
    expect(maxDiff(out[0], sum)).toBeLessThan(1e-5 * maxAbs(sum));
    for (const r of [1, 2]) expectSameBits(out[r], out[0], `rank ${r}`);
    expect(group.counts).toEqual({ allReduce: 2, reduceScatter: 0, allGather: 0 });
  });

  it('keeps what the approximation missed: result + new residuals = gradients + old residuals', async () => {
    const group = memoryGroup(3);
    const hooks = hooksFor({ type: 'powersgd', rank: 2 }, shapes, 3);
    const scale = maxAbs(randomBuffers(3, length, 50).flatMap((b) => [...b]));
    for (let t = 0; t < 3; t++) {
      const grads = randomBuffers(3, length, 50 + t);
      const old = hooks.map(residualOf);
      const out = await step(hooks, group, grads);
      const fresh = hooks.map(residualOf);
      for (let i = 0; i < length; i++) {
        let given = 0;
        let held = 0;
        for (let r = 0; r < 3; r++) {
          given += grads[r][i] + old[r][i];
          held += fresh[r][i];
        }
        expect(Math.abs(out[0][i] + held - given)).toBeLessThan(1e-4 * scale);
      }
      for (const r of [1, 2]) expectSameBits(out[r], out[0], `step ${t} rank ${r}`);
      // Full-rank gradients at r = 2: the approximation really leaves something behind.
      expect(maxAbs(fresh[0])).toBeGreaterThan(1e-3 * scale);
    }
  });

  it('warm-starts from the Q its state carries: a restored hook continues exactly like the original', async () => {
    const group = memoryGroup(1);
    const [hook] = hooksFor('powersgd', shapes, 1);
    for (let t = 0; t < 3; t++) await step([hook], group, randomBuffers(1, length, 60 + t));
    const [copy] = hooksFor('powersgd', shapes, 1);
    copy.load(hook.state(), 'take');
    const g = randomBuffers(1, length, 70);
    expectSameBits((await step([copy], group, g))[0], (await step([hook], group, g))[0], 'next step');

    // A fresh hook (initial Q) gives another approximation: the warm Q is what made them equal.
    const [cold] = hooksFor('powersgd', shapes, 1);
    cold.load(hook.state(), 'keep');
    const [other] = hooksFor('powersgd', shapes, 1);
    const g2 = randomBuffers(1, length, 71);
    expect(maxDiff((await step([other], group, g2))[0], (await step([cold], group, g2))[0])).toBeGreaterThan(0);
  });

  it.each([4, 3, 8])(
    'gives the same bits with the WebAssembly and the JavaScript passes at r = %i, step after step',
    async (r) => {
      // Odd widths, so the kernels' column tails run; a conv kernel; a vector sent as it is.
      const odd = [[301, 77], [77], [3, 3, 5, 13], [999, 6]];
      const len = 301 * 77 + 77 + 3 * 3 * 5 * 13 + 999 * 6;
      const kernels = ['js', 'wasm'] as const;
      const runs = kernels.map((kernel) => {
        const hooks = [0, 1].map(() => createCommHook({ type: 'powersgd', rank: r }, odd, { seed: 5, kernel }));
        expect((hooks[0] as CommHook & { kernel: string }).kernel).toBe(kernel);
        return { hooks, group: memoryGroup(2) };
      });
      for (let t = 0; t < 4; t++) {
        const grads = randomBuffers(2, len, 90 + t);
        if (t === 2) grads[1][500] = Infinity; // a step whose result is not finite: skipped alike
        const [js, wasm] = await Promise.all(runs.map(({ hooks, group }) => step(hooks, group, grads)));
        for (const rank of [0, 1]) {
          expectSameBits(wasm[rank], js[rank], `step ${t} rank ${rank}`);
          const states = runs.map(({ hooks }) => Buffer.from(hooks[rank].state()));
          expect(states[1].equals(states[0]), `state after step ${t} rank ${rank}`).toBe(true);
        }
        if (t === 2) expect(js[0].some((x) => !Number.isFinite(x))).toBe(true);
      }
    },
  );

  it('leaves its state as it was when an all-reduce fails or the gradient is not finite', async () => {
    const group = memoryGroup(2);
    const hooks = hooksFor('powersgd', shapes, 2);
    await step(hooks, group, randomBuffers(2, length, 80));
    const before = hooks.map((h) => h.state());
    group.failNext();
    await expect(step(hooks, group, randomBuffers(2, length, 81))).rejects.toThrow(/aborted/);
    const poisoned = randomBuffers(2, length, 82);
    poisoned[0][5] = Infinity;
    const out = await step(hooks, group, poisoned);
    expect(out[1].some((x) => !Number.isFinite(x))).toBe(true);
    hooks.forEach((h, r) => expect(Buffer.from(h.state()).equals(before[r])).toBe(true));
  });
});
