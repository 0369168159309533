// The shape of a transformer language model: its zoo params as a job writes them, and the resolved
// configuration (every size known) that the model is built from and saved with.
import { z } from 'zod';

const positiveInt = z.number().int().min(1);

/** params of `zoo: transformer-lm`. context and vocabSize default to what the text data says. */
export const transformerParamsSchema = z.strictObject({
  /** Transformer blocks. */
  layers: positiveInt.default(2),
  /** Attention heads per block; dModel must be a multiple of it. */
  heads: positiveInt.default(4),
  /** Width of the residual stream (embedding size). */
  dModel: positiveInt.default(128),
  /** Longest input in tokens (rows of the position embedding); the data's window length when left out. */
  context: positiveInt.optional(),
  /** Token ids 0..vocabSize-1; defaults to the size of the text data's tokenizer. */
  vocabSize: z.number().int().min(2).optional(),
  /** Width of each block's MLP as a multiple of dModel. */
  mlpRatio: positiveInt.default(4),
});
export type TransformerParamsInput = z.input<typeof transformerParamsSchema>;

export const transformerConfigSchema = z.strictObject({
  layers: positiveInt,
  heads: positiveInt,
  dModel: positiveInt,
  context: positiveInt,
  vocabSize: z.number().int().min(2),
  mlpRatio: positiveInt,
});
export type TransformerConfig = z.infer<typeof transformerConfigSchema>;

export interface TransformerDefaults {
  /** The data's window length. */
  context?: number;
  /** The tokenizer's vocabulary size. */
  vocabSize?: number;
}

/** The full configuration from a job's params and what the data says; errors name the param to set. */
export function resolveTransformerConfig(params: unknown, defaults: TransformerDefaults = {}): TransformerConfig {
  const parsed = transformerParamsSchema.safeParse(params ?? {});
  if (!parsed.success) {
    throw new Error(`invalid params for zoo model 'transformer-lm':\n${z.prettifyError(parsed.error)}`);
  }
  const p = parsed.data;
  const context = p.context ?? defaults.context;
  const vocabSize = p.vocabSize ?? defaults.vocabSize;
  if (context === undefined || vocabSize === undefined) {
    throw new Error(
      `zoo model 'transformer-lm' needs its ${context === undefined ? 'context length' : 'vocabulary size'}: ` +
        `train it on a text source (data.train.type: text), which gives both, or set params.` +
        `${context === undefined ? 'context' : 'vocabSize'}`,
    );
  }
  if (p.dModel % p.heads !== 0) {
    throw new Error(
      `zoo model 'transformer-lm': params.dModel ${p.dModel} is not a multiple of params.heads ${p.heads}; ` +
        `each head gets dModel / heads dimensions, so choose dModel divisible by heads`,
    );
  }
  // Positions the windows never reach would stay untrained, and sampling would read them.
  if (defaults.context !== undefined && defaults.context !== context) {
    throw new Error(
      `zoo model 'transformer-lm': the data's windows hold ${defaults.context} tokens but params.context is ` +
        `${context}; leave params.context out, or set it and the text source's context alike`,
    );
  }
  return { layers: p.layers, heads: p.heads, dModel: p.dModel, context, vocabSize, mlpRatio: p.mlpRatio };
}

/** Parameters of a model of this configuration (the output layer is tied to the token embedding). */
export function transformerParameterCount(c: TransformerConfig): number {
  const d = c.dModel;
  const hidden = c.mlpRatio * d;
  const block = 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * hidden + hidden) + (hidden * d + d);
  return c.vocabSize * d + c.context * d + c.layers * block + 2 * d;
}
