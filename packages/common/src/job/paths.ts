// Makes the file references in a job spec absolute: a relative path is relative to the spec
// file's directory (not to wherever the process happens to start), URLs are left alone.
import { resolve } from 'node:path';
import { urlScheme } from '../data/url.js';
import type { JobSpec } from './schema.js';
import type { JobSource, ValidationSplit } from './source.js';

function resolveUrl(url: string, baseDir: string): string {
  return urlScheme(url) === undefined ? resolve(baseDir, url) : url;
}

function resolveSource<S extends JobSource | ValidationSplit>(source: S, baseDir: string): S {
  if (!('type' in source)) return source;
  if (source.type === 'idx') {
    return { ...source, images: resolveUrl(source.images, baseDir), labels: resolveUrl(source.labels, baseDir) };
  }
  if (source.type === 'csv') return { ...source, url: resolveUrl(source.url, baseDir) };
  if (source.type === 'text') {
    return {
      ...source,
      ...(source.files && { files: source.files.map((f) => resolveUrl(f, baseDir)) }),
      ...(source.dir && { dir: resolve(baseDir, source.dir) }),
    };
  }
  return source;
}

function resolveModel(model: JobSpec['model'], baseDir: string): JobSpec['model'] {
  if ('layersJson' in model) return { ...model, layersJson: resolveUrl(model.layersJson, baseDir) };
  if ('module' in model) return { ...model, module: resolveUrl(model.module, baseDir) };
  return model;
}

export function resolveSpecPaths(spec: JobSpec, baseDir: string): JobSpec {
  const { train, validation, test } = spec.data;
  return {
    ...spec,
    model: resolveModel(spec.model, baseDir),
    data: {
      train: resolveSource(train, baseDir),
      ...(validation && { validation: resolveSource(validation, baseDir) }),
      ...(test && { test: resolveSource(test, baseDir) }),
    },
    output: resolve(baseDir, spec.output),
    checkpoint: {
      ...spec.checkpoint,
      ...(spec.checkpoint.dir && { dir: resolveUrl(spec.checkpoint.dir, baseDir) }),
    },
  };
}
