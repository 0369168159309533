// Which model a job trains: a built-in one from the zoo, a saved tf.LayersModel (model.json), or
// an ES module of the user's own. Exactly one of `zoo`, `layersJson`, `module` names it.
import { z } from 'zod';
import { dataUrlSchema } from './source.js';

export const ZOO_MODELS = ['linear', 'perceptron', 'binary-mlp', 'mlp', 'cnn', 'transformer-lm'] as const;

/** Free-form settings handed to the model factory (layer sizes, activations, ...). */
const params = z.record(z.string(), z.unknown()).default(() => ({}));

export const zooModelSchema = z.strictObject({ zoo: z.enum(ZOO_MODELS), params });

/** A tf.LayersModel saved as model.json plus weight files, loaded with tf.loadLayersModel. */
export const layersJsonModelSchema = z.strictObject({ layersJson: dataUrlSchema });

/**
 * An ES module exporting `createModel(tf, params)`, which returns a tf.LayersModel or
 * `{ variables: tf.Variable[], predict(x) }`, and optionally `loss(tf, yTrue, yPred)`, which
 * returns one loss per sample.
 */
export const moduleModelSchema = z.strictObject({ module: z.string().min(1), params });

export const jobModelSchema = z.union([zooModelSchema, layersJsonModelSchema, moduleModelSchema]);
export type JobModel = z.output<typeof jobModelSchema>;
