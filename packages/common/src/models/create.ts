// Builds the model a job names (the job spec's `model` section), with the loss it trains on and
// the metrics worth reporting for it.
import * as tfjs from '@tensorflow/tfjs';
import type { z } from 'zod';
import type { Tf } from '../backend/tf.js';
import { jobModelSchema } from '../job/index.js';
import { LOSS_NAMES } from '../job/names.js';
import type { TokenizerJson } from '../text/tokenizer.js';
import type { BuiltModel } from './built-model.js';
import { buildFromModule } from './custom-module.js';
import { lossByName, type LossName } from './losses.js';
import { defaultMetrics, type MetricName } from './metrics.js';
import { loadTopologyModel } from './topology.js';
import { LayersTrainableModel, type TrainableModel } from './trainable.js';
import { buildTransformerLM } from './transformer/build.js';
import { createZooModel, ZOO_LOSS } from './zoo.js';

export interface CreateModelOptions {
  /** Seeds weight initialisation (the job's seed); the same seed gives the same initial weights. */
  seed?: number;
  /** The job's loss; zoo models default to their usual one, modules to their own export. */
  loss?: LossName;
  /** The job's metrics; by default those that suit the loss. */
  metrics?: readonly MetricName[];
  /** Shape of one sample as the data has it, for zoo models whose params name none. */
  inputShape?: number[];
  /** The text data's tokenizer, for language models: their vocabulary, saved with the model. */
  tokenizer?: TokenizerJson;
}

function withLoss(model: TrainableModel, lossName: LossName, options: CreateModelOptions): BuiltModel {
  return { model, loss: lossByName(lossName), lossName, metrics: [...(options.metrics ?? defaultMetrics(lossName))] };
}

export async function createModel(
  input: z.input<typeof jobModelSchema>,
  tf: Tf = tfjs,
  options: CreateModelOptions = {},
): Promise<BuiltModel> {
  const spec = jobModelSchema.parse(input);
  const seed = options.seed ?? 0;
  if ('zoo' in spec) {
    const name = spec.zoo;
    if (name === 'transformer-lm') return buildTransformerLM(spec.params, { ...options, seed });
    const model = createZooModel({ name, params: spec.params, seed, inputShape: options.inputShape }, tf);
    return withLoss(new LayersTrainableModel(model), options.loss ?? ZOO_LOSS[name], options);
  }
  if ('layersJson' in spec) {
    const model = new LayersTrainableModel(await loadTopologyModel(spec.layersJson));
    if (!options.loss) {
      model.dispose();
      throw new Error(`model ${spec.layersJson} needs a loss: set the job's loss to one of ${LOSS_NAMES.join(', ')}`);
    }
    return withLoss(model, options.loss, options);
  }
  const { model, loss } = await buildFromModule(spec.module, spec.params, seed, tf);
  if (options.loss) return withLoss(model, options.loss, options);
  if (!loss) {
    model.dispose();
    throw new Error(
      `model module ${spec.module} exports no loss and the job names none; set the job's loss to mse, ` +
        `binaryCrossentropy, sparseCategoricalCrossentropy or categoricalCrossentropy, or export ` +
        `loss(tf, yTrue, yPred) returning one loss per sample`,
    );
  }
  return { model, loss, lossName: 'custom', metrics: [...(options.metrics ?? [])] };
}
