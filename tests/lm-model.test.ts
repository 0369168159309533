// The transformer language model of the zoo: its shape and parameter count, causal attention, the
// output layer tied to the token embedding, its loss, saving with config and tokenizer, sampling,
// and training on the cpu and wasm backends (wasm through the UnsortedSegmentSum kernel registered
// for it, which the embedding's gradient needs).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ByteTokenizer,
  GradientStep,
  TransformerLM,
  createModel,
  createOptimizer,
  createPrng,
  generate,
  loadModel,
  sampleToken,
  selectBackend,
  silentLogger,
  tokenCrossEntropy,
  transformerParameterCount,
  type BuiltModel,
} from '@tfjs-ddp/common';
import { tempDir, type TempDir } from './support/jobs.js';

const tokenizer = new ByteTokenizer();
const TINY = { layers: 2, heads: 2, dModel: 32 };

async function tiny(seed = 1, context = 16, params: Record<string, unknown> = TINY): Promise<BuiltModel> {
  return createModel({ zoo: 'transformer-lm', params }, tf, {
    seed,
    inputShape: [context],
    tokenizer: tokenizer.toJSON(),
  });
}

/** `count` windows of `length` + 1 tokens from a text repeated as often as needed, each `stride` apart. */
function windows(text: string, count: number, length: number, stride = 3): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const ids = tokenizer.encode(text.repeat(Math.ceil(((count * stride + length + 1) / text.length) * 2)));
  const x: number[][] = [];
  const y: number[][] = [];
  for (let i = 0; i < count; i++) {
    x.push(Array.from(ids.subarray(i * stride, i * stride + length)));
    y.push(Array.from(ids.subarray(i * stride + 1, i * stride + length + 1)));
  }
  return { x: tf.tensor2d(x), y: tf.tensor2d(y) };
}

async function gradients(built: BuiltModel, x: tf.Tensor, y: tf.Tensor): Promise<Float32Array> {
  const step = new GradientStep(built.model, built.loss);
  const out = new Float32Array(step.size);
  await step.computeAsync(x, y, out);
  return out;
}

beforeAll(async () => {
  // Registers the wasm backend (and its gradient kernels) next to cpu, which stays the default here.
  await selectBackend('wasm', silentLogger);
  await tf.setBackend('cpu');
});

describe('transformer-lm', () => {
  it('takes its context from the data and its vocabulary from the tokenizer, and says what it built', async () => {
    const tensors = tf.memory().numTensors;
    const built = await tiny();
    const model = built.model as TransformerLM;
    expect(model.config).toEqual({ ...TINY, context: 16, vocabSize: 257, mlpRatio: 4 });
    const count = model.variables().reduce((n, v) => n + v.size, 0);
    expect(count).toBe(transformerParameterCount(model.config));
    // The output layer is the token embedding transposed: no vocabulary × d_model matrix of its own.
    const d = 32;
    const perBlock = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d);
    expect(count).toBe(257 * d + 16 * d + 2 * perBlock + 2 * d);
    expect(built.description).toBe(
      `transformer-lm: 2 layers, 2 heads, d_model 32, context 16, vocabulary 257: ${count.toLocaleString('en-US')} parameters`,
    );
    model.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('refuses a width the heads do not divide, a context unlike the windows, and no vocabulary to size it', async () => {
    await expect(tiny(1, 16, { heads: 3, dModel: 32 })).rejects.toThrow(
      /dModel 32 is not a multiple of params.heads 3/,
    );
    await expect(tiny(1, 16, { ...TINY, context: 32 })).rejects.toThrow(
      /the data's windows hold 16 tokens but params.context is 32/,
    );
    await expect(createModel({ zoo: 'transformer-lm', params: {} }, tf, { inputShape: [8] })).rejects.toThrow(
      /needs its vocabulary size: train it on a text source .* or set params.vocabSize/,
    );
  });

  it('gives next-token logits for every position of inputs up to its context length', async () => {
    const built = await tiny();
    const { x } = windows('In meeting you again ', 3, 10);
    const logits = built.model.predict(x);
    expect(logits.shape).toEqual([3, 10, 257]);
    const tooLong = tf.zeros([1, 17]);
    expect(() => built.model.predict(tooLong)).toThrow(/1 <= length <= 16; got \[1, 17\]/);
    tf.dispose([x, logits, tooLong]);
    built.model.dispose();
  });

  it('is causal: a token changes the logits of its own and later positions only', async () => {
    const built = await tiny(2);
    const ids = Array.from(tokenizer.encode('abcdefghijkl'));
    const changed = [...ids];
    changed[6] = 'Z'.charCodeAt(0);
    const [a, b] = [ids, changed].map((row) => built.model.predict(tf.tensor2d([row])).arraySync() as number[][][]);
    for (let t = 0; t < ids.length; t++) {
      const same = a[0][t].every((v, k) => v === b[0][t][k]);
      expect(same, `position ${t}`).toBe(t < 6);
    }
    built.model.dispose();
  });

  it('trains its output through the token embedding: a byte seen only as a target gets a gradient', async () => {
    const built = await tiny(3);
    // 'q' (113) is never an input here, only a target.
    const x = tf.tensor2d([Array.from(tokenizer.encode('aaaa'))]);
    const y = tf.tensor2d([Array.from(tokenizer.encode('aaaq'))]);
    const grad = await gradients(built, x, y);
    const row = (byte: number) => grad.subarray(byte * 32, (byte + 1) * 32);
    expect(row(113).some((v) => v !== 0)).toBe(true);
    tf.dispose([x, y]);
    built.model.dispose();
  });

  it('starts near the loss of a uniform guess, ln 257, per window', async () => {
    const built = await tiny(4);
    const { x, y } = windows('Fellow-Citizens of the Senate and House of Representatives: ', 8, 16);
    const losses = tf.tidy(() => built.loss(y, built.model.predict(x)));
    expect(losses.shape).toEqual([8]);
    for (const v of await losses.data()) expect(v).toBeCloseTo(Math.log(257), 1);
    tf.dispose([x, y, losses]);
    built.model.dispose();
  });

  it("scores a window by the mean over its positions of the next token's cross-entropy", () => {
    const logits = tf.tensor3d([
      [
        [2, 0, 0],
        [0, 1, 3],
      ],
    ]);
    const targets = tf.tensor2d([[0, 1]]);
    const ce = (row: number[], k: number) => -(row[k] - Math.log(row.reduce((s, v) => s + Math.exp(v), 0)));
    const expected = (ce([2, 0, 0], 0) + ce([0, 1, 3], 1)) / 2;
    expect(tokenCrossEntropy(targets, logits).arraySync()).toEqual([expect.closeTo(expected, 6)]);
    tf.dispose([logits, targets]);
  });

  it('gives the same gradients on wasm, through its UnsortedSegmentSum kernel, as on cpu', async () => {
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).toBeDefined();
    const data = { text: 'It was here, more than 14 years ago, that I first took the oath. ', count: 6, length: 16 };
    const onBackend = async (backend: 'cpu' | 'wasm') => {
      await tf.setBackend(backend);
      const built = await tiny(5);
      const { x, y } = windows(data.text, data.count, data.length);
      const grad = await gradients(built, x, y);
      tf.dispose([x, y]);
      built.model.dispose();
      return grad;
    };
    try {
      const cpu = await onBackend('cpu');
      const wasm = await onBackend('wasm');
      let worst = 0;
      for (let i = 0; i < cpu.length; i++) worst = Math.max(worst, Math.abs(cpu[i] - wasm[i]));
      expect(cpu.subarray(0, 257 * 32).some((v) => v !== 0)).toBe(true);
      expect(worst).toBeLessThan(1e-4);
    } finally {
      await tf.setBackend('cpu');
    }
  });
});

describe('a trained transformer-lm', () => {
  const TEXT = 'the cat sat on the mat. ';
  let built: BuiltModel;
  let dir: TempDir;
  const losses: number[] = [];

  beforeAll(async () => {
    dir = await tempDir('lm-model');
    // wasm: the same math as cpu (above), a few times faster.
    await tf.setBackend('wasm');
    built = await tiny(6, 16, { layers: 1, heads: 2, dModel: 32 });
    const step = new GradientStep(built.model, built.loss);
    const grad = new Float32Array(step.size);
    const optimizer = createOptimizer({ type: 'adam', learningRate: 0.01 });
    const { x, y } = windows(TEXT, 24, 16, 1);
    for (let i = 0; i < 80; i++) {
      losses.push((await step.computeAsync(x, y, grad)).lossSum / 24);
      step.apply(grad, 24, optimizer.optimizer, { clipNorm: 1 });
    }
    tf.dispose([x, y]);
    optimizer.dispose();
  }, 120_000);

  afterAll(async () => {
    built?.model.dispose();
    await dir?.remove();
    await tf.setBackend('cpu');
  });

  it('learns a repeated sentence on wasm', () => {
    expect(losses[0]).toBeGreaterThan(5);
    expect(losses[losses.length - 1]).toBeLessThan(0.5);
  });

  it('continues it greedily, and the same seed draws the same sample', async () => {
    const model = built.model as TransformerLM;
    const greedy = await generate(model, 'the cat sat', { maxTokens: 13, temperature: 0, seed: 0 });
    expect(greedy.completion).toBe(' on the mat. ');
    expect(greedy.stop).toBe('maxTokens');
    const a = await generate(model, 'the', { maxTokens: 30, temperature: 1.5, topK: 0, seed: 11 });
    const b = await generate(model, 'the', { maxTokens: 30, temperature: 1.5, topK: 0, seed: 11 });
    const c = await generate(model, 'the', { maxTokens: 30, temperature: 1.5, topK: 0, seed: 12 });
    expect(a.completion).toBe(b.completion);
    expect(c.completion).not.toBe(a.completion);
  });

  it('saves its config and tokenizer with its weights, and loads back to the same predictions', async () => {
    const path = join(dir.path, 'model');
    await built.model.save(path);
    const json = JSON.parse(await readFile(join(path, 'model.json'), 'utf8'));
    expect(json.format).toBe('tfjs-ddp-transformer-lm');
    expect(json.config).toEqual((built.model as TransformerLM).config);
    expect(json.tokenizer).toEqual(tokenizer.toJSON());
    const loaded = await loadModel(path);
    expect(loaded).toBeInstanceOf(TransformerLM);
    const x = tf.tensor2d([Array.from(tokenizer.encode('the mat'))]);
    const [before, after] = [built.model, loaded].map((m) => tf.tidy(() => m.predict(x)).dataSync());
    expect(Buffer.from(after.buffer).equals(Buffer.from(before.buffer))).toBe(true);
    const sample = await generate(loaded as TransformerLM, 'the cat sat', { maxTokens: 13, temperature: 0, seed: 0 });
    expect(sample.completion).toBe(' on the mat. ');
    x.dispose();
    loaded.dispose();
  });
});

describe('sampling a token', () => {
  it('draws only among the k most likely tokens, and takes the most likely at temperature 0', () => {
    const logits = Float32Array.from([0.1, 3, -1, 2.5, 0]);
    const rng = createPrng(1);
    const drawn = new Set(Array.from({ length: 300 }, () => sampleToken(logits, 1, 2, rng)));
    expect([...drawn].sort()).toEqual([1, 3]);
    expect(sampleToken(logits, 0, 0, rng)).toBe(1);
  });

  it('flattens the distribution at high temperature: every token gets drawn', () => {
    const logits = Float32Array.from([0.1, 3, -1, 2.5, 0]);
    const rng = createPrng(2);
    const drawn = new Set(Array.from({ length: 500 }, () => sampleToken(logits, 5, 0, rng)));
    expect(drawn.size).toBe(5);
  });
});
