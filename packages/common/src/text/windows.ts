// Token windows as the samples of the data plan: window i holds tokens [i·stride, i·stride + context + 1)
// of the corpus; its first `context` tokens are the input x and the same run shifted by one the
// targets y. Each window is one sample index, so the plan's seeded permutation uses every window
// once per epoch, and gatherBatch, slices and validation splits work on them unchanged.
import { createDataset, type Dataset } from '../data/dataset.js';
import type { CorpusDocument } from './corpus.js';
import type { Tokenizer, TokenizerJson } from './tokenizer.js';

/** A Dataset of token windows that also says how its ids were made (the model saves it). */
export interface TextDataset extends Dataset {
  tokenizer: TokenizerJson;
}

/** The corpus as one token stream: each document's tokens followed by the end-of-text token. */
export function tokenStream(documents: readonly CorpusDocument[], tokenizer: Tokenizer): Uint16Array {
  const parts = documents.map((d) => tokenizer.encode(d.text));
  const out = new Uint16Array(parts.reduce((n, p) => n + p.length + 1, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
    out[at++] = tokenizer.endOfText;
  }
  return out;
}

/** How many windows of `context` + 1 tokens, `stride` apart, fit in `tokens` tokens. */
export function windowCount(tokens: number, context: number, stride: number): number {
  return tokens < context + 1 ? 0 : Math.floor((tokens - context - 1) / stride) + 1;
}

export interface WindowOptions {
  name: string;
  context: number;
  stride: number;
  tokenizer: Tokenizer;
}

/** Token ids are stored as floats, as every Dataset's values are; ids below 2^24 are exact. */
export function tokenWindows(tokens: Uint16Array, options: WindowOptions): TextDataset {
  const { context, stride, name } = options;
  const count = windowCount(tokens.length, context, stride);
  if (count === 0) {
    throw new Error(
      `${name} holds ${tokens.length} tokens, fewer than one window of context + 1 = ${context + 1}; ` +
        `add text or lower context`,
    );
  }
  const x = new Float32Array(count * context);
  const y = new Float32Array(count * context);
  for (let i = 0; i < count; i++) {
    const from = i * stride;
    for (let j = 0; j < context; j++) {
      x[i * context + j] = tokens[from + j];
      y[i * context + j] = tokens[from + j + 1];
    }
  }
  const dataset = createDataset({ name, count, featureShape: [context], labelShape: [context], x, y });
  return Object.assign(dataset, { tokenizer: options.tokenizer.toJSON() });
}

/** The tokenizer a dataset's ids came from, when it is a text dataset. */
export function datasetTokenizer(ds: Dataset): TokenizerJson | undefined {
  return (ds as Partial<TextDataset>).tokenizer;
}
