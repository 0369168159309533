// The built-in models: the classic TensorFlow programs from linear regression to a small CNN. Every
// kernel initialiser is seeded (a different seed per layer, derived from the model's seed), so a
// seed fixes the initial weights on any backend.
import { z } from 'zod';
import type * as tfjs from '@tensorflow/tfjs';
import type { Tf } from '../backend/tf.js';
import type { ZOO_MODELS } from '../job/index.js';
import type { LossName } from './losses.js';

export type ZooName = (typeof ZOO_MODELS)[number];
/** The zoo models built as tf.LayersModels; transformer-lm is built from plain variables (./transformer). */
export type LayersZooName = Exclude<ZooName, 'transformer-lm'>;

const int = z.int().positive();
/** Shape of one sample without the batch axis; defaults to what the data says, then to the model's own. */
const inputShape = z.array(int).min(1).optional();

const PARAMS = {
  linear: z.object({ inputShape, inputs: int.default(1) }).strict(),
  perceptron: z.object({ inputShape, inputs: int.default(2) }).strict(),
  'binary-mlp': z.object({ inputShape, inputs: int.default(2), hidden: int.default(64) }).strict(),
  mlp: z.object({ inputShape, hidden: int.default(128), classes: int.min(2).default(10) }).strict(),
  cnn: z
    .object({
      inputShape,
      classes: int.min(2).default(10),
      /** Filters of the two conv layers. */
      filters: z.tuple([int, int]).default([32, 64]),
      /** Units of the dense layer before the classifier. */
      dense: int.default(128),
      /** [height, width, channels] the flat or 2-D input is reshaped to; defaults from inputShape. */
      image: z.tuple([int, int, int]).optional(),
    })
    .strict(),
} satisfies Record<LayersZooName, z.ZodType>;

/** The loss each zoo model trains with unless the spec names another. */
export const ZOO_LOSS: Record<ZooName, LossName> = {
  linear: 'mse',
  perceptron: 'binaryCrossentropy',
  'binary-mlp': 'binaryCrossentropy',
  mlp: 'sparseCategoricalCrossentropy',
  cnn: 'sparseCategoricalCrossentropy',
  'transformer-lm': 'sparseCategoricalCrossentropy',
};

/** A 32-bit seed per layer (FNV-1a of "seed:layer"), so neighbouring model seeds share no layer seeds. */
function layerSeed(seed: number, layer: number): number {
  let h = 0x811c9dc5;
  for (const c of `${seed}:${layer}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h >>> 0;
}

function parseParams<N extends LayersZooName>(name: N, params: unknown): z.output<(typeof PARAMS)[N]> {
  const parsed = PARAMS[name].safeParse(params);
  if (!parsed.success) throw new Error(`invalid params for zoo model '${name}':\n${z.prettifyError(parsed.error)}`);
  return parsed.data as z.output<(typeof PARAMS)[N]>;
}

export interface ZooSpec {
  name: LayersZooName;
  params: Record<string, unknown>;
  seed: number;
  /** The data's sample shape, used when params give no inputShape. */
  inputShape?: number[];
}

export function createZooModel(spec: ZooSpec, tf: Tf): tfjs.LayersModel {
  let layer = 0;
  const init = () => ({
    kernelInitializer: tf.initializers.glorotUniform({ seed: layerSeed(spec.seed, layer++) }),
    biasInitializer: 'zeros' as const,
  });
  const dense = (units: number, activation?: 'relu' | 'sigmoid' | 'softmax', inputShape?: number[]) =>
    tf.layers.dense({ units, activation, inputShape, ...init() });

  switch (spec.name) {
    case 'linear': {
      const p = parseParams('linear', spec.params);
      return tf.sequential({ layers: [dense(1, undefined, p.inputShape ?? spec.inputShape ?? [p.inputs])] });
    }
    case 'perceptron': {
      const p = parseParams('perceptron', spec.params);
      return tf.sequential({ layers: [dense(1, 'sigmoid', p.inputShape ?? spec.inputShape ?? [p.inputs])] });
    }
    case 'binary-mlp': {
      const p = parseParams('binary-mlp', spec.params);
      return tf.sequential({
        layers: [
          dense(p.hidden, 'relu', p.inputShape ?? spec.inputShape ?? [p.inputs]),
          dense(p.hidden, 'relu'),
          dense(1, 'sigmoid'),
        ],
      });
    }
    case 'mlp': {
      const p = parseParams('mlp', spec.params);
      const inputShape = p.inputShape ?? spec.inputShape ?? [28, 28];
      // tfjs's Flatten refuses input that is already flat.
      const hidden =
        inputShape.length > 1
          ? [tf.layers.flatten({ inputShape }), dense(p.hidden, 'relu')]
          : [dense(p.hidden, 'relu', inputShape)];
      return tf.sequential({ layers: [...hidden, dense(p.classes, 'softmax')] });
    }
    case 'cnn': {
      const p = parseParams('cnn', spec.params);
      const inputShape = p.inputShape ?? spec.inputShape ?? [28, 28, 1];
      const image = p.image ?? (inputShape.length === 2 ? [inputShape[0], inputShape[1], 1] : inputShape);
      const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
      if (image.length !== 3 || size(image) !== size(inputShape)) {
        throw new Error(
          `zoo model 'cnn' needs images: inputShape [height, width] or [height, width, channels], or params.image ` +
            `[height, width, channels] with as many values as inputShape; got inputShape [${inputShape.join(', ')}]` +
            `${p.image ? ` and image [${p.image.join(', ')}]` : ''}`,
        );
      }
      const conv = (filters: number, shape?: number[]) =>
        tf.layers.conv2d({ filters, kernelSize: 3, activation: 'relu', inputShape: shape, ...init() });
      const reshape = tf.util.arraysEqual(image, inputShape)
        ? []
        : [tf.layers.reshape({ targetShape: image, inputShape })];
      const first = conv(p.filters[0], reshape.length ? undefined : inputShape);
      return tf.sequential({
        layers: [
          ...reshape,
          first,
          tf.layers.maxPooling2d({ poolSize: 2 }),
          conv(p.filters[1]),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.flatten(),
          dense(p.dense, 'relu'),
          dense(p.classes, 'softmax'),
        ],
      });
    }
  }
}
