// TensorFlow.js model files on the local filesystem (model.json + one weights shard) without
// tfjs-node, whose file:// handler is the only one tfjs ships for Node. Files are written to a
// temporary name and renamed, so a reader never sees a half-written model.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_SHARD = 'group1-shard1of1.bin';

async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

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
  await mkdir(dir, { recursive: true });
  const bytes = weightData == null ? new ArrayBuffer(0) : tf.io.CompositeArrayBuffer.join(weightData);
  await writeAtomic(join(dir, WEIGHTS_SHARD), new Uint8Array(bytes));
  const manifest: tf.io.WeightsManifestConfig = [{ paths: [WEIGHTS_SHARD], weights: weightSpecs }];
  await writeAtomic(join(dir, MODEL_JSON), JSON.stringify({ ...modelJSON, weightsManifest: manifest }));
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
