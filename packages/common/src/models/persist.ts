// Loading trained models that their save(dir) wrote in TensorFlow.js format. Layers models are a
// standard model.json + weights shard that tf.loadLayersModel reads anywhere; variables models keep
// the same weights format next to module.json, which names the module that rebuilds them; a
// transformer-lm keeps its config and tokenizer in model.json itself.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as tfjs from '@tensorflow/tfjs';
import type { Tf } from '../backend/tf.js';
import { buildFromModule } from './custom-module.js';
import { fileLoadHandler, loadWeightsInto, modelJsonPath, readModelJson } from './file-io.js';
import {
  LayersTrainableModel,
  MODULE_JSON,
  VARIABLES_FORMAT,
  VariablesTrainableModel,
  type ModuleSource,
  type TrainableModel,
} from './trainable.js';
import { loadTransformerLM, TRANSFORMER_LM_FORMAT } from './transformer/index.js';

/** Loads what a model's save(dir) wrote into dir (or a model.json path). */
export async function loadModel(path: string, tf: Tf = tfjs): Promise<TrainableModel> {
  const file = modelJsonPath(path);
  const json = await readModelJson(file);
  if (json.format === TRANSFORMER_LM_FORMAT) return loadTransformerLM(file, json);
  if (json.format !== VARIABLES_FORMAT) {
    return new LayersTrainableModel(await tf.loadLayersModel(fileLoadHandler(file)));
  }
  const sourceFile = join(dirname(file), MODULE_JSON);
  let source: ModuleSource;
  try {
    source = JSON.parse(await readFile(sourceFile, 'utf8'));
  } catch (err) {
    throw new Error(
      `cannot read ${sourceFile}, which names the module of this variables model: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const { model } = await buildFromModule(source.module, source.params ?? {}, source.seed ?? 0, tf);
  if (!(model instanceof VariablesTrainableModel)) {
    model.dispose();
    throw new Error(`module ${source.module} now returns a layers model, but ${file} holds saved variables`);
  }
  await loadWeightsInto(file, json.weightsManifest, model, `module ${source.module}`);
  return model;
}
