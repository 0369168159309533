// Public surface of the job spec: the schema, its types, loading and validation, and the hash.
export { jobSpecSchema, type JobSpec, type JobSpecInput } from './schema.js';
export { jobModelSchema, ZOO_MODELS, type JobModel } from './model.js';
export { jobOptimizerSchema, type JobOptimizer } from './optimizer.js';
export {
  jobSourceSchema,
  validationSplitSchema,
  dataUrlSchema,
  type JobSource,
  type ValidationSplit,
} from './source.js';
export { JobSpecError, type JobSpecIssue } from './issues.js';
export { loadJobSpec, parseJobSpec, validateJobSpec, type JobSpecOptions } from './parse.js';
export { specHash } from './hash.js';
export { formatJobSpec } from './format.js';
