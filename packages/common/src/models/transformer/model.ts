// A decoder-only transformer language model (GPT-2's layout at any size): token and position
// embeddings, pre-norm blocks of causal self-attention and a GELU MLP with residuals, a final layer
// norm and an output layer tied to the token embedding. Its weights are plain variables in a fixed
// order, so it trains through the same GradientStep as every other model.
import * as tf from '@tensorflow/tfjs';
import { createPrng } from '../../data/prng.js';
import type { TokenizerJson } from '../../text/tokenizer.js';
import { saveNamedVariables } from '../file-io.js';
import type { PredictOptions, TrainableModel } from '../trainable.js';
import { transformerParameterCount, type TransformerConfig } from './config.js';
import { causalMask, layerNorm, matMul2d, transformerBlock, type Block, type Linear, type Norm } from './layers.js';

/** model.json's `format` for a saved transformer-lm; it also holds `config` and `tokenizer`. */
export const TRANSFORMER_LM_FORMAT = 'tfjs-ddp-transformer-lm';

/** Standard deviation of the initial weights, as GPT-2. */
const INIT_STD = 0.02;
/** Keeps the initial weights' stream apart from the data plan's streams of the same seed. */
const INIT_STREAM = 0x746c6d69;

export interface TransformerOptions {
  /** Seeds the initial weights; absent: zeros, for a model whose weights are about to be loaded. */
  seed?: number;
  /** Saved with the model so that text can be encoded and decoded as in training. */
  tokenizer?: TokenizerJson;
}

export class TransformerLM implements TrainableModel {
  readonly kind = 'variables';
  /** Saved weight names, in variable order. */
  readonly names: string[] = [];
  readonly tokenizer?: TokenizerJson;
  private readonly vars: tf.Variable[] = [];
  private readonly tokenEmbedding: tf.Variable;
  private readonly positionEmbedding: tf.Variable;
  private readonly blocks: Block[] = [];
  private readonly finalNorm: Norm;

  constructor(
    readonly config: TransformerConfig,
    options: TransformerOptions = {},
  ) {
    this.tokenizer = options.tokenizer;
    const { vocabSize, context, dModel: d, layers, mlpRatio } = config;
    const rng = options.seed === undefined ? undefined : createPrng(options.seed, INIT_STREAM);
    const normal = (shape: number[], std: number) => {
      const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (rng) for (let i = 0; i < values.length; i++) values[i] = rng.normal() * std;
      return values;
    };
    const add = (name: string, shape: number[], values: Float32Array) => {
      const v = tf.tidy(() => tf.variable(tf.tensor(values, shape, 'float32'), true));
      this.names.push(name);
      this.vars.push(v);
      return v;
    };
    const weight = (name: string, shape: number[], std = INIT_STD) => add(name, shape, normal(shape, std));
    const constant = (name: string, size: number, value: number) =>
      add(name, [size], new Float32Array(size).fill(value));
    const norm = (name: string): Norm => ({
      gamma: constant(`${name}.gamma`, d, 1),
      beta: constant(`${name}.beta`, d, 0),
    });
    const dense = (name: string, inputs: number, outputs: number, std = INIT_STD): Linear => ({
      kernel: weight(`${name}.kernel`, [inputs, outputs], std),
      bias: constant(`${name}.bias`, outputs, 0),
    });

    this.tokenEmbedding = weight('token_embedding', [vocabSize, d]);
    this.positionEmbedding = weight('position_embedding', [context, d]);
    // Residual projections start smaller, so the sum over blocks keeps the stream's scale (GPT-2).
    const residualStd = INIT_STD / Math.sqrt(2 * layers);
    for (let i = 0; i < layers; i++) {
      const at = `block_${i}`;
      this.blocks.push({
        ln1: norm(`${at}.ln1`),
        qkv: dense(`${at}.attention.qkv`, d, 3 * d),
        proj: dense(`${at}.attention.proj`, d, d, residualStd),
        ln2: norm(`${at}.ln2`),
        fc: dense(`${at}.mlp.fc`, d, mlpRatio * d),
        out: dense(`${at}.mlp.proj`, mlpRatio * d, d, residualStd),
      });
    }
    this.finalNorm = norm('final_norm');
  }

  variables(): tf.Variable[] {
    return this.vars;
  }

  get parameterCount(): number {
    return transformerParameterCount(this.config);
  }

  /** One line for the logs: the shape and the parameter count. */
  describe(): string {
    const c = this.config;
    return (
      `transformer-lm: ${c.layers} layers, ${c.heads} heads, d_model ${c.dModel}, context ${c.context}, ` +
      `vocabulary ${c.vocabSize}: ${this.parameterCount.toLocaleString('en-US')} parameters`
    );
  }

  /** Token ids [batch, length] (floats or ints, length ≤ context) → next-token logits [batch, length, vocabSize]. */
  predict(x: tf.Tensor, _options?: PredictOptions): tf.Tensor3D {
    const { context, dModel, heads, vocabSize } = this.config;
    const length = x.shape[1] ?? 0;
    if (x.rank !== 2 || length < 1 || length > context) {
      throw new Error(
        `transformer-lm expects token ids of shape [batch, length] with 1 <= length <= ${context}; ` +
          `got [${x.shape.join(', ')}]`,
      );
    }
    const batch = x.shape[0];
    return tf.tidy(() => {
      const tokens = tf.gather(this.tokenEmbedding, tf.cast(x, 'int32'));
      const positions = tf.slice(this.positionEmbedding, [0, 0], [length, dModel]);
      let h = tf.reshape(tf.add(tokens, positions), [batch * length, dModel]) as tf.Tensor2D;
      const mask = causalMask(length);
      for (const block of this.blocks) h = transformerBlock(h, block, { batch, length, heads }, mask);
      const logits = matMul2d(layerNorm(h, this.finalNorm), tf.transpose(this.tokenEmbedding as tf.Tensor2D));
      return tf.reshape(logits, [batch, length, vocabSize]) as tf.Tensor3D;
    });
  }

  /** model.json (format, config, tokenizer, manifest) and the weights shard. */
  async save(dir: string): Promise<void> {
    await saveNamedVariables(dir, this, {
      format: TRANSFORMER_LM_FORMAT,
      config: this.config,
      ...(this.tokenizer && { tokenizer: this.tokenizer }),
    });
  }

  dispose(): void {
    tf.dispose(this.vars);
  }
}
