// Helpers for integration tests that run real jobs: temporary job files and output directories,
// a subset of the real Fashion-MNIST written as IDX files, and reading a saved model's weights.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { expect } from 'vitest';

/**
 * FASHION_DIR and fashionSubset(dir, split, count), the first `count` samples of a real
 * Fashion-MNIST split as raw IDX files in `dir`: the benchmarks' own writer.
 */
export { FASHION_DIR, writeFashionSubset as fashionSubset } from '../../bench/scaling/fashion.mjs';

export interface TempDir {
  path: string;
  remove(): Promise<void>;
}

export async function tempDir(prefix: string): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `tfjs-ddp-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export async function writeJob(dir: string, name: string, spec: Record<string, unknown>): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, stringify(spec));
  return file;
}

/** All weights of a saved model, in manifest order, as one array. */
export async function savedWeights(modelDir: string): Promise<Float32Array> {
  const bin = await readFile(join(modelDir, 'group1-shard1of1.bin'));
  return new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength));
}

/**
 * How far apart two parameter vectors are: ‖a−b‖/‖a‖, and whether every element passes
 * |a−b| ≤ atol + rtol·|a| (numpy's allclose). The absolute term is needed for parameters near zero:
 * sums taken in another order (per-rank partial sums) differ by a few float32 ulps of the larger
 * terms they were summed with, which is a large fraction of a value close to 0.
 */
export function compareParameters(
  a: Float32Array,
  b: Float32Array,
  rtol: number,
  atol: number,
): { normRelative: number; allClose: boolean } {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  let allClose = true;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += a[i] * a[i];
    if (Math.abs(d) > atol + rtol * Math.abs(a[i])) allClose = false;
  }
  return { normRelative: Math.sqrt(num / den), allClose };
}

/** The parameter hashes a generation's members reported are all present and equal (an absent one is ''). */
export function expectHashesAgree(hashes: string[], what = ''): void {
  expect(hashes.length, what).toBeGreaterThan(0);
  expect(new Set(hashes).size, `${what} ${hashes.join(', ')}`).toBe(1);
  expect(hashes[0], what).not.toBe('');
}
