// Loads a text source into a dataset of token windows: read the corpus, tokenize it as one stream
// with end-of-text tokens between documents, cut the stream into windows.
import type { ReadUrlOptions } from '../data/read-url.js';
import { readCorpus } from './corpus.js';
import type { TextSource } from './source-spec.js';
import { createTokenizer } from './tokenizer.js';
import { tokenStream, tokenWindows, type TextDataset } from './windows.js';

export async function textDataset(source: TextSource, opts: ReadUrlOptions = {}): Promise<TextDataset> {
  const documents = await readCorpus(source, opts);
  const tokenizer = createTokenizer(source.tokenizer);
  const name = source.name ?? `text(${source.dir ?? `${documents.length} files`})`;
  return tokenWindows(tokenStream(documents, tokenizer), {
    name,
    context: source.context,
    stride: source.stride ?? source.context,
    tokenizer,
  });
}
