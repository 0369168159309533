// tfjs-layers models from a topology JSON (model.json as tfjs.converters or model.save write it), from
// a local path or an http(s)/file URL. Listed weights load with it; otherwise the initialisers in the
// JSON run, and rank 0's weights are broadcast at start anyway.
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { layersJsonRefusal } from '../job/model.js';
import { fileLoadHandler } from './file-io.js';

export async function loadTopologyModel(pathOrUrl: string): Promise<tf.LayersModel> {
  const refusal = layersJsonRefusal(pathOrUrl);
  if (refusal) throw new Error(refusal);
  const remote = /^https?:\/\//i.test(pathOrUrl);
  const path = pathOrUrl.startsWith('file:') ? fileURLToPath(pathOrUrl) : pathOrUrl;
  try {
    return await tf.loadLayersModel(remote ? pathOrUrl : fileLoadHandler(path));
  } catch (err) {
    throw new Error(
      `cannot load the tfjs-layers model ${pathOrUrl}: ${(err as Error)?.message ?? String(err)}; expected a ` +
        `model.json with a modelTopology (as tf.LayersModel.save or tensorflowjs_converter write it)`,
      { cause: err },
    );
  }
}
