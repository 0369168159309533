// Public surface of the transformer language model: its config, the model, its loss, loading and sampling.
export * from './config.js';
export { TransformerLM, TRANSFORMER_LM_FORMAT, type TransformerOptions } from './model.js';
export { tokenCrossEntropy } from './loss.js';
export { loadTransformerLM } from './persist.js';
export { buildTransformerLM, type TransformerBuildOptions } from './build.js';
export { generate, sampleToken, type GenerateOptions, type Generated } from './generate.js';
