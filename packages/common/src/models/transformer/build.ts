// `zoo: transformer-lm` as the job builds it: the config from its params and the text data (window
// length, tokenizer), the model seeded by the job, and the next-token loss it trains with.
import type { TokenizerJson } from '../../text/tokenizer.js';
import type { BuiltModel } from '../built-model.js';
import type { LossName } from '../losses.js';
import type { MetricName } from '../metrics.js';
import { resolveTransformerConfig } from './config.js';
import { tokenCrossEntropy } from './loss.js';
import { TransformerLM } from './model.js';

export interface TransformerBuildOptions {
  seed: number;
  loss?: LossName;
  metrics?: readonly MetricName[];
  /** The data's sample shape: [window length] for text. */
  inputShape?: number[];
  tokenizer?: TokenizerJson;
}

export function buildTransformerLM(params: unknown, options: TransformerBuildOptions): BuiltModel {
  if (options.loss !== undefined && options.loss !== 'sparseCategoricalCrossentropy') {
    throw new Error(
      `zoo model 'transformer-lm' trains on next-token cross-entropy; got loss ${options.loss}. ` +
        `Set loss to sparseCategoricalCrossentropy or leave it out`,
    );
  }
  if (options.metrics !== undefined && options.metrics.length > 0) {
    throw new Error(
      `zoo model 'transformer-lm' reports loss and perplexity; metrics ${options.metrics.join(', ')} count ` +
        `one label per sample and do not apply to token windows. Remove metrics from the job`,
    );
  }
  if (options.inputShape !== undefined && options.inputShape.length !== 1) {
    throw new Error(
      `zoo model 'transformer-lm' reads windows of token ids, shape [length]; the data's samples have shape ` +
        `[${options.inputShape.join(', ')}]. Train it on a text source (data.train.type: text)`,
    );
  }
  const config = resolveTransformerConfig(params, {
    context: options.inputShape?.[0],
    vocabSize: options.tokenizer?.vocabSize,
  });
  const model = new TransformerLM(config, { seed: options.seed, tokenizer: options.tokenizer });
  return {
    model,
    loss: tokenCrossEntropy,
    lossName: 'sparseCategoricalCrossentropy',
    metrics: [],
    description: model.describe(),
  };
}
