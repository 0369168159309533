// Loads a saved transformer-lm: the config and tokenizer from model.json, the weights from its shard.
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { tokenizerJsonSchema } from '../../text/tokenizer.js';
import { loadWeightsInto } from '../file-io.js';
import { transformerConfigSchema } from './config.js';
import { TransformerLM } from './model.js';

const savedSchema = z.object({
  config: transformerConfigSchema,
  tokenizer: tokenizerJsonSchema.optional(),
  weightsManifest: z.array(z.object({ paths: z.array(z.string()), weights: z.array(z.any()) })),
});

/** `json` is the parsed model.json at `file`. */
export async function loadTransformerLM(file: string, json: unknown): Promise<TransformerLM> {
  const parsed = savedSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(
      `${file} is not a complete transformer-lm model.json: ${z.prettifyError(parsed.error)}; ` +
        `expected config, tokenizer and weightsManifest as training saves them`,
    );
  }
  const saved = parsed.data;
  const model = new TransformerLM(saved.config, { tokenizer: saved.tokenizer });
  const manifest = saved.weightsManifest as tf.io.WeightsManifestConfig;
  await loadWeightsInto(file, manifest, model, 'the transformer-lm config in model.json');
  return model;
}
