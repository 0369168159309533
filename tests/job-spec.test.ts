import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { JobSpecError, loadJobSpec, parseJobSpec, specHash, validateJobSpec } from '@tfjs-ddp/common';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const jobsDir = join(repo, 'examples/jobs');
const exampleJobs = readdirSync(jobsDir).filter((f) => /\.(ya?ml|json)$/.test(f));

/** A small valid spec; each test changes one thing in it. */
function minimal(): Record<string, unknown> {
  return {
    name: 'tiny',
    model: { zoo: 'linear' },
    data: { train: { type: 'synthetic-linear', n: 10, w: [1], b: 0, noise: 0, seed: 1 } },
    optimizer: { type: 'sgd', learningRate: 0.1 },
    loss: 'mse',
    batchSize: 2,
    epochs: 1,
  };
}

/** The lines of the JobSpecError that validating `value` throws. */
function problems(value: unknown, source = 'x.yaml'): string[] {
  try {
    validateJobSpec(value, source, { baseDir: '/jobs' });
  } catch (err) {
    expect(err).toBeInstanceOf(JobSpecError);
    return (err as JobSpecError).message.split('\n');
  }
  throw new Error('expected the spec to be rejected, but it was accepted');
}

describe('example jobs', () => {
  it('include one job per workload', () => {
    expect(exampleJobs.sort()).toEqual(
      ['binary-mlp', 'custom-loop', 'fashion-cnn', 'fashion-mlp', 'linear', 'lm-gpu', 'perceptron', 'tiny-lm'].map(
        (n) => `${n}.yaml`,
      ),
    );
  });

  it.each(exampleJobs)('%s is valid and names itself after its file', async (file) => {
    const spec = await loadJobSpec(join(jobsDir, file));
    expect(spec.name).toBe(file.replace(/\.yaml$/, ''));
  });

  it('custom-loop resolves its model module against the spec file and leaves the loss to it', async () => {
    const spec = await loadJobSpec(join(jobsDir, 'custom-loop.yaml'));
    expect(spec.model).toEqual({ module: join(repo, 'examples/models/custom-logreg.mjs'), params: { features: 2 } });
    expect(existsSync((spec.model as { module: string }).module)).toBe(true);
    expect(spec.loss).toBeUndefined();
  });

  it('the Fashion-MNIST jobs read the IDX files the machine provides', async () => {
    const spec = await loadJobSpec(join(jobsDir, 'fashion-mlp.yaml'));
    expect(spec.data.train).toMatchObject({
      type: 'idx',
      images: '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz',
    });
    expect(spec.data.validation).toEqual({ fraction: 0.1 });
    expect(spec.optimizer).toMatchObject({ type: 'adam', learningRate: 1e-3 });
    expect(spec.batchSize).toBe(128);
  });
});

describe('defaults', () => {
  it('are filled in, so the resolved spec shows what will run', () => {
    const spec = validateJobSpec({ ...minimal(), optimizer: { type: 'adam', learningRate: 0.01 } }, '/jobs/tiny.yaml');
    expect(spec.seed).toBe(42);
    expect(spec.metrics).toEqual([]);
    expect(spec.workers).toEqual({ min: 1, max: 1 });
    expect(spec.timeouts).toEqual({ stepMs: 60_000, rendezvousMs: 300_000 });
    expect(spec.allreduce).toEqual({ dtype: 'f32', compression: { type: 'none' } });
    expect(spec.hashCheckEvery).toBe(100);
    expect(spec.model).toEqual({ zoo: 'linear', params: {} });
    expect(spec.optimizer).toEqual({
      type: 'adam',
      learningRate: 0.01,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-7,
      scaleWithWorldSize: false,
      warmupSteps: 0,
      weightDecay: 0,
      shard: false,
    });
    expect(spec.output).toBe(resolve('runs', 'tiny'));
  });

  it('leave a resolved spec unchanged when it is validated again, as a worker does with the spec it receives', async () => {
    const spec = await loadJobSpec(join(jobsDir, 'fashion-mlp.yaml'));
    expect(validateJobSpec(JSON.parse(JSON.stringify(spec)), 'received', { baseDir: '/elsewhere' })).toEqual(spec);
  });

  it('let workers.max default to workers.min', () => {
    expect(validateJobSpec({ ...minimal(), workers: { min: 3 } }, 'x.yaml').workers).toEqual({ min: 3, max: 3 });
  });

  it('fill early stopping around the patience the user gave', () => {
    const spec = validateJobSpec(
      {
        ...minimal(),
        data: { ...(minimal().data as object), validation: { fraction: 0.2 } },
        earlyStopping: { patience: 2 },
      },
      'x.yaml',
    );
    expect(spec.earlyStopping).toEqual({ monitor: 'val_loss', patience: 2, minDelta: 0, restoreBestWeights: false });
  });
});

describe('paths', () => {
  it('resolve relative to the spec file, leaving URLs alone', () => {
    const spec = parseJobSpec(
      YAML.stringify({
        ...minimal(),
        data: {
          train: { type: 'idx', images: 'data/train-images.gz', labels: 'file:///data/train-labels.gz' },
          validation: { type: 'csv', url: 'https://example.com/v.csv', features: ['a'], label: 'y' },
          test: { type: 'idx', images: 'nats-obj://datasets/images', labels: '/abs/labels.gz' },
        },
        loss: 'sparseCategoricalCrossentropy',
        output: 'out/tiny',
      }),
      '/jobs/sub/tiny.yaml',
    );
    expect(spec.data.train).toMatchObject({
      images: '/jobs/sub/data/train-images.gz',
      labels: 'file:///data/train-labels.gz',
    });
    expect(spec.data.validation).toMatchObject({ url: 'https://example.com/v.csv' });
    expect(spec.data.test).toMatchObject({ images: 'nats-obj://datasets/images', labels: '/abs/labels.gz' });
    expect(spec.output).toBe('/jobs/sub/out/tiny');
  });

  it('reject URL schemes no loader reads, and object URLs without a bucket and a name', () => {
    const lines = problems({
      ...minimal(),
      data: {
        train: { type: 'idx', images: 'ftp://host/images.gz', labels: 'nats-obj://only-bucket' },
      },
    });
    expect(lines).toEqual([
      'x.yaml: data.train.images: got "ftp://host/images.gz", expected a path, a file:// or http(s):// URL, or nats-obj://BUCKET/NAME',
      'x.yaml: data.train.labels: got "nats-obj://only-bucket", expected nats-obj://BUCKET/NAME (an object in a JetStream object store)',
    ]);
  });
});

describe('errors', () => {
  it('name the field, what came and what is allowed', () => {
    expect(problems({ ...minimal(), optimizer: { type: 'adamw', learningRate: 0.1 } })).toEqual([
      'x.yaml: optimizer.type: got "adamw", expected one of sgd, momentum, adam, rmsprop, adagrad, adadelta; did you mean "adam"?',
    ]);
  });

  it('refuse a sharded optimizer with a compression that is not a plain reduce-scatter', () => {
    for (const compression of ['topk', 'powersgd']) {
      const lines = problems({
        ...minimal(),
        optimizer: { type: 'adam', learningRate: 0.1, shard: true },
        allreduce: { compression },
      });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(`^x\\.yaml: optimizer\\.shard: got shard: true with allreduce\\.compression "${compression}"`),
      );
      expect(lines[0]).toContain('Use compression none, f16 or bf16, or set optimizer.shard to false');
    }
    for (const compression of ['none', 'f16', 'bf16']) {
      const spec = {
        ...minimal(),
        optimizer: { type: 'adam', learningRate: 0.1, shard: true },
        allreduce: { compression },
      };
      expect(validateJobSpec(spec, 'x.yaml', { baseDir: '/jobs' }).optimizer.shard).toBe(true);
    }
    expect(validateJobSpec(minimal(), 'x.yaml', { baseDir: '/jobs' }).optimizer.shard).toBe(false);
  });

  it('turn unknown keys into errors with the likely intended key', () => {
    expect(problems({ ...minimal(), epoch: 3, optimizer: { type: 'sgd', learningrate: 0.1 } })).toEqual([
      'x.yaml: optimizer.learningRate: required but missing; expected a number',
      'x.yaml: optimizer.learningrate: unknown key for type "sgd"; did you mean "learningRate"?',
      'x.yaml: epoch: unknown key; did you mean "epochs"?',
    ]);
  });

  it('list the allowed keys when no key is close, e.g. a setting of another optimizer', () => {
    expect(problems({ ...minimal(), optimizer: { type: 'sgd', learningRate: 0.1, beta1: 0.9 } })).toEqual([
      'x.yaml: optimizer.beta1: unknown key for type "sgd"; allowed keys are type, learningRate, scaleWithWorldSize, warmupSteps, schedule, weightDecay, clipNorm, shard',
    ]);
  });

  it('report a missing field', () => {
    const { name: _name, ...spec } = minimal();
    expect(problems(spec)).toEqual(['x.yaml: name: required but missing; expected a string']);
    expect(problems({ ...minimal(), optimizer: { learningRate: 0.1 } })).toEqual([
      'x.yaml: optimizer.type: required but missing; expected one of sgd, momentum, adam, rmsprop, adagrad, adadelta',
    ]);
  });

  it('report every problem at once, not only the first', () => {
    const lines = problems({
      ...minimal(),
      name: 'my job',
      batchSize: 0,
      epochs: 1.5,
      loss: 'crossentropy',
      workers: { min: 4, max: 2 },
    });
    expect(lines).toEqual([
      `x.yaml: name: got "my job", expected a job id of 1-64 letters, digits, '_' or '-' (it is part of NATS subjects)`,
      'x.yaml: loss: got "crossentropy", expected one of mse, binaryCrossentropy, sparseCategoricalCrossentropy, categoricalCrossentropy',
      'x.yaml: batchSize: got 0, expected a number >= 1',
      'x.yaml: epochs: got 1.5, expected an integer',
      'x.yaml: workers.max: got 2, expected a number >= workers.min (4)',
    ]);
  });

  it('pick the model form the user was writing', () => {
    expect(problems({ ...minimal(), model: { zoo: 'mpl' } })).toEqual([
      'x.yaml: model.zoo: got "mpl", expected one of linear, perceptron, binary-mlp, mlp, cnn, transformer-lm; did you mean "mlp"?',
    ]);
    expect(problems({ ...minimal(), model: {} })).toEqual([
      'x.yaml: model: got {}, expected {zoo, params?} or {layersJson} or {module, params?}',
    ]);
  });

  it('tell a validation source from a validation fraction', () => {
    const data = (validation: unknown) => ({ ...minimal(), data: { ...(minimal().data as object), validation } });
    expect(problems(data({ fraction: 1.5 }))).toEqual([
      'x.yaml: data.validation.fraction: got 1.5, expected a number < 1',
    ]);
    expect(problems(data({ type: 'idx', images: 'a.gz' }))).toEqual([
      'x.yaml: data.validation.labels: required but missing; expected a string',
    ]);
    expect(problems(data({ type: 'idx3', images: 'a.gz', labels: 'b.gz' }))).toEqual([
      'x.yaml: data.validation.type: got "idx3", expected one of idx, csv, synthetic-linear, synthetic-binary, text; did you mean "idx"?',
    ]);
    expect(problems(data({}))).toEqual([
      'x.yaml: data.validation: got {}, expected {type: idx|csv|synthetic-linear|synthetic-binary|text, ...} or {fraction}',
    ]);
  });

  it('name the source types when data.train has an unknown one', () => {
    expect(problems({ ...minimal(), data: { train: { type: 'idx3', images: 'a', labels: 'b' } } })).toEqual([
      'x.yaml: data.train.type: got "idx3", expected one of idx, csv, synthetic-linear, synthetic-binary, text; did you mean "idx"?',
    ]);
  });

  it('allow precision, recall and f1 only with binaryCrossentropy', () => {
    const spec = { ...minimal(), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy', 'precision', 'f1'] };
    expect(problems(spec)).toEqual([
      'x.yaml: metrics[1]: got "precision" with loss "sparseCategoricalCrossentropy"; precision is defined for binary 0/1 labels only, so it needs loss binaryCrossentropy (use accuracy otherwise)',
      'x.yaml: metrics[2]: got "f1" with loss "sparseCategoricalCrossentropy"; f1 is defined for binary 0/1 labels only, so it needs loss binaryCrossentropy (use accuracy otherwise)',
    ]);
    expect(validateJobSpec({ ...spec, loss: 'binaryCrossentropy' }, 'x.yaml').metrics).toEqual([
      'accuracy',
      'precision',
      'f1',
    ]);
  });

  it('require a loss unless a model module provides one', () => {
    const { loss: _loss, ...spec } = minimal();
    expect(problems(spec)).toEqual([
      'x.yaml: loss: required but missing; expected one of mse, binaryCrossentropy, sparseCategoricalCrossentropy, categoricalCrossentropy (only a model module that exports its own loss may leave it out)',
    ]);
    expect(validateJobSpec({ ...spec, model: { module: './m.mjs' } }, '/jobs/x.yaml').model).toEqual({
      module: '/jobs/m.mjs',
      params: {},
    });
  });

  it('require a validation set and the monitored metric for early stopping on it', () => {
    expect(problems({ ...minimal(), earlyStopping: { monitor: 'val_accuracy', patience: 1 } })).toEqual([
      'x.yaml: earlyStopping.monitor: got "val_accuracy", but data.validation is not set; add data.validation (a source or { fraction: 0.1 }) or monitor "accuracy"',
      'x.yaml: earlyStopping.monitor: got "val_accuracy", but metrics does not list "accuracy"; add it to metrics',
    ]);
  });

  it('run the cross-field rules even when other fields are invalid', () => {
    expect(problems({ ...minimal(), epochs: 0, metrics: ['recall'] })).toEqual([
      'x.yaml: epochs: got 0, expected a number >= 1',
      'x.yaml: metrics[0]: got "recall" with loss "mse"; recall is defined for binary 0/1 labels only, so it needs loss binaryCrossentropy (use accuracy otherwise)',
    ]);
  });
});

describe('parseJobSpec and loadJobSpec', () => {
  it('report YAML syntax errors with their line and column', () => {
    expect(() => parseJobSpec('name: a\nmodel: [1, 2\n', 'bad.yaml')).toThrow(
      /^bad\.yaml: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a \] at line 3, column 1$/,
    );
    expect(() => parseJobSpec('name: a\nname: b\n', 'dup.yaml')).toThrow(
      /^dup\.yaml: invalid YAML: Map keys must be unique at line 2/,
    );
  });

  it('reject an empty document and one that is not a mapping', () => {
    expect(() => parseJobSpec('# nothing\n', 'empty.yaml')).toThrow(/^empty\.yaml: the document is empty/);
    expect(() => parseJobSpec('- a\n- b\n', 'list.yaml')).toThrow(
      /^list\.yaml: got \["a","b"\], expected a mapping \(key: value\)$/,
    );
  });

  it('read JSON as well as YAML', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tfjs-ddp-job-'));
    try {
      const file = join(dir, 'tiny.json');
      await writeFile(file, JSON.stringify(minimal()));
      expect((await loadJobSpec(file)).name).toBe('tiny');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('name the file it cannot read', async () => {
    await expect(loadJobSpec('/nonexistent/job.yaml')).rejects.toThrow(
      /^\/nonexistent\/job\.yaml: cannot read the job spec \(ENOENT.*\); check the path given to --job$/,
    );
  });
});

/** `value` with the keys of every object, at every depth, in reverse order. */
function reversedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversedKeys);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reversedKeys(v)]),
  );
}

describe('specHash', () => {
  it('does not depend on the order of keys, at the top level or nested', () => {
    const spec = parseJobSpec(JSON.stringify(minimal()), '/jobs/a.json');
    // Not parsed again: parsing rebuilds the objects in schema order, which would hide the order.
    const reordered = reversedKeys(spec) as typeof spec;
    expect(Object.keys(reordered)).not.toEqual(Object.keys(spec));
    expect(Object.keys(reordered.optimizer)).not.toEqual(Object.keys(spec.optimizer));
    expect(specHash(reordered)).toBe(specHash(spec));
  });

  it('depends on the content, not on the file format', () => {
    const yaml = parseJobSpec(YAML.stringify(minimal()), '/jobs/a.yaml');
    const reordered = Object.fromEntries(Object.entries(minimal()).reverse());
    const json = parseJobSpec(JSON.stringify(reordered), '/jobs/b.json');
    expect(specHash(yaml)).toMatch(/^[0-9a-f]{64}$/);
    expect(specHash(json)).toBe(specHash(yaml));
    const faster = parseJobSpec(
      YAML.stringify({ ...minimal(), optimizer: { type: 'sgd', learningRate: 0.2 } }),
      '/jobs/a.yaml',
    );
    expect(specHash(faster)).not.toBe(specHash(yaml));
  });
});

describe('data sources', () => {
  const withTrain = (train: unknown, loss = 'mse') => ({ ...minimal(), data: { train }, loss });

  it('accept every option the loader reads: csv labelMap, delimiter, numClasses and name', () => {
    const csv = {
      type: 'csv',
      url: 'https://example.com/t.csv',
      features: ['a', 'b'],
      label: 'answer',
      labelMap: { no: 0, yes: 1 },
      delimiter: ';',
      numClasses: 2,
      name: 'answers',
    };
    const spec = validateJobSpec(withTrain(csv, 'sparseCategoricalCrossentropy'), 'x.yaml');
    expect(spec.data.train).toEqual(csv);
  });

  it('accept idx normalize, numClasses and name', () => {
    const idx = { type: 'idx', images: '/d/i.gz', labels: '/d/l.gz', normalize: false, numClasses: 10, name: 'digits' };
    expect(validateJobSpec(withTrain(idx, 'sparseCategoricalCrossentropy'), 'x.yaml').data.train).toEqual(idx);
  });

  it('fill the defaults the loader uses, so the resolved spec shows what will be read', () => {
    const linear = validateJobSpec(withTrain({ type: 'synthetic-linear', n: 10, w: [1], seed: 1 }), 'x.yaml');
    expect(linear.data.train).toEqual({ type: 'synthetic-linear', n: 10, w: [1], b: 0, noise: 0, seed: 1 });
    const csv = validateJobSpec(withTrain({ type: 'csv', url: '/d/t.csv', features: ['a'], label: 'y' }), 'x.yaml');
    expect(csv.data.train).toMatchObject({ delimiter: ',' });
    const idx = validateJobSpec(withTrain({ type: 'idx', images: '/d/i.gz', labels: '/d/l.gz' }), 'x.yaml');
    expect(idx.data.train).toMatchObject({ normalize: true });
    const binary = validateJobSpec(withTrain({ type: 'synthetic-binary', n: 10, seed: 1 }), 'x.yaml');
    expect(binary.data.train).toMatchObject({ noise: 0 });
  });

  it('lowercase a pinned sha256, as the loader compares it', () => {
    const digest = 'AB'.repeat(32);
    const spec = validateJobSpec(
      withTrain({ type: 'csv', url: '/d/t.csv', features: ['a'], label: 'y', sha256: digest }),
      'x.yaml',
    );
    expect(spec.data.train).toMatchObject({ sha256: digest.toLowerCase() });
  });

  it('reject a bad sha256, a label that is also a feature and a delimiter of two characters', () => {
    expect(
      problems(withTrain({ type: 'csv', url: '/d/t.csv', features: ['a', 'y'], label: 'y', sha256: 'abc' })),
    ).toEqual([
      'x.yaml: data.train.sha256: got "abc", expected a sha256 digest (64 hex digits)',
      'x.yaml: data.train.label: got "y", which is also listed in features; a column is either a feature or the label',
    ]);
    expect(problems(withTrain({ type: 'csv', url: '/d/t.csv', features: ['a'], label: 'y', delimiter: '::' }))).toEqual(
      ['x.yaml: data.train.delimiter: got "::", expected at most 1 characters'],
    );
  });
});
