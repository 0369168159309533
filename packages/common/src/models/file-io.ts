// TensorFlow.js model files on the local filesystem (model.json + one weights shard) without
// tfjs-node, whose file:// handler is the only one tfjs ships for Node, for layers models and for
// models of plain named variables alike. Files are written to a temporary name and renamed, so a
// reader never sees a half-written model.
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../write-file-atomic.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_SHARD = 'group1-shard1of1.bin';

/**
 * Writes `dir/model.json` (the given fields plus a weights manifest) and `dir/group1-shard1of1.bin`.
 * The shard goes first so that a model.json on disk always has its weights.
 */
export async function writeModelFiles(
  dir: string,
  modelJSON: Record<string, unknown>,
  weightSpecs: tf.io.WeightsManifestEntry[],
  weightData: tf.io.WeightData | undefined,
): Promise<void> {
  const bytes = weightData == null ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(weightData);
  await writeFileAtomic(join(dir, WEIGHTS_SHARD), new Uint8Array(bytes));
  const manifest: tf.io.WeightsManifestConfig = [{ paths: [WEIGHTS_SHARD], weights: weightSpecs }];
  await writeFileAtomic(join(dir, MODEL_JSON), JSON.stringify({ ...modelJSON, weightsManifest: manifest }));
}

/** A model of plain variables, saved under its names in variable order (a variables model, a transformer-lm). */
export interface NamedVariablesModel {
  readonly names: readonly string[];
  variables(): tf.Variable[];
  dispose(): void;
}

/** Writes the model's variables under their names, with the given model.json fields. */
export async function saveNamedVariables(
  dir: string,
  model: NamedVariablesModel,
  modelJSON: Record<string, unknown>,
): Promise<void> {
  const variables = model.variables();
  const { data, specs } = await tf.io.encodeWeights(model.names.map((name, i) => ({ name, tensor: variables[i] })));
  const generatedBy = `TensorFlow.js tfjs-core v${tf.version_core}`;
  await writeModelFiles(dir, { ...modelJSON, generatedBy }, specs, data);
}

/**
 * Copies saved values into the model's variables, by name; every variable must be present with its
 * shape. `expected` says what the weights must fit (the module, the config) when they do not.
 */
export function assignNamed(model: NamedVariablesModel, values: tf.NamedTensorMap, expected: string): void {
  const variables = model.variables();
  model.names.forEach((name, i) => {
    const value = values[name];
    const variable = variables[i];
    if (!value || !tf.util.arraysEqual(value.shape, variable.shape)) {
      throw new Error(
        `saved weights do not match ${expected}: variable '${name}' expects shape ` +
          `[${variable.shape.join(', ')}], saved ${value ? `[${value.shape.join(', ')}]` : 'nothing'}`,
      );
    }
    variable.assign(value);
  });
}

/**
 * Reads the weights the model.json at `file` lists into the model (assignNamed); a model they cannot
 * be read into is disposed before the error is thrown.
 */
export async function loadWeightsInto(
  file: string,
  manifest: tf.io.WeightsManifestConfig,
  model: NamedVariablesModel,
  expected: string,
): Promise<void> {
  let values: tf.NamedTensorMap = {};
  try {
    const [specs, data] = await readWeights(file, manifest);
    values = tf.io.decodeWeights(data, specs);
    assignNamed(model, values, expected);
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    tf.dispose(Object.values(values));
  }
}

/** The model.json a path names: the file itself, or model.json inside a directory. */
export function modelJsonPath(path: string): string {
  return path.endsWith('.json') ? resolve(path) : resolve(path, MODEL_JSON);
}

export async function readModelJson(path: string): Promise<Record<string, unknown> & tf.io.ModelJSON> {
  const file = modelJsonPath(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read model file ${file}: ${(err as Error).message}; expected a TensorFlow.js model.json`, {
      cause: err,
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`model file ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Reads every shard the manifest lists, relative to the model.json, joined in manifest order. */
export async function readWeights(
  jsonFile: string,
  manifest: tf.io.WeightsManifestConfig,
): Promise<[tf.io.WeightsManifestEntry[], ArrayBuffer]> {
  const buffers: ArrayBuffer[] = [];
  for (const group of manifest) {
    for (const path of group.paths) {
      const buf = await readFile(join(dirname(jsonFile), path));
      buffers.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
    }
  }
  return [tf.io.getWeightSpecs(manifest), tf.io.CompositeArrayBuffer.join(buffers)];
}

export function fileSaveHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts) {
      const { weightSpecs, weightData, ...rest } = artifacts;
      await writeModelFiles(dir, rest as Record<string, unknown>, weightSpecs ?? [], weightData);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

/** Loads a layers model.json (and its shards) from a file path or a directory holding model.json. */
export function fileLoadHandler(path: string): tf.io.IOHandler {
  return {
    async load() {
      const file = modelJsonPath(path);
      const modelJSON = await readModelJson(file);
      return tf.io.getModelArtifactsForJSON(modelJSON, (manifest) => readWeights(file, manifest));
    },
  };
}
