// Loading trained models that their save(dir) wrote in TensorFlow.js format. Layers models are a
// standard model.json + weights shard that tf.loadLayersModel reads anywhere; variables models keep
// the same weights format next to module.json, which holds the params and seed their module rebuilds
// them with; a transformer-lm keeps its config and tokenizer in model.json itself.
//
// Loading a variables model runs its module's code, so the module is always the one the user names
// (a flag, a job file), never the path module.json records: saved files may come from anywhere.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as tfjs from '@tensorflow/tfjs';
import type { Tf } from '../backend/tf.js';
import { buildFromModule, resolveModulePath } from './custom-module.js';
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

export interface LoadModelOptions {
  /**
   * The ES module that rebuilds a variables model (the job's model.module), as the user gave it:
   * required to load one. Other models need none and never import it.
   */
  module?: string;
}

/**
 * A variables model was loaded without a module named by the caller. Each command says how to name
 * one (a flag, a job file); `recorded` is what module.json says, for the message only.
 */
export class ModelModuleRequiredError extends Error {
  override name = 'ModelModuleRequiredError';
  constructor(
    readonly dir: string,
    readonly recorded: string,
  ) {
    super(
      `${dir} holds a model of a custom module (its ${MODULE_JSON} says ${JSON.stringify(recorded)}); loading it ` +
        `runs that module's code, so the module must be named by whoever loads it, not taken from the saved files`,
    );
  }
}

/** Loads what a model's save(dir) wrote into dir (or a model.json path). */
export async function loadModel(path: string, tf: Tf = tfjs, options: LoadModelOptions = {}): Promise<TrainableModel> {
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
      `cannot read ${sourceFile}, which holds the params of this variables model: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (!options.module) throw new ModelModuleRequiredError(dirname(file), String(source.module));
  const { model } = await buildFromModule(options.module, source.params ?? {}, source.seed ?? 0, tf);
  if (!(model instanceof VariablesTrainableModel)) {
    model.dispose();
    throw new Error(`module ${options.module} returns a layers model, but ${file} holds saved variables`);
  }
  await loadWeightsInto(file, json.weightsManifest, model, `module ${resolveModulePath(options.module)}`);
  return model;
}
