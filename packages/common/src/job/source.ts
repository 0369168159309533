// The data part of a job spec. Its sources are the loader's own schemas (data/source-spec.ts), so a
// job file accepts exactly what loadSource reads; only the validation split is the job's own.
import { z } from 'zod';

export { dataUrlSchema } from '../data/url.js';
export { dataSourceSchema as jobSourceSchema, type DataSource as JobSource } from '../data/source-spec.js';

/** A validation set carved out of the training set: this fraction of it, chosen by the job's seed. */
export const validationSplitSchema = z.strictObject({ fraction: z.number().gt(0).lt(1) });
export type ValidationSplit = z.output<typeof validationSplitSchema>;
