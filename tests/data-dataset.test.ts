import { describe, expect, it } from 'vitest';
import { createDataset, gatherBatch, splitValidation, subset, type Dataset } from '@tfjs-ddp/common';

/** Sample i has features [i, 100 + i] and label i % 3. */
function numbered(count: number): Dataset {
  const x = new Float32Array(count * 2);
  const y = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    x[2 * i] = i;
    x[2 * i + 1] = 100 + i;
    y[i] = i % 3;
  }
  return createDataset({ name: 'numbered', count, featureShape: [2], numClasses: 3, x, y });
}

describe('Dataset helpers', () => {
  it('gatherBatch copies the indexed samples to the front of reusable buffers and leaves the rest alone', () => {
    const ds = numbered(10);
    const xOut = new Float32Array(8).fill(-1);
    const yOut = new Float32Array(4).fill(-1);
    expect(gatherBatch(ds, Int32Array.of(7, 2, 9), xOut, yOut)).toBe(3);
    expect(Array.from(xOut)).toEqual([7, 107, 2, 102, 9, 109, -1, -1]);
    expect(Array.from(yOut)).toEqual([1, 2, 0, -1]);
    expect(gatherBatch(ds, [], xOut, yOut)).toBe(0);
  });

  it('gatherBatch copies multi-value labels whole', () => {
    const ds = createDataset({
      name: 'pairs',
      count: 2,
      featureShape: [1],
      labelShape: [2],
      x: Float32Array.of(1, 2),
      y: Float32Array.of(10, 11, 20, 21),
    });
    const yOut = new Float32Array(2);
    gatherBatch(ds, [1], new Float32Array(1), yOut);
    expect(Array.from(yOut)).toEqual([20, 21]);
  });

  it('gatherBatch refuses buffers that are too small and indices out of range', () => {
    const ds = numbered(4);
    expect(() => gatherBatch(ds, [0, 1], new Float32Array(3), new Float32Array(2))).toThrow(
      /buffers too small for 2 samples of numbered: need x 4 and y 2 floats, got 3 and 2/,
    );
    expect(() => gatherBatch(ds, [4], new Float32Array(2), new Float32Array(1))).toThrow(
      /sample index 4 is out of range for numbered, which has 4 samples/,
    );
  });

  it('createDataset rejects arrays that do not match the count and shape', () => {
    expect(() =>
      createDataset({ name: 'bad', count: 3, featureShape: [2], x: new Float32Array(5), y: new Float32Array(3) }),
    ).toThrow(/x has 5 values but 3 samples of shape \[2\] need 6/);
    expect(() =>
      createDataset({ name: 'bad', count: 3, featureShape: [2], x: new Float32Array(6), y: new Float32Array(2) }),
    ).toThrow(/y has 2 values but 3 labels need 3/);
  });

  it('subset copies samples in the given order', () => {
    const s = subset(numbered(5), [4, 0], 'two');
    expect(s.count).toBe(2);
    expect(s.name).toBe('two');
    expect(Array.from(s.x)).toEqual([4, 104, 0, 100]);
    expect(Array.from(s.y)).toEqual([1, 0]);
    expect(s.numClasses).toBe(3);
  });

  it('splitValidation partitions the samples, keeps their order and repeats for the same seed', () => {
    const ds = numbered(1000);
    const { train, validation } = splitValidation(ds, 0.1, 11);
    expect(validation.count).toBe(100);
    expect(train.count).toBe(900);
    const ids = (d: Dataset) => Array.from({ length: d.count }, (_, i) => d.x[2 * i]);
    const all = [...ids(train), ...ids(validation)].sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(ids(train)).toEqual([...ids(train)].sort((a, b) => a - b));
    expect(ids(validation)).not.toEqual(Array.from({ length: 100 }, (_, i) => i));

    const again = splitValidation(ds, 0.1, 11);
    expect(again.validation.x).toEqual(validation.x);
    expect(splitValidation(ds, 0.1, 12).validation.x).not.toEqual(validation.x);
  });

  it('splitValidation with fraction 0 keeps the whole dataset for training', () => {
    const ds = numbered(10);
    const { train, validation } = splitValidation(ds, 0, 1);
    expect(train).toBe(ds);
    expect(validation.count).toBe(0);
    expect(() => splitValidation(ds, 1, 1)).toThrow(/validation fraction must be in \[0, 1\), got 1/);
  });
});
