// Which model a job trains: a built-in one from the zoo, a saved tf.LayersModel (model.json), or
// an ES module of the user's own. Exactly one of `zoo`, `layersJson`, `module` names it.
import { z } from 'zod';
import { urlScheme } from '../data/url.js';

export const ZOO_MODELS = ['linear', 'perceptron', 'binary-mlp', 'mlp', 'cnn', 'transformer-lm'] as const;

/** Free-form settings handed to the model factory (layer sizes, activations, ...). */
const params = z.record(z.string(), z.unknown()).default(() => ({}));

export const zooModelSchema = z.strictObject({ zoo: z.enum(ZOO_MODELS), params });

/**
 * Why a layers model.json at this URL cannot be loaded, or undefined when it can. tf.loadLayersModel
 * reads a path or an http(s) URL and fetches the weight files next to the model.json itself, so a
 * model in an object store needs its directory fetched first.
 */
export function layersJsonRefusal(url: string): string | undefined {
  const scheme = urlScheme(url);
  if (scheme === undefined || scheme === 'file' || scheme === 'http' || scheme === 'https') return undefined;
  if (scheme === 'nats-obj') {
    return (
      `cannot load the tfjs-layers model ${url} directly: fetch it from the object store to a local ` +
      `directory first and pass that path`
    );
  }
  return `got ${JSON.stringify(url)}, expected the path, file:// or http(s):// URL of a tfjs-layers model.json`;
}

/** A tf.LayersModel saved as model.json plus weight files, loaded with tf.loadLayersModel. */
export const layersJsonModelSchema = z.strictObject({
  layersJson: z
    .string()
    .min(1)
    .superRefine((url, ctx) => {
      const refusal = layersJsonRefusal(url);
      if (refusal) ctx.addIssue({ code: 'custom', input: url, message: refusal });
    }),
});

/**
 * An ES module exporting `createModel(tf, params)`, which returns a tf.LayersModel or
 * `{ variables: tf.Variable[], predict(x) }`, and optionally `loss(tf, yTrue, yPred)`, which
 * returns one loss per sample.
 */
export const moduleModelSchema = z.strictObject({ module: z.string().min(1), params });

export const jobModelSchema = z.union([zooModelSchema, layersJsonModelSchema, moduleModelSchema]);
export type JobModel = z.output<typeof jobModelSchema>;
