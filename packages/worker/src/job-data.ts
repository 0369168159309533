// Loads the datasets a job names (train, validation, test) once per process. A validation
// fraction is split off train with the job's seed, so every worker derives the same split.
import { loadSource, splitValidation, type Dataset, type JobSpec, type NatsConnection } from '@tfjs-ddp/common';

export interface JobData {
  train: Dataset;
  validation?: Dataset;
  test?: Dataset;
}

export async function loadJobData(spec: JobSpec, nc?: NatsConnection): Promise<JobData> {
  const opts = { nc };
  const full = await loadSource(spec.data.train, opts);
  let train = full;
  let validation: Dataset | undefined;
  const v = spec.data.validation;
  if (v && 'fraction' in v) ({ train, validation } = splitValidation(full, v.fraction, spec.seed));
  else if (v) validation = await loadSource(v, opts);
  const test = spec.data.test ? await loadSource(spec.data.test, opts) : undefined;
  return { train, validation, test };
}

export function datasetSizes(d: JobData): { train: number; validation: number; test: number } {
  return { train: d.train.count, validation: d.validation?.count ?? 0, test: d.test?.count ?? 0 };
}
