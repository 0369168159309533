// The gradient kernels registered for the wasm backend must agree with the cpu backend's reference
// implementations, through the kernel itself and through the gradients that use it.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerWasmGradientKernels, selectBackend, silentLogger } from '@tfjs-ddp/common';

/** Runs f on a backend and returns its values, leaving no tensors behind. */
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor): Promise<{ shape: number[]; values: Float32Array }> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const out = tf.tidy(f);
  const result = { shape: out.shape, values: Float32Array.from(out.dataSync()) };
  out.dispose();
  expect(tf.memory().numTensors).toBe(before);
  return result;
}

function expectClose(actual: Float32Array, expected: Float32Array, tolerance = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  }
  expect(worst).toBeLessThan(tolerance);
}

async function agree(f: () => tf.Tensor): Promise<void> {
  const cpu = await on('cpu', f);
  const wasm = await on('wasm', f);
  expect(wasm.shape).toEqual(cpu.shape);
  expectClose(wasm.values, cpu.values);
  expect(cpu.values.some((v) => v !== 0)).toBe(true);
}

const random = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

beforeAll(async () => {
  await selectBackend('wasm', silentLogger);
});

describe('wasm gradient kernels', () => {
  it('fills exactly the kernels wasm lacks, once', () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
    expect(registerWasmGradientKernels()).toEqual([]);
  });

  const convCases: {
    name: string;
    x: number[];
    filter: number[];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number;
    dataFormat?: 'NHWC' | 'NCHW';
  }[] = [
    { name: '3×3 valid', x: [2, 7, 7, 3], filter: [3, 3, 3, 4], strides: 1, pad: 'valid' },
    { name: '3×3 same, stride 2', x: [2, 8, 7, 2], filter: [3, 3, 2, 5], strides: 2, pad: 'same' },
    {
      name: '2×4 filter, strides 2×3, valid with unread rows',
      x: [3, 9, 11, 2],
      filter: [2, 4, 2, 3],
      strides: [2, 3],
      pad: 'valid',
    },
    { name: 'explicit padding 1', x: [1, 5, 6, 3], filter: [3, 3, 3, 2], strides: 1, pad: 1 },
    { name: '1×1 filter', x: [4, 3, 3, 6], filter: [1, 1, 6, 2], strides: 1, pad: 'valid' },
    { name: 'NCHW input', x: [2, 3, 6, 6], filter: [3, 3, 3, 2], strides: 1, pad: 'same', dataFormat: 'NCHW' },
  ];

  for (const c of convCases) {
    it(`Conv2DBackpropFilter matches cpu: ${c.name}`, async () => {
      const channelsFirst = c.dataFormat === 'NCHW';
      const [b, h, w] = channelsFirst ? [c.x[0], c.x[2], c.x[3]] : c.x;
      const conv = tf.backend_util.computeConv2DInfo(
        (channelsFirst ? [b, h, w, c.x[1]] : c.x) as [number, number, number, number],
        c.filter as [number, number, number, number],
        c.strides,
        1,
        c.pad,
      );
      const dyShape = channelsFirst
        ? [b, conv.outChannels, conv.outHeight, conv.outWidth]
        : [b, conv.outHeight, conv.outWidth, conv.outChannels];
      await agree(
        () =>
          tf
            .engine()
            .runKernel(
              'Conv2DBackpropFilter',
              { x: random(c.x, 1), dy: random(dyShape, 2) },
              { strides: c.strides, pad: c.pad, dataFormat: c.dataFormat ?? 'NHWC', filterShape: c.filter },
            ) as tf.Tensor,
      );
    });
  }

  it('gives conv2d the same filter gradient as cpu', async () => {
    const x = () => random([2, 9, 9, 3], 3);
    await agree(() =>
      tf.grad((filter) => tf.sum(tf.square(tf.conv2d(x() as tf.Tensor4D, filter as tf.Tensor4D, 2, 'same'))))(
        random([3, 3, 3, 4], 4),
      ),
    );
  });

  it('UnsortedSegmentSum matches cpu, dropping out-of-range ids', async () => {
    await agree(() => tf.unsortedSegmentSum(random([7, 3, 2], 5), tf.tensor1d([2, 0, 2, 4, -1, 9, 0], 'int32'), 5));
  });

  it('UnsortedSegmentSum sums int32 data', async () => {
    await agree(() =>
      tf.unsortedSegmentSum(tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32'), tf.tensor1d([1, 1, 0], 'int32'), 3),
    );
  });

  it('gives an embedding lookup (gather) the same gradient as cpu, repeated ids included', async () => {
    await agree(() =>
      tf.grad((table) => tf.sum(tf.mul(tf.gather(table, tf.tensor1d([3, 1, 3, 0, 3], 'int32')), random([5, 4], 6))))(
        random([6, 4], 7),
      ),
    );
  });
});
