import { describe, expect, it } from 'vitest';
import { DataPlan, splitEvenly, stepsPerEpoch, type PlannedStep } from '@tfjs-ddp/common';

/** Every sample index each rank is given in `steps`, as the ranks would recompute them. */
function samplesOf(plan: DataPlan, steps: PlannedStep[]): number[] {
  const seen: number[] = [];
  for (const s of steps) for (const slice of s.slices) seen.push(...plan.indices(s.epoch, slice));
  return seen;
}

function runEpoch(plan: DataPlan, worldSize: (step: number) => number): PlannedStep[] {
  const steps: PlannedStep[] = [];
  for (;;) {
    const s = plan.nextStep(worldSize(steps.length));
    steps.push(s);
    if (s.epochEnd) return steps;
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const sorted = (a: number[]) => [...a].sort((x, y) => x - y);

describe('data plan', () => {
  for (const [size, batch] of [
    [100, 10],
    [103, 10],
    [7, 16],
    [64, 5],
    [1, 1],
  ] as const) {
    for (const world of [1, 2, 3, 4, 5]) {
      it(`visits each of ${size} samples exactly once per epoch with batch ${batch} over ${world} rank(s)`, () => {
        const plan = new DataPlan({ size, batchSize: batch, seed: 9 });
        const steps = runEpoch(plan, () => world);
        expect(steps).toHaveLength(stepsPerEpoch(size, batch));
        expect(sorted(samplesOf(plan, steps))).toEqual(range(size));
        for (const s of steps) {
          // Every rank is in every step, slices tile the step's part of the permutation in rank order.
          expect(s.slices).toHaveLength(world);
          expect(s.globalCount).toBe(Math.min(batch, size - s.start));
          let at = s.start;
          for (const slice of s.slices) {
            expect(slice.start).toBe(at);
            at += slice.count;
          }
          expect(at).toBe(s.start + s.globalCount);
          const counts = s.slices.map((x) => x.count);
          expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
        }
        expect(steps.map((s) => s.step)).toEqual(range(steps.length));
        expect(steps.map((s) => s.epochEnd)).toEqual(steps.map((_, i) => i === steps.length - 1));
        expect(plan.cursor()).toEqual({ epoch: 1, position: 0 });
      });
    }
  }

  it('gives ranks without samples in a short last step an empty slice instead of padding', () => {
    const plan = new DataPlan({ size: 10, batchSize: 8, seed: 1 });
    plan.nextStep(4);
    const last = plan.nextStep(4);
    expect(last.globalCount).toBe(2);
    expect(last.slices).toEqual([
      { start: 8, count: 1 },
      { start: 9, count: 1 },
      { start: 10, count: 0 },
      { start: 10, count: 0 },
    ]);
    expect(plan.indices(last.epoch, last.slices[3])).toHaveLength(0);
  });

  it('splits a step as evenly as possible, the first ranks taking the remainder', () => {
    expect(splitEvenly(20, 10, 4).map((s) => s.count)).toEqual([3, 3, 2, 2]);
    expect(splitEvenly(0, 0, 2)).toEqual([
      { start: 0, count: 0 },
      { start: 0, count: 0 },
    ]);
    expect(() => splitEvenly(0, 4, 0)).toThrow(/world size must be an integer >= 1, got 0/);
  });

  it('uses a different order every epoch, and the same order for the same seed and epoch', () => {
    const plan = new DataPlan({ size: 50, batchSize: 50, seed: 3 });
    const e0 = samplesOf(plan, [plan.nextStep(1)]);
    const e1 = samplesOf(plan, [plan.nextStep(1)]);
    expect(sorted(e0)).toEqual(range(50));
    expect(sorted(e1)).toEqual(range(50));
    expect(e1).not.toEqual(e0);
    expect(e0).not.toEqual(range(50));

    const twin = new DataPlan({ size: 50, batchSize: 7, seed: 3 });
    expect(
      samplesOf(
        twin,
        runEpoch(twin, () => 3),
      ),
    ).toEqual(e0);
    const otherSeed = new DataPlan({ size: 50, batchSize: 50, seed: 4 });
    expect(samplesOf(otherSeed, [otherSeed.nextStep(1)])).not.toEqual(e0);
  });

  it('resumes from a checkpointed cursor mid-epoch with exactly the remaining samples', () => {
    const original = new DataPlan({ size: 97, batchSize: 8, seed: 5 });
    const before = [original.nextStep(3), original.nextStep(3), original.nextStep(3)];
    const cursor = JSON.parse(JSON.stringify(original.cursor()));
    expect(cursor).toEqual({ epoch: 0, position: 24 });

    const resumed = new DataPlan({ size: 97, batchSize: 8, seed: 5, cursor });
    const after = runEpoch(resumed, () => 2);
    expect(after[0].step).toBe(3);
    expect(after).toHaveLength(stepsPerEpoch(97, 8) - 3);
    const seen = [...samplesOf(original, before), ...samplesOf(resumed, after)];
    expect(sorted(seen)).toEqual(range(97));
    expect(samplesOf(resumed, after)).toEqual(
      samplesOf(
        original,
        runEpoch(original, () => 1),
      ),
    );
  });

  it('re-splits the rest of the epoch when the world size changes mid-epoch', () => {
    const plan = new DataPlan({ size: 101, batchSize: 12, seed: 8 });
    const worlds = [4, 4, 3, 3, 1, 5, 5, 2, 2];
    const steps = runEpoch(plan, (i) => worlds[i]);
    expect(steps.map((s) => s.slices.length)).toEqual(worlds);
    expect(sorted(samplesOf(plan, steps))).toEqual(range(101));
  });

  it('plans the same step again until it is advanced, so an aborted step is redone with the new world', () => {
    const plan = new DataPlan({ size: 30, batchSize: 10, seed: 2 });
    plan.nextStep(2);
    const attempt = plan.peek(3);
    const retry = plan.peek(2);
    expect(retry.start).toBe(attempt.start);
    expect(retry.slices).toEqual(splitEvenly(10, 10, 2));
    expect(plan.cursor()).toEqual({ epoch: 0, position: 10 });
    plan.advance();
    expect(plan.cursor()).toEqual({ epoch: 0, position: 20 });
  });

  it('treats a cursor at the end of an epoch as the start of the next', () => {
    const plan = new DataPlan({ size: 30, batchSize: 10, seed: 2, cursor: { epoch: 2, position: 30 } });
    expect(plan.cursor()).toEqual({ epoch: 3, position: 0 });
  });

  it('rejects options and cursors that do not fit the dataset', () => {
    expect(() => new DataPlan({ size: 0, batchSize: 4, seed: 1 })).toThrow(/invalid data plan options: size: /);
    expect(() => new DataPlan({ size: 10, batchSize: 4, seed: 1, cursor: { epoch: 0, position: 11 } })).toThrow(
      /cursor position 11 is beyond the 10 training samples/,
    );
    expect(() => new DataPlan({ size: 10, batchSize: 4, seed: 1 }).restore({ epoch: -1, position: 0 })).toThrow(
      /invalid data plan cursor: epoch: /,
    );
    expect(() => stepsPerEpoch(10, 0)).toThrow(/batchSize >= 1/);
    expect(stepsPerEpoch(60_000, 256)).toBe(235);
  });
});
