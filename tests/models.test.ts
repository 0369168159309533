import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createModel,
  fileLoadHandler,
  JobSpecError,
  LOSSES,
  loadModel,
  ModelModuleRequiredError,
  MetricAccumulator,
  validateJobSpec,
  VariablesTrainableModel,
  type TrainableModel,
} from '@tfjs-ddp/common';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/models/${name}`, import.meta.url));

function flatWeights(model: TrainableModel): number[] {
  return model.variables().flatMap((v) => Array.from(v.dataSync()));
}

function paramCount(model: TrainableModel): number {
  return model.variables().reduce((n, v) => n + v.size, 0);
}

let dir: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-models-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the zoo', () => {
  it('builds the classic architectures with their parameter counts', async () => {
    const counts: Record<string, number> = {};
    for (const [zoo, params] of [
      ['linear', { inputs: 3 }],
      ['perceptron', {}],
      ['binary-mlp', {}],
      ['mlp', {}],
      ['cnn', {}],
    ] as const) {
      const { model } = await createModel({ zoo, params });
      counts[zoo] = paramCount(model);
      model.dispose();
    }
    expect(counts).toEqual({
      linear: 3 + 1,
      perceptron: 2 + 1,
      'binary-mlp': 2 * 64 + 64 + 64 * 64 + 64 + 64 + 1,
      mlp: 784 * 128 + 128 + 128 * 10 + 10,
      // 28 → conv 26 → pool 13 → conv 11 → pool 5: the dense layer sees 5·5·64 features.
      cnn: 9 * 32 + 32 + 9 * 32 * 64 + 64 + 1600 * 128 + 128 + 128 * 10 + 10,
    });
  });

  it('pairs each zoo model with its usual loss and the metrics that suit it', async () => {
    const linear = await createModel({ zoo: 'linear' });
    const perceptron = await createModel({ zoo: 'perceptron' });
    const mlp = await createModel({ zoo: 'mlp', params: { hidden: 8 } });
    expect([linear.lossName, linear.metrics]).toEqual(['mse', []]);
    expect([perceptron.lossName, perceptron.metrics]).toEqual([
      'binaryCrossentropy',
      ['accuracy', 'precision', 'recall', 'f1'],
    ]);
    expect([mlp.lossName, mlp.metrics]).toEqual(['sparseCategoricalCrossentropy', ['accuracy']]);
    const overridden = await createModel({ zoo: 'linear' }, tf, { loss: 'binaryCrossentropy', metrics: ['accuracy'] });
    expect([overridden.lossName, overridden.metrics]).toEqual(['binaryCrossentropy', ['accuracy']]);
    [linear, perceptron, mlp, overridden].forEach((b) => b.model.dispose());
  });

  it('gives the same initial weights for the same seed and different ones for another', async () => {
    const build = (seed: number) =>
      createModel({ zoo: 'cnn', params: { inputShape: [8, 8, 1], filters: [2, 3], dense: 4 } }, tf, { seed });
    const [a, b, c] = await Promise.all([build(7), build(7), build(8)]);
    expect(flatWeights(a.model)).toEqual(flatWeights(b.model));
    expect(flatWeights(a.model)).not.toEqual(flatWeights(c.model));
    [a, b, c].forEach((m) => m.model.dispose());
  });

  it('takes the input shape from params, then from the data, and reshapes flat images for the cnn', async () => {
    const fromData = await createModel({ zoo: 'mlp', params: { hidden: 4 } }, tf, { inputShape: [6] });
    expect(fromData.model.variables()[0].shape).toEqual([6, 4]);
    const flat = await createModel({
      zoo: 'cnn',
      params: { inputShape: [100], image: [10, 10, 1], filters: [2, 2], dense: 3 },
    });
    const out = tf.tidy(() => flat.model.predict(tf.zeros([2, 100])).shape);
    expect(out).toEqual([2, 10]);
    [fromData, flat].forEach((m) => m.model.dispose());
    await expect(createModel({ zoo: 'cnn', params: { inputShape: [100] } })).rejects.toThrow(
      /zoo model 'cnn' needs images: .*got inputShape \[100\]/,
    );
    await expect(createModel({ zoo: 'mlp', params: { hiden: 4 } })).rejects.toThrow(
      /invalid params for zoo model 'mlp'/,
    );
  });
});

describe('per-sample losses', () => {
  const yPred = () =>
    tf.tensor2d([
      [0.7, 0.2, 0.1],
      [0.1, 0.1, 0.8],
    ]);

  it('sparse and one-hot categorical cross-entropy agree and equal -log p(label)', () => {
    const sparse = tf.tidy(() => LOSSES.sparseCategoricalCrossentropy(tf.tensor1d([0, 2]), yPred()).arraySync());
    const oneHot = tf.tidy(() =>
      LOSSES.categoricalCrossentropy(
        tf.tensor2d([
          [1, 0, 0],
          [0, 0, 1],
        ]),
        yPred(),
      ).arraySync(),
    );
    expect(sparse[0]).toBeCloseTo(-Math.log(0.7), 5);
    expect(sparse[1]).toBeCloseTo(-Math.log(0.8), 5);
    expect(oneHot).toEqual(sparse);
  });

  it('binary cross-entropy and mse give one value per sample, labels as [B] or [B, 1]', () => {
    const bce = tf.tidy(() => LOSSES.binaryCrossentropy(tf.tensor1d([1, 0]), tf.tensor2d([[0.9], [0.3]])).arraySync());
    expect(bce[0]).toBeCloseTo(-Math.log(0.9), 5);
    expect(bce[1]).toBeCloseTo(-Math.log(0.7), 5);
    const mse = tf.tidy(() =>
      LOSSES.mse(
        tf.tensor2d([
          [1, 2],
          [0, 0],
        ]),
        tf.tensor2d([
          [0, 2],
          [3, 1],
        ]),
      ).arraySync(),
    );
    expect(mse).toEqual([0.5, 5]);
  });

  it('stays finite when a probability saturates', () => {
    const v = tf.tidy(() => LOSSES.binaryCrossentropy(tf.tensor1d([1, 0]), tf.tensor2d([[0], [1]])).arraySync());
    expect(v.every((x) => Number.isFinite(x) && x > 10)).toBe(true);
  });
});

describe('metrics', () => {
  it('computes accuracy, precision, recall and F1 for a binary task across batches', async () => {
    const m = new MetricAccumulator(['accuracy', 'precision', 'recall', 'f1']);
    // Predicted 1,1,0 | 1,0 against actual 1,0,1 | 1,0: tp 2, fp 1, fn 1, tn 1.
    await m.update(tf.tensor1d([1, 0, 1]), tf.tensor2d([[0.9], [0.6], [0.4]]));
    await m.update(tf.tensor1d([1, 0]), tf.tensor2d([[0.8], [0.1]]));
    const r = m.result();
    expect(r.accuracy).toBeCloseTo(3 / 5, 6);
    expect(r.precision).toBeCloseTo(2 / 3, 6);
    expect(r.recall).toBeCloseTo(2 / 3, 6);
    expect(r.f1).toBeCloseTo(2 / 3, 6);
  });

  it('takes the argmax for multiclass accuracy, with index or one-hot labels', async () => {
    const probs = tf.tensor2d([
      [0.1, 0.8, 0.1],
      [0.6, 0.3, 0.1],
      [0.2, 0.2, 0.6],
    ]);
    const byIndex = new MetricAccumulator(['accuracy']);
    await byIndex.update(tf.tensor1d([1, 2, 2]), probs);
    const byOneHot = new MetricAccumulator(['accuracy']);
    await byOneHot.update(
      tf.tensor2d([
        [0, 1, 0],
        [0, 0, 1],
        [0, 0, 1],
      ]),
      probs,
    );
    expect(byIndex.result().accuracy).toBeCloseTo(2 / 3, 6);
    expect(byOneHot.result()).toEqual(byIndex.result());
    await expect(new MetricAccumulator(['f1']).update(tf.tensor1d([1, 2, 2]), probs)).rejects.toThrow(
      /metric 'f1' is defined for binary tasks .* outputs 3 classes/,
    );
  });
});

describe('saving and loading', () => {
  it('writes a standard TensorFlow.js layers model that loads back with identical predictions', async () => {
    const { model } = await createModel({ zoo: 'mlp', params: { inputShape: [5], hidden: 7, classes: 3 } }, tf, {
      seed: 3,
    });
    const out = join(dir, 'mlp');
    await model.save(out);
    expect((await readdir(out)).sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
    const json = JSON.parse(await readFile(join(out, 'model.json'), 'utf8'));
    expect(json.modelTopology).toBeDefined();
    expect(json.weightsManifest[0].paths).toEqual(['group1-shard1of1.bin']);

    const loaded = await loadModel(out);
    const x = tf.randomNormal([4, 5], 0, 1, 'float32', 1);
    expect(loaded.predict(x).arraySync()).toEqual(model.predict(x).arraySync());
    // The files are what tf.loadLayersModel expects, so other TensorFlow.js programs can read them.
    const plain = await tf.loadLayersModel(fileLoadHandler(out));
    expect((plain.predict(x) as tf.Tensor).arraySync()).toEqual(model.predict(x).arraySync());
    [model, loaded].forEach((m) => m.dispose());
    plain.dispose();
  });

  it('loads a layers model.json named by the job (layersJson), which needs the job to name a loss', async () => {
    const { model } = await createModel({ zoo: 'perceptron', params: { inputs: 3 } }, tf, { seed: 4 });
    const out = join(dir, 'perceptron');
    await model.save(out);
    const built = await createModel({ layersJson: join(out, 'model.json') }, tf, { loss: 'binaryCrossentropy' });
    const x = tf.randomNormal([3, 3], 0, 1, 'float32', 2);
    expect(built.model.predict(x).arraySync()).toEqual(model.predict(x).arraySync());
    expect(built.metrics).toEqual(['accuracy', 'precision', 'recall', 'f1']);
    await expect(createModel({ layersJson: out })).rejects.toThrow(/needs a loss/);
    await expect(createModel({ layersJson: join(dir, 'nowhere') }, tf, { loss: 'mse' })).rejects.toThrow(
      /cannot load the tfjs-layers model .*nowhere: cannot read model file/,
    );
    [model, built.model].forEach((m) => m.dispose());
  });

  it('saves a variables model with the module that rebuilds it, and loads it back', async () => {
    const { model } = await createModel(
      { module: fixture('explicit-variables.mjs'), params: { inputs: 3, hidden: 4 } },
      tf,
      { loss: 'mse', seed: 11 },
    );
    // Training moves the weights away from what the module's seed would rebuild.
    model.variables()[1].assign(tf.fill([4], 0.25));
    const out = join(dir, 'variables');
    await model.save(out);
    expect((await readdir(out)).sort()).toEqual(['group1-shard1of1.bin', 'model.json', 'module.json']);
    const loaded = await loadModel(out, tf, { module: fixture('explicit-variables.mjs') });
    expect(loaded).toBeInstanceOf(VariablesTrainableModel);
    expect((loaded as VariablesTrainableModel).names).toEqual(['w1', 'b1', 'w2', 'b2']);
    const x = tf.randomNormal([5, 3], 0, 1, 'float32', 3);
    expect(loaded.predict(x).arraySync()).toEqual(model.predict(x).arraySync());
    [model, loaded].forEach((m) => m.dispose());
  });

  it('never imports the module that saved files name: the caller must name it, and its module is the one run', async () => {
    const { model } = await createModel(
      { module: fixture('explicit-variables.mjs'), params: { inputs: 3, hidden: 4 } },
      tf,
      { loss: 'mse', seed: 11 },
    );
    const out = join(dir, 'variables-from-elsewhere');
    await model.save(out);
    // Files that came from elsewhere: their module.json names a module that does something when imported.
    const marker = join(dir, 'foreign-module-ran');
    const foreign = join(dir, 'foreign-module.mjs');
    await writeFile(
      foreign,
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'ran');\n` +
        `export function createModel() { throw new Error('the foreign module built the model'); }\n`,
    );
    const source = JSON.parse(await readFile(join(out, 'module.json'), 'utf8'));
    await writeFile(join(out, 'module.json'), JSON.stringify({ ...source, module: foreign }));
    await expect(loadModel(out)).rejects.toThrow(ModelModuleRequiredError);
    await expect(loadModel(out)).rejects.toThrow(
      `${out} holds a model of a custom module (its module.json says ${JSON.stringify(foreign)}); loading it runs that module's code, so the module must be named by whoever loads it`,
    );
    expect(existsSync(marker), 'the module named by module.json was imported').toBe(false);
    const loaded = await loadModel(out, tf, { module: fixture('explicit-variables.mjs') });
    expect(existsSync(marker), 'the module named by module.json was imported').toBe(false);
    const x = tf.randomNormal([5, 3], 0, 1, 'float32', 3);
    expect(loaded.predict(x).arraySync()).toEqual(model.predict(x).arraySync());
    [model, loaded].forEach((m) => m.dispose());
  });

  it('refuses saved variables that do not fit the module, naming the variable, and disposes the model', async () => {
    const { model } = await createModel(
      { module: fixture('explicit-variables.mjs'), params: { inputs: 3, hidden: 4 } },
      tf,
      { loss: 'mse', seed: 11 },
    );
    const out = join(dir, 'variables-mismatch');
    await model.save(out);
    model.dispose();
    // The module now builds a wider hidden layer than the one saved.
    const source = JSON.parse(await readFile(join(out, 'module.json'), 'utf8'));
    await writeFile(join(out, 'module.json'), JSON.stringify({ ...source, params: { inputs: 3, hidden: 5 } }));
    // Counted by variables: the fixture leaves its initial values behind, the loader must not leave the model.
    const variables = () => Object.keys(tf.engine().registeredVariables).length;
    const before = variables();
    await expect(loadModel(out, tf, { module: fixture('explicit-variables.mjs') })).rejects.toThrow(
      `saved weights do not match module ${fixture('explicit-variables.mjs')}: variable 'w1' expects shape [3, 5], saved [3, 4]`,
    );
    expect(variables()).toBe(before);
  });

  it('refuses a layers model in an object store when the job is validated, as at load', async () => {
    const url = 'nats-obj://models/perceptron/model.json';
    const refusal = `cannot load the tfjs-layers model ${url} directly: fetch it from the object store to a local directory first and pass that path`;
    const spec = {
      name: 'layers-from-store',
      model: { layersJson: url },
      data: { train: { type: 'synthetic-linear', n: 10, w: [1], b: 0, noise: 0, seed: 1 } },
      optimizer: { type: 'sgd', learningRate: 0.1 },
      loss: 'mse',
      batchSize: 2,
      epochs: 1,
    };
    let error: unknown;
    try {
      validateJobSpec(spec, 'x.yaml');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(JobSpecError);
    expect((error as Error).message.split('\n')).toEqual([`x.yaml: model.layersJson: ${refusal}`]);
    await expect(createModel({ layersJson: url }, tf, { loss: 'mse' })).rejects.toThrow(refusal);
  });
});

describe('custom model modules', () => {
  it('uses a module that returns a layers model with its own per-sample loss', async () => {
    const built = await createModel({ module: fixture('layers-with-loss.mjs'), params: { inputs: 3, units: 2 } }, tf, {
      seed: 1,
    });
    expect(built.lossName).toBe('custom');
    expect(built.model.kind).toBe('layers');
    const loss = tf.tidy(() => built.loss(tf.tensor1d([1, -1]), tf.tensor2d([[0.5], [1]])).arraySync());
    expect(loss).toEqual([0.5, 2]);
    built.model.dispose();
  });

  it('uses a module that returns plain variables and predict (explicit gradients)', async () => {
    const built = await createModel(
      { module: fixture('explicit-variables.mjs'), params: { inputs: 2, hidden: 3 } },
      tf,
      {
        loss: 'mse',
      },
    );
    expect(built.model.kind).toBe('variables');
    expect(built.model.variables().map((v) => v.shape)).toEqual([[2, 3], [3], [3, 1], [1]]);
    expect(tf.tidy(() => built.model.predict(tf.ones([4, 2])).shape)).toEqual([4, 1]);
    built.model.dispose();
  });

  it('names the module and the original error when it throws on import or in createModel', async () => {
    await expect(createModel({ module: fixture('throws-on-import.mjs') }, tf, { loss: 'mse' })).rejects.toThrow(
      `model module ${fixture('throws-on-import.mjs')} failed to import: weights server unreachable`,
    );
    await expect(createModel({ module: fixture('throws-in-create.mjs') }, tf, { loss: 'mse' })).rejects.toThrow(
      `model module ${fixture('throws-in-create.mjs')}: createModel threw: params.units must be set`,
    );
    await expect(createModel({ module: fixture('returns-nothing.mjs') }, tf, { loss: 'mse' })).rejects.toThrow(
      /createModel returned object; expected a tf.LayersModel or \{ variables/,
    );
    await expect(createModel({ module: fixture('missing.mjs') }, tf, { loss: 'mse' })).rejects.toThrow(
      /model module .*missing\.mjs failed to import: Cannot find module/,
    );
  });

  it('asks for a loss when neither the module nor the job names one', async () => {
    await expect(createModel({ module: fixture('explicit-variables.mjs') })).rejects.toThrow(
      /exports no loss and the job names none/,
    );
  });
});
