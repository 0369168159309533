// The worker's training step owns its AbortController and hands its signal to the comm hook: the
// coordinator's abort (for operations below `before`) releases a step blocked in the all-reduce at
// once, and a released step leaves the parameters as they were.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createModel,
  createWorkerMetrics,
  GradientStep,
  parseJobSpec,
  silentLogger,
  type AllReduceOptions,
  type Collective,
  type Command,
} from '@tfjs-ddp/common';
import { BatchBuffers } from '../packages/worker/src/batch.js';
import { loadJobData } from '../packages/worker/src/job-data.js';
import { Replica } from '../packages/worker/src/replica.js';
import { TrainingStep } from '../packages/worker/src/training-step.js';

const spec = parseJobSpec(
  JSON.stringify({
    name: 'abort-step',
    model: { zoo: 'binary-mlp', params: { hidden: 8 } },
    data: { train: { type: 'synthetic-binary', n: 64, seed: 1 } },
    optimizer: { type: 'sgd', learningRate: 0.1 },
    loss: 'binaryCrossentropy',
    batchSize: 16,
    epochs: 1,
    output: '/tmp/tfjs-ddp-abort-step',
  }),
  'abort-step.json',
);

/** A collective of one rank whose all-reduce never completes: only its abort signal ends it. */
function blockedCollective() {
  let reached!: (signal: AbortSignal | undefined) => void;
  const entered = new Promise<AbortSignal | undefined>((r) => (reached = r));
  const unused = () => Promise.reject(new Error('not used by a step'));
  const c: Collective = {
    rank: 0,
    worldSize: 1,
    generation: 1,
    allReduce(_buf: Float32Array, opts?: AllReduceOptions) {
      return new Promise<void>((_resolve, reject) => {
        opts?.signal?.addEventListener('abort', () => reject(opts.signal!.reason as Error));
        reached(opts?.signal);
      });
    },
    reduceScatter: unused,
    allGather: unused,
    broadcast: unused,
    barrier: unused,
    abort: () => {},
    stats: () => ({ opsCompleted: 0, opsFailed: 0, bufferAllocations: 0, queuedBytes: 0 }),
    close: async () => {},
  };
  return { c, entered };
}

describe('the training step', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('is released from a blocked all-reduce by an abort below its operation, parameters untouched', async () => {
    const data = await loadJobData(spec);
    const built = await createModel(spec.model, tf, { seed: 1, loss: spec.loss, inputShape: data.train.featureShape });
    const replica = new Replica(new GradientStep(built.model, built.loss), spec);
    const metrics = createWorkerMetrics({ job: spec.name, workerId: 'w', processMetrics: false });
    const training = new TrainingStep({
      tf,
      spec,
      data,
      replica,
      batches: new BatchBuffers(tf),
      log: silentLogger,
      metrics,
    });
    const before = await replica.hash();
    const cmd: Extract<Command, { type: 'step' }> = {
      type: 'step',
      job: spec.name,
      gen: 1,
      step: 0,
      epoch: 0,
      op: 32,
      slices: [[0, 16]],
      globalCount: 16,
      lr: 0.1,
      hash: false,
    };
    const { c, entered } = blockedCollective();
    const step = training.run(cmd, c);
    step.catch(() => {});
    const signal = await entered;
    expect(signal).toBeDefined();
    // An abort of earlier operations only (a step the coordinator sent after the abort) leaves it running.
    training.abort('an earlier step was aborted', cmd.op);
    expect(signal!.aborted).toBe(false);
    training.abort('rank 1 lost', cmd.op + 16);
    await expect(step).rejects.toThrow('rank 1 lost');
    expect(await replica.hash()).toBe(before);
    expect(replica.appliedStep).toBe(-1);
    replica.dispose();
    built.model.dispose();
  });
});
