// WebGPU in Node cannot read a tensor back synchronously (tfjs-backend-webgpu's readSync needs an
// OffscreenCanvas), so a worker must read gradients, parameters and hashes with data(), never
// dataSync(). This runs a whole job (training with hash checks, a state broadcast, validation,
// checkpoints, the model saved) on in-process workers whose backend refuses synchronous reads of
// what a kernel computed, as WebGPU does, and checks it matches the same job with reads allowed.
// The job stops early and restores the best weights, so that path reads back too.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { parseJobSpec } from '@tfjs-ddp/common';
import type { JobSummary } from '@tfjs-ddp/coordinator';
import { startInProcessJob } from './support/in-process.js';
import { startNats, type NatsFixture } from './support/nats.js';
import { savedWeights, tempDir, type TempDir } from './support/jobs.js';

interface Backend {
  read(dataId: object): Promise<unknown>;
  readSync(dataId: object): unknown;
  makeTensorInfo(...args: unknown[]): { dataId: object };
}

/** The cpu backend instance the workers in this process use (tfjs keeps one per name). */
async function cpuBackend(): Promise<Backend> {
  await tf.setBackend('cpu');
  return tf.backend() as unknown as Backend;
}

/**
 * Makes the cpu backend behave like WebGPU in Node: values a kernel computed (the cpu backend makes
 * every kernel output with makeTensorInfo) cannot be read synchronously; values written from
 * JavaScript (tf.tensor) can, since WebGPU keeps those on the CPU too. Returns where synchronous
 * reads were refused, and how to undo it.
 */
function refuseSyncReadsOfComputedValues(backend: Backend): { refused: string[]; restore(): void } {
  const computed = new WeakSet<object>();
  const refused: string[] = [];
  const { read, readSync, makeTensorInfo } = backend;
  // The cpu backend's asynchronous read() calls readSync() itself, at once: that one is allowed.
  let reading = 0;
  backend.read = function (this: Backend, dataId: object) {
    reading++;
    try {
      return read.call(this, dataId);
    } finally {
      reading--;
    }
  };
  backend.makeTensorInfo = function (this: Backend, ...args: unknown[]) {
    const info = makeTensorInfo.apply(this, args);
    computed.add(info.dataId);
    return info;
  };
  backend.readSync = function (this: Backend, dataId: object) {
    if (computed.has(dataId) && reading === 0) {
      const where = new Error().stack?.split('\n').slice(2, 7).join(' | ') ?? '';
      refused.push(where);
      throw new Error(`synchronous readback of a computed tensor (WebGPU in Node cannot): ${where}`);
    }
    return readSync.call(this, dataId);
  };
  return {
    refused,
    restore() {
      backend.read = read;
      backend.readSync = readSync;
      backend.makeTensorInfo = makeTensorInfo;
    },
  };
}

describe('the worker on a backend without synchronous readback', () => {
  let nats: NatsFixture;
  let dir: TempDir;
  let guard: ReturnType<typeof refuseSyncReadsOfComputedValues> | undefined;

  beforeAll(async () => {
    nats = await startNats();
    dir = await tempDir('readback');
  });
  afterEach(() => guard?.restore());
  afterAll(async () => {
    await nats?.stop();
    await dir?.remove();
  });

  async function run(name: string): Promise<{ params: number[]; summary: JobSummary }> {
    const spec = parseJobSpec(
      JSON.stringify({
        name,
        model: { zoo: 'binary-mlp' },
        data: {
          train: { type: 'synthetic-binary', n: 256, seed: 4 },
          validation: { fraction: 0.25 },
          test: { type: 'synthetic-binary', n: 64, seed: 5 },
        },
        optimizer: { type: 'adam', learningRate: 0.01 },
        loss: 'binaryCrossentropy',
        metrics: ['accuracy'],
        batchSize: 32,
        epochs: 3,
        seed: 3,
        hashCheckEvery: 2,
        checkpoint: { dir: `${dir.path}/${name}/ckpt`, everySteps: 3, keep: 2 },
        // No epoch improves on the first by 1e9, so the job stops after the second and restores the first's weights.
        earlyStopping: { monitor: 'val_loss', patience: 1, minDelta: 1e9, restoreBestWeights: true },
        workers: { min: 2, max: 2 },
        output: `${dir.path}/${name}/out`,
      }),
      `${name}.json`,
    );
    const summary = await startInProcessJob(spec, nats.url, ['a', 'b']).result();
    const params = [...(await savedWeights(`${dir.path}/${name}/out/model`))];
    return { params, summary };
  }

  it('trains, checks hashes, checkpoints, restores the best weights and saves the model with data() alone', async () => {
    const allowed = await run('readback-sync-allowed');
    guard = refuseSyncReadsOfComputedValues(await cpuBackend());
    const strict = await run('readback-async-only');
    guard.restore();
    expect(guard.refused, 'synchronous reads the worker made').toEqual([]);
    for (const { summary } of [allowed, strict]) {
      expect(summary.status).toBe('stopped-early');
      expect(summary.bestWeightsRestored).toBe(true);
    }
    expect(strict.params).toEqual(allowed.params);
    expect(allowed.summary.test?.loss).toEqual(expect.any(Number));
    expect(strict.summary.test?.loss).toBe(allowed.summary.test?.loss);
  }, 120_000);
});
