// Sampling text from a trained language model, one token at a time: the last `context` tokens go in,
// the last position's logits are scaled by the temperature, cut to the top k, and a token is drawn
// from their softmax with a seeded generator (so a seed reproduces a sample).
import * as tf from '@tensorflow/tfjs';
import { createPrng, type Prng } from '../../data/prng.js';
import { tokenizerFromJson } from '../../text/tokenizer.js';
import type { TransformerLM } from './model.js';

export interface GenerateOptions {
  /** New tokens to draw at most. */
  maxTokens: number;
  /** Divides the logits: below 1 sharpens, above 1 flattens; 0 always takes the most likely token. */
  temperature: number;
  /** Draw only among the k most likely tokens; 0 or absent: all of them. */
  topK?: number;
  seed: number;
}

export interface Generated {
  /** The text after the prompt. */
  completion: string;
  /** Its token ids. */
  tokens: number[];
  /** Why sampling stopped: the token budget ran out, or the model ended the document. */
  stop: 'maxTokens' | 'endOfText';
}

/** Index drawn from softmax(logits / temperature) restricted to the top k. */
export function sampleToken(logits: Float32Array, temperature: number, topK: number, rng: Prng): number {
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const k = topK > 0 ? Math.min(topK, logits.length) : logits.length;
  const cutoff = k < logits.length ? Float64Array.from(logits).sort().reverse()[k - 1] : -Infinity;
  const weights = new Float64Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] >= cutoff) max = Math.max(max, logits[i]);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    weights[i] = logits[i] >= cutoff ? Math.exp((logits[i] - max) / temperature) : 0;
    total += weights[i];
  }
  let u = rng.float() * total;
  for (let i = 0; i < weights.length; i++) {
    u -= weights[i];
    if (u < 0 && weights[i] > 0) return i;
  }
  return weights.findLastIndex((w) => w > 0);
}

export async function generate(model: TransformerLM, prompt: string, options: GenerateOptions): Promise<Generated> {
  if (!model.tokenizer) {
    throw new Error(
      'this model was saved without a tokenizer, so text cannot be encoded for it; train it on a text source',
    );
  }
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 1) {
    throw new Error(`maxTokens must be a whole number of at least 1; got ${options.maxTokens}`);
  }
  if (!(options.temperature >= 0)) throw new Error(`temperature must be >= 0; got ${options.temperature}`);
  const tokenizer = tokenizerFromJson(model.tokenizer);
  const rng = createPrng(options.seed);
  const { context, vocabSize } = model.config;
  // Training saw every document begin after an end-of-text token; the prompt starts a document too.
  const ids = [tokenizer.endOfText, ...tokenizer.encode(prompt)];
  const tokens: number[] = [];
  while (tokens.length < options.maxTokens) {
    const window = ids.slice(-context);
    const logits = tf.tidy(() => {
      const out = model.predict(tf.tensor2d([window], [1, window.length], 'int32'));
      return tf.slice(out, [0, window.length - 1, 0], [1, 1, vocabSize]);
    });
    let values: Float32Array;
    try {
      values = (await logits.data()) as Float32Array;
    } finally {
      logits.dispose();
    }
    const next = sampleToken(values, options.temperature, options.topK ?? 0, rng);
    if (next === tokenizer.endOfText) return { completion: tokenizer.decode(tokens), tokens, stop: 'endOfText' };
    tokens.push(next);
    ids.push(next);
  }
  return { completion: tokenizer.decode(tokens), tokens, stop: 'maxTokens' };
}
