// Public surface of the text data: the byte tokenizer, the text source and its corpus, and token
// windows as dataset samples.
export * from './tokenizer.js';
export * from './source-spec.js';
export { readCorpus, type CorpusDocument } from './corpus.js';
export * from './windows.js';
export { textDataset } from './text-dataset.js';
export { isLanguageModelJob } from './language-model-job.js';
