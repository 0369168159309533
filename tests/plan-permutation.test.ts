import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { DataPlan, permutation, sliceIndices } from '@tfjs-ddp/common';

const planDir = fileURLToPath(new URL('../packages/common/src/plan/', import.meta.url));

/** Runs permutation(seed, epoch, size) in a fresh node process built from the same sources. */
async function permutationInAnotherProcess(seed: number, epoch: number, size: number): Promise<number[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-perm-'));
  try {
    const outfile = join(dir, 'perm.mjs');
    await build({
      stdin: {
        contents: `import { permutation } from './permutation.js';
          process.stdout.write(JSON.stringify(Array.from(permutation(${seed}, ${epoch}, ${size}))));`,
        resolveDir: planDir,
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile,
      logLevel: 'silent',
    });
    const { stdout } = await promisify(execFile)(process.execPath, [outfile]);
    return JSON.parse(stdout) as number[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('epoch permutation', () => {
  it('is a permutation of 0..size-1 that changes with the epoch and the seed', () => {
    const p = Array.from(permutation(1, 0, 1000));
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(permutation(1, 1, 1000))).not.toEqual(p);
    expect(Array.from(permutation(2, 0, 1000))).not.toEqual(p);
    expect(Array.from(permutation(1, 0, 0))).toEqual([]);
  });

  it('is computed once and shared for the same (seed, epoch, size)', () => {
    expect(permutation(6, 3, 500)).toBe(permutation(6, 3, 500));
  });

  it('comes out the same in another process, so workers recompute what the coordinator planned', async () => {
    const here = Array.from(permutation(12345, 7, 5000));
    expect(await permutationInAnotherProcess(12345, 7, 5000)).toEqual(here);
  });

  it('is pinned: these values must never change, or a resumed job would visit other samples', () => {
    expect(Array.from(permutation(42, 0, 10))).toEqual(PINNED_42_0_10);
    expect(Array.from(permutation(42, 1, 10))).toEqual(PINNED_42_1_10);
  });

  it('turns a (start, count) slice descriptor into the planned indices without copying', () => {
    const plan = new DataPlan({ size: 40, batchSize: 16, seed: 77 });
    plan.nextStep(3);
    const step = plan.nextStep(3);
    const slice = step.slices[1];
    const mine = sliceIndices(77, step.epoch, 40, slice);
    expect(Array.from(mine)).toEqual(Array.from(permutation(77, 0, 40)).slice(slice.start, slice.start + slice.count));
    expect(mine.buffer).toBe(permutation(77, 0, 40).buffer);
    expect(() => sliceIndices(77, 0, 40, { start: 35, count: 6 })).toThrow(
      /slice \{start: 35, count: 6\} does not fit in an epoch of 40 samples/,
    );
  });
});

const PINNED_42_0_10 = [3, 0, 7, 9, 2, 5, 6, 1, 4, 8];
const PINNED_42_1_10 = [4, 1, 5, 3, 6, 8, 2, 9, 7, 0];
