// Models defined by the user's own ES module: `createModel(tf, params, { seed })` returning a
// tf.LayersModel or plain variables with predict(x), and optionally `loss(tf, yTrue, yPred)` giving
// per-sample losses. The module receives the process's tf so its tensors live in the same engine.
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tfjs from '@tensorflow/tfjs';
import type * as tf from '@tensorflow/tfjs';
import type { Tf } from '../backend/tf.js';
import type { LossFn } from './losses.js';
import {
  LayersTrainableModel,
  VariablesTrainableModel,
  type TrainableModel,
  type VariablesModelDefinition,
} from './trainable.js';

export interface ModelModule {
  createModel(
    tf: Tf,
    params: Record<string, unknown>,
    context: { seed: number },
  ): tf.LayersModel | VariablesModelDefinition | Promise<tf.LayersModel | VariablesModelDefinition>;
  loss?(tf: Tf, yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor;
}

/** A module path as the job gives it (relative to the working directory, absolute, or file://). */
export function resolveModulePath(path: string): string {
  if (path.startsWith('file:')) return fileURLToPath(path);
  return isAbsolute(path) ? path : resolve(process.cwd(), path);
}

export async function importModelModule(path: string): Promise<{ file: string; mod: ModelModule }> {
  const file = resolveModulePath(path);
  let mod: Partial<ModelModule>;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    throw new Error(`model module ${file} failed to import: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  if (typeof mod.createModel !== 'function') {
    throw new Error(
      `model module ${file} has no createModel export; expected \`export function createModel(tf, params)\` ` +
        `returning a tf.LayersModel or { variables, predict(x) }`,
    );
  }
  if (mod.loss !== undefined && typeof mod.loss !== 'function') {
    throw new Error(`model module ${file} exports loss as ${typeof mod.loss}; expected a function (tf, yTrue, yPred)`);
  }
  return { file, mod: mod as ModelModule };
}

function isVariablesDefinition(value: unknown): value is VariablesModelDefinition {
  const v = value as Partial<VariablesModelDefinition> | null;
  if (v == null || typeof v !== 'object' || typeof v.predict !== 'function' || v.variables == null) return false;
  const list = Array.isArray(v.variables) ? v.variables : Object.values(v.variables);
  return list.length > 0 && list.every((x) => x instanceof tfjs.Variable);
}

export async function buildFromModule(
  path: string,
  params: Record<string, unknown>,
  seed: number,
  tf: Tf = tfjs,
): Promise<{ model: TrainableModel; loss?: LossFn }> {
  const { file, mod } = await importModelModule(path);
  let created: unknown;
  try {
    created = await mod.createModel(tf, params, { seed });
  } catch (err) {
    throw new Error(`model module ${file}: createModel threw: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  }
  let model: TrainableModel;
  if (created instanceof tf.LayersModel) model = new LayersTrainableModel(created);
  else if (isVariablesDefinition(created)) model = new VariablesTrainableModel(created, { module: file, params, seed });
  else {
    throw new Error(
      `model module ${file}: createModel returned ${created === null ? 'null' : typeof created}; expected a ` +
        `tf.LayersModel or { variables: tf.Variable[] | Record<string, tf.Variable>, predict(x) } made with the tf it was given`,
    );
  }
  const moduleLoss = mod.loss;
  const loss: LossFn | undefined = moduleLoss && ((yTrue, yPred) => moduleLoss(tf, yTrue, yPred) as tf.Tensor1D);
  return { model, loss };
}
