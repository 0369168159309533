// A replica that loads another's optimizer state must apply, from then on, bit for bit the updates
// the other applies: that is what keeps replicas identical after a recovery, a join or a resume.
// Every optimizer type, the state taken after 1 to 12 updates.
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { createOptimizer, createPrng, getOptimizerState, setOptimizerState } from '@tfjs-ddp/common';

const OPTIMIZER_TYPES = ['sgd', 'momentum', 'adam', 'rmsprop', 'adagrad', 'adadelta'] as const;

function randomTensor(rng: ReturnType<typeof createPrng>, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rng.normal()),
    shape,
  );
}

describe.each(OPTIMIZER_TYPES)('optimizer state of %s', (type) => {
  it('restored into a fresh optimizer, the next update is bit-identical to the original one', async () => {
    const rng = createPrng(3);
    const shapes = [[7, 5], [5], [5, 3]];
    for (let updates = 1; updates <= 12; updates++) {
      const original = createOptimizer({ type, learningRate: 0.01 }).optimizer;
      const vars = shapes.map((s) => tf.variable(randomTensor(rng, s)));
      const grads = () => Object.fromEntries(vars.map((v) => [v.name, randomTensor(rng, v.shape)]));
      for (let i = 0; i < updates; i++) {
        const g = grads();
        original.applyGradients(g);
        tf.dispose(Object.values(g));
      }
      const copy = createOptimizer({ type, learningRate: 0.01 }).optimizer;
      await setOptimizerState(copy, await getOptimizerState(original));
      const twins = vars.map((v) => tf.variable(v.clone()));
      const next = grads();
      original.applyGradients(next);
      copy.applyGradients(Object.fromEntries(twins.map((t, i) => [t.name, next[vars[i].name]])));
      for (let i = 0; i < vars.length; i++) {
        const a = new Uint32Array((await vars[i].data()).buffer.slice(0));
        const b = new Uint32Array((await twins[i].data()).buffer.slice(0));
        expect(b, `${type}: variable ${i} after ${updates} updates and one after the restore`).toEqual(a);
      }
      const [sa, sb] = [await getOptimizerState(original), await getOptimizerState(copy)];
      expect(sb.entries.map((e) => [e.name, [...e.values]])).toEqual(sa.entries.map((e) => [e.name, [...e.values]]));
      tf.dispose([...vars, ...twins, ...Object.values(next)]);
      original.dispose();
      copy.dispose();
    }
  });
});

it('refuses a state field the optimizer does not have, naming it', async () => {
  const adam = createOptimizer({ type: 'adam', learningRate: 0.01 }).optimizer;
  const sgd = createOptimizer({ type: 'sgd', learningRate: 0.01 }).optimizer;
  await expect(setOptimizerState(sgd, await getOptimizerState(adam))).rejects.toThrow(
    /field "accBeta1" that this SGD optimizer does not have/,
  );
});
