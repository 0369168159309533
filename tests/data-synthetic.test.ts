import { describe, expect, it } from 'vitest';
import { createPrng, loadSource, type Dataset } from '@tfjs-ddp/common';

/** Fraction of samples whose label the noiseless rule x0 + x1 > 0 predicts. */
function agreement(ds: Dataset): number {
  let same = 0;
  for (let i = 0; i < ds.count; i++) if ((ds.x[2 * i] + ds.x[2 * i + 1] > 0 ? 1 : 0) === ds.y[i]) same++;
  return same / ds.count;
}

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;

describe('synthetic sources', () => {
  it('synthetic-linear gives the same samples for the same seed and different ones for another', async () => {
    const a = await loadSource({ type: 'synthetic-linear', n: 200, w: [2, -1], b: 0.5, noise: 0.1, seed: 7 });
    const b = await loadSource({
      type: 'synthetic-linear',
      n: 200,
      w: [2, -1],
      b: 0.5,
      noise: 0.1,
      seed: 7,
      name: 'x',
    });
    const c = await loadSource({ type: 'synthetic-linear', n: 200, w: [2, -1], b: 0.5, noise: 0.1, seed: 8 });
    expect(a).not.toBe(b);
    expect(b.x).toEqual(a.x);
    expect(b.y).toEqual(a.y);
    expect(c.x).not.toEqual(a.x);
    expect(a.featureShape).toEqual([2]);
    expect(a.numClasses).toBeUndefined();
  });

  it('synthetic-linear without noise is exactly the linear function of its features', async () => {
    const ds = await loadSource({ type: 'synthetic-linear', n: 50, w: [3, 0.5, -2], b: 1, seed: 1 });
    for (let i = 0; i < ds.count; i++) {
      const [x0, x1, x2] = ds.x.subarray(3 * i, 3 * i + 3);
      expect(ds.y[i]).toBeCloseTo(3 * x0 + 0.5 * x1 - 2 * x2 + 1, 5);
    }
  });

  it('synthetic-binary without noise is split by the line x0 + x1 = 0, with balanced labels', async () => {
    const spec = { type: 'synthetic-binary' as const, n: 2000, seed: 3 };
    const ds: Dataset = await loadSource(spec);
    expect(ds.featureShape).toEqual([2]);
    expect(ds.numClasses).toBe(2);
    const ones = Array.from(ds.y).filter((l) => l === 1).length;
    expect(ones).toBeGreaterThan(900);
    expect(ones).toBeLessThan(1100);
    expect(agreement(ds)).toBe(1);
    const again = await loadSource({ ...spec, name: 'again' });
    expect(again.x).toEqual(ds.x);
    expect(again.y).toEqual(ds.y);
  });

  it('synthetic-binary noise makes the classes overlap near the line', async () => {
    const noisy = await loadSource({ type: 'synthetic-binary', n: 2000, seed: 3, noise: 0.5 });
    // A label flips with probability arctan(0.5) / π ≈ 0.15.
    expect(agreement(noisy)).toBeGreaterThan(0.8);
    expect(agreement(noisy)).toBeLessThan(0.9);
  });

  it('the seeded generator is pinned: these values must never change, or resumed jobs would replay other data', () => {
    const rng = createPrng(42);
    expect([rng.uint32(), rng.uint32(), rng.uint32()]).toEqual(PINNED_42);
    const normals = Array.from({ length: 20_000 }, createPrng(1, 2).normal);
    expect(mean(normals)).toBeCloseTo(0, 1);
    expect(mean(normals.map((v) => v * v))).toBeCloseTo(1, 1);
  });

  it('draws unbiased integers below n', () => {
    const rng = createPrng(5);
    const counts = new Array<number>(3).fill(0);
    for (let i = 0; i < 30_000; i++) counts[rng.int(3)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(400);
    expect(() => rng.int(0)).toThrow(/needs an integer n in 1..2\^32/);
    expect(() => createPrng(1.5)).toThrow(/a PRNG seed must be a safe integer, got 1.5/);
  });
});

const PINNED_42 = [2492287217, 4264710108, 629846462];
