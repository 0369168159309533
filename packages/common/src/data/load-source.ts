// The one entry point that turns a data source spec into a Dataset. Loaded datasets are kept per
// process, so the coordinator's evaluator and its planner (or repeated calls) share one copy.
import { csvDataset } from './csv.js';
import type { Dataset } from './dataset.js';
import { gunzipIfCompressed } from './gzip.js';
import { idxDataset } from './idx.js';
import { readUrl, type FileRef, type ReadUrlOptions } from './read-url.js';
import { parseDataSource, type DataSource, type DataSourceInput } from './source-spec.js';
import { syntheticBinary, syntheticLinear } from './synthetic.js';
import { textDataset } from '../text/text-dataset.js';

export type LoadSourceOptions = ReadUrlOptions;

const loaded = new Map<string, Promise<Dataset>>();

/**
 * Validates `spec` and loads it, once per process for equal specs (concurrent callers share one
 * load; a failed load is forgotten so a retry tries again). The Dataset is shared: do not modify it.
 */
export async function loadSource(spec: DataSourceInput, opts: LoadSourceOptions = {}): Promise<Dataset> {
  const source = parseDataSource(spec);
  const key = JSON.stringify(source);
  let p = loaded.get(key);
  if (!p) {
    p = load(source, opts);
    loaded.set(key, p);
    p.catch(() => loaded.delete(key));
  }
  return p;
}

/** Forgets every loaded dataset, so the next load reads its files again. */
export function clearLoadedDatasets(): void {
  loaded.clear();
}

async function readFileBytes(ref: FileRef, opts: LoadSourceOptions): Promise<Uint8Array> {
  return gunzipIfCompressed(await readUrl(ref, opts), ref.url);
}

async function load(source: DataSource, opts: LoadSourceOptions): Promise<Dataset> {
  switch (source.type) {
    case 'idx': {
      const [images, labels] = await Promise.all([
        readFileBytes({ url: source.images, sha256: source.sha256?.images }, opts),
        readFileBytes({ url: source.labels, sha256: source.sha256?.labels }, opts),
      ]);
      return idxDataset(images, labels, {
        name: source.name ?? source.images,
        imagesFile: source.images,
        labelsFile: source.labels,
        normalize: source.normalize,
        numClasses: source.numClasses,
      });
    }
    case 'csv': {
      const bytes = await readFileBytes(source, opts);
      return csvDataset(new TextDecoder().decode(bytes), source, source.url);
    }
    case 'synthetic-linear':
      return syntheticLinear(source);
    case 'synthetic-binary':
      return syntheticBinary(source);
    case 'text':
      return textDataset(source, opts);
  }
}
