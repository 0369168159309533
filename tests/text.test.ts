// Text data for language models: the byte tokenizer, a corpus read from files or a directory, token
// windows as the samples of the data plan (each used once per epoch), and the job spec's text source.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ByteTokenizer,
  DataPlan,
  END_OF_TEXT,
  JobSpecError,
  datasetTokenizer,
  loadSource,
  tokenStream,
  tokenWindows,
  tokenizerFromJson,
  validateJobSpec,
  windowCount,
} from '@tfjs-ddp/common';
import { tempDir, type TempDir } from './support/jobs.js';

describe('the byte tokenizer', () => {
  const tokenizer = new ByteTokenizer();

  it('encodes UTF-8 bytes and decodes them back, accents and emoji included', () => {
    const text = 'Café — 1790 🇺🇸';
    const ids = tokenizer.encode(text);
    expect(ids.length).toBe(new TextEncoder().encode(text).length);
    expect(Math.max(...ids)).toBeLessThan(256);
    expect(tokenizer.decode(ids)).toBe(text);
  });

  it('has 257 tokens: the 256 byte values and an end-of-text token that decodes as a paragraph break', () => {
    expect(tokenizer.vocabSize).toBe(257);
    expect(tokenizer.endOfText).toBe(END_OF_TEXT);
    expect(tokenizer.decode([...tokenizer.encode('one'), END_OF_TEXT, ...tokenizer.encode('two')])).toBe('one\n\ntwo');
  });

  it('decodes a sample that stops inside a character with a replacement character', () => {
    const euro = tokenizer.encode('€');
    expect(tokenizer.decode(euro.subarray(0, 2))).toBe('\uFFFD');
  });

  it('rejects ids outside its vocabulary, naming the range', () => {
    expect(() => tokenizer.decode([257])).toThrow(/0\.\.256/);
  });

  it('round-trips through the JSON saved with a model, and refuses a description it does not know', () => {
    expect(tokenizerFromJson(JSON.parse(JSON.stringify(tokenizer.toJSON())))).toBeInstanceOf(ByteTokenizer);
    expect(() => tokenizerFromJson({ type: 'bpe', vocabSize: 50257 })).toThrow(/invalid tokenizer description/);
  });
});

describe('token windows', () => {
  const tokenizer = new ByteTokenizer();

  it('joins documents into one stream with an end-of-text token after each', () => {
    const stream = tokenStream(
      [
        { file: 'a', text: 'ab' },
        { file: 'b', text: 'c' },
      ],
      tokenizer,
    );
    expect([...stream]).toEqual([97, 98, END_OF_TEXT, 99, END_OF_TEXT]);
  });

  it('make window i the tokens [i·stride, i·stride + context + 1): x the first context, y the same shifted by one', () => {
    const tokens = Uint16Array.from({ length: 20 }, (_, i) => i);
    const ds = tokenWindows(tokens, { name: 't', context: 4, stride: 3, tokenizer });
    expect(ds.count).toBe(windowCount(20, 4, 3));
    expect(ds.count).toBe(6);
    expect(ds.featureShape).toEqual([4]);
    expect(ds.labelShape).toEqual([4]);
    for (let i = 0; i < ds.count; i++) {
      const x = [...ds.x.subarray(i * 4, i * 4 + 4)];
      const y = [...ds.y.subarray(i * 4, i * 4 + 4)];
      expect(x).toEqual([0, 1, 2, 3].map((j) => i * 3 + j));
      expect(y).toEqual(x.map((v) => v + 1));
    }
    expect(datasetTokenizer(ds)).toEqual(tokenizer.toJSON());
  });

  it('refuse a corpus shorter than one window, saying what to change', () => {
    expect(() => tokenWindows(new Uint16Array(4), { name: 'short', context: 4, stride: 4, tokenizer })).toThrow(
      /short holds 4 tokens, fewer than one window of context \+ 1 = 5; add text or lower context/,
    );
  });

  it('are samples of the data plan: every window exactly once per epoch, in a new order each epoch', () => {
    const tokens = Uint16Array.from({ length: 1000 }, (_, i) => i % 251);
    const ds = tokenWindows(tokens, { name: 't', context: 16, stride: 16, tokenizer });
    const plan = new DataPlan({ size: ds.count, batchSize: 7, seed: 3 });
    const orders: number[][] = [];
    for (let epoch = 0; epoch < 2; epoch++) {
      const seen: number[] = [];
      for (let s = 0; s < plan.stepsPerEpoch; s++) {
        const step = plan.nextStep(2);
        for (const slice of step.slices) seen.push(...plan.indices(step.epoch, slice));
      }
      expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: ds.count }, (_, i) => i));
      orders.push(seen);
    }
    expect(orders[1]).not.toEqual(orders[0]);
  });
});

describe('the text source', () => {
  let dir: TempDir;
  let corpus: string;

  beforeAll(async () => {
    dir = await tempDir('text');
    corpus = join(dir.path, 'corpus');
    await mkdir(corpus);
    await writeFile(join(corpus, '1790_a.txt'), 'Fellow-Citizens of the Senate. '.repeat(10));
    await writeFile(join(corpus, '1791_b.txt'), 'Gentlemen of the House. '.repeat(10));
    await writeFile(join(corpus, '1791_b.json'), '{"not": "text"}');
    await writeFile(join(corpus, '1792_c.txt.gz'), gzipSync('Compressed remarks. '.repeat(10)));
  });
  afterAll(async () => {
    await dir?.remove();
  });

  it('reads every .txt of a directory in name order and cuts the stream into windows', async () => {
    const ds = await loadSource({ type: 'text', dir: corpus, context: 32 });
    const a = 'Fellow-Citizens of the Senate. '.repeat(10);
    const b = 'Gentlemen of the House. '.repeat(10);
    const tokens = a.length + 1 + b.length + 1;
    expect(ds.count).toBe(windowCount(tokens, 32, 32));
    expect(new ByteTokenizer().decode(Array.from(ds.x.subarray(0, 32)))).toBe(a.slice(0, 32));
    expect(datasetTokenizer(ds)?.vocabSize).toBe(257);
  });

  it('chooses files by a regular expression on their names, and decompresses gzip files', async () => {
    const ds = await loadSource({ type: 'text', dir: corpus, include: '^1792_', context: 8, stride: 4 });
    const text = 'Compressed remarks. '.repeat(10);
    expect(ds.count).toBe(windowCount(text.length + 1, 8, 4));
    // Window 1 starts one stride (4 tokens) into the text.
    expect(new ByteTokenizer().decode(Array.from(ds.x.subarray(8, 16)))).toBe(text.slice(4, 12));
  });

  it('reads a list of files in the order given', async () => {
    const ds = await loadSource({
      type: 'text',
      files: [join(corpus, '1791_b.txt'), join(corpus, '1790_a.txt')],
      context: 16,
    });
    expect(new ByteTokenizer().decode(Array.from(ds.x.subarray(0, 16)))).toBe('Gentlemen of the');
  });

  it('says which directory holds no matching file', async () => {
    await expect(loadSource({ type: 'text', dir: corpus, include: '^2020_', context: 8 })).rejects.toThrow(
      /holds no file matching \/\^2020_\/ \(it has 4 entries\); check dir and include/,
    );
  });
});

describe('a language-model job spec', () => {
  const lm = () => ({
    name: 'lm',
    model: { zoo: 'transformer-lm', params: { layers: 1 } },
    data: {
      train: { type: 'text', dir: 'corpus', context: 32 },
      validation: { type: 'text', files: ['held-out.txt', 'https://example.org/more.txt'], context: 32 },
    },
    optimizer: { type: 'adam', learningRate: 0.001 },
    batchSize: 8,
    epochs: 1,
  });

  function problems(value: unknown): string[] {
    try {
      validateJobSpec(value, 'lm.yaml', { baseDir: '/jobs' });
    } catch (err) {
      expect(err).toBeInstanceOf(JobSpecError);
      return (err as JobSpecError).message.split('\n');
    }
    throw new Error('expected the spec to be rejected, but it was accepted');
  }

  it('needs no loss, resolves the corpus paths against the spec file and fills the defaults', () => {
    const spec = validateJobSpec(lm(), 'lm.yaml', { baseDir: '/jobs' });
    expect(spec.loss).toBeUndefined();
    expect(spec.data.train).toEqual({
      type: 'text',
      dir: '/jobs/corpus',
      include: '\\.txt$',
      context: 32,
      tokenizer: 'byte',
    });
    expect(spec.data.validation).toMatchObject({ files: ['/jobs/held-out.txt', 'https://example.org/more.txt'] });
    expect(spec.accumulationSteps).toBe(1);
  });

  it('takes the large-model settings: accumulation, clipping, warmup with cosine decay, weight decay', () => {
    const spec = validateJobSpec(
      {
        ...lm(),
        accumulationSteps: 4,
        optimizer: {
          type: 'adam',
          learningRate: 0.001,
          warmupSteps: 10,
          schedule: { type: 'cosine', minLearningRate: 0.0001 },
          weightDecay: 0.1,
          clipNorm: 1,
        },
        allreduce: { dtype: 'bf16' },
      },
      'lm.yaml',
    );
    expect(spec.accumulationSteps).toBe(4);
    expect(spec.optimizer).toMatchObject({ schedule: { type: 'cosine', minLearningRate: 0.0001 }, clipNorm: 1 });
  });

  it('names a text source that gives both files and dir, or neither', () => {
    expect(problems({ ...lm(), data: { train: { type: 'text', dir: 'a', files: ['b'], context: 8 } } })).toEqual([
      'lm.yaml: data.train.dir: got both files and dir; name the corpus one way: files or dir',
    ]);
    expect(problems({ ...lm(), data: { train: { type: 'text', context: 8 } } })).toEqual([
      'lm.yaml: data.train.files: a text source needs either files (a list of text files) or dir (a directory of .txt files)',
    ]);
  });

  it('takes the same file URLs as the other sources, and names one no loader reads', () => {
    const train = { type: 'text', files: ['a.txt', 's3://corpus/b.txt', 'nats-obj://corpus'], context: 8 };
    expect(problems({ ...lm(), data: { train } })).toEqual([
      'lm.yaml: data.train.files[1]: got "s3://corpus/b.txt", expected a path, a file:// or http(s):// URL, or nats-obj://BUCKET/NAME',
      'lm.yaml: data.train.files[2]: got "nats-obj://corpus", expected nats-obj://BUCKET/NAME (an object in a JetStream object store)',
    ]);
  });

  it('pairs text with transformer-lm, its own loss and no per-sample metrics', () => {
    expect(problems({ ...lm(), model: { zoo: 'mlp' }, loss: 'sparseCategoricalCrossentropy' })).toEqual([
      'lm.yaml: model.zoo: got "mlp" with text data; token windows train zoo model transformer-lm (or a model module)',
    ]);
    expect(problems({ ...lm(), loss: 'mse', metrics: ['accuracy'] })).toEqual([
      'lm.yaml: loss: got "mse", but transformer-lm trains on next-token cross-entropy; set sparseCategoricalCrossentropy or leave loss out',
      'lm.yaml: metrics: transformer-lm reports loss and perplexity; metrics count one label per sample and do not apply to token windows, so leave metrics out',
    ]);
    expect(
      problems({ ...lm(), data: { train: { type: 'synthetic-binary', n: 10, seed: 1 } } }).filter((p) =>
        p.includes('transformer-lm'),
      ),
    ).toEqual([
      'lm.yaml: data.train.type: got "synthetic-binary" with model transformer-lm, which reads token windows; use type text (files or dir, context)',
    ]);
  });
});
