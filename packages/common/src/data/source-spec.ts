// Where a job's samples come from: one schema per source kind, told apart by `type`. The job spec
// validates its data sources with these schemas and loadSource validates with the same ones, so a
// job file accepts exactly what the loader reads. Files are named by URL (a path, file://, http(s)://
// or nats-obj://bucket/name), so the same job runs from a laptop's disk, a web server or a
// JetStream object store, and pods need no shared volume.
import { z } from 'zod';
import { formatIssues } from '../protocol/format-issues.js';
import { textSourceSchema } from '../text/source-spec.js';
import { dataUrlSchema } from './url.js';

/** Lowercased, so a digest copied in upper case compares equal to the lower-case hex computed here. */
const sha256Schema = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, {
    error: (issue) => `got ${JSON.stringify(issue.input)}, expected a sha256 digest (64 hex digits)`,
  })
  .transform((s) => s.toLowerCase());

const count = z.number().int().min(1);
const seed = z.number().int().min(0);
const nameSchema = z.string().min(1).optional();

/** MNIST-format IDX files (raw or gzip), e.g. Fashion-MNIST; images become [rows, cols, 1] floats. */
export const idxSourceSchema = z.strictObject({
  type: z.literal('idx'),
  images: dataUrlSchema,
  labels: dataUrlSchema,
  /** Digests checked after download; a mismatch fails the load. */
  sha256: z.strictObject({ images: sha256Schema.optional(), labels: sha256Schema.optional() }).optional(),
  /** Scale pixel bytes to [0, 1]; false keeps 0..255. */
  normalize: z.boolean().default(true),
  /** Defaults to the largest label + 1. */
  numClasses: z.number().int().min(2).max(256).optional(),
  name: nameSchema,
});

/**
 * A CSV file with a header row. Labels are classes when `numClasses` or `labelMap` is given
 * (`labelMap` turns strings such as yes/no into class indices), regression targets otherwise.
 */
export const csvSourceSchema = z
  .strictObject({
    type: z.literal('csv'),
    url: dataUrlSchema,
    sha256: sha256Schema.optional(),
    /** Column names of the features, in model-input order. */
    features: z.array(z.string().min(1)).min(1),
    /** Column name of the label. */
    label: z.string().min(1),
    labelMap: z.record(z.string(), z.number().int().min(0)).optional(),
    numClasses: z.number().int().min(2).optional(),
    delimiter: z.string().length(1).default(','),
    name: nameSchema,
  })
  .superRefine((csv, ctx) => {
    if (csv.features.includes(csv.label)) {
      ctx.addIssue({
        code: 'custom',
        path: ['label'],
        input: csv.label,
        message: `got ${JSON.stringify(csv.label)}, which is also listed in features; a column is either a feature or the label`,
      });
    }
  });

/** y = w·x + b + noise·N(0, 1) with x ~ N(0, I): a regression problem with a known answer. */
export const syntheticLinearSourceSchema = z.strictObject({
  type: z.literal('synthetic-linear'),
  n: count,
  w: z.array(z.number()).min(1),
  b: z.number().default(0),
  noise: z.number().min(0).default(0),
  seed,
  name: nameSchema,
});

/**
 * Two classes in the plane split by the line x0 + x1 = 0: x ~ N(0, I) and the label is 1 when
 * the signed distance to the line plus noise·N(0, 1) is positive. noise 0 is linearly separable;
 * more noise makes the classes overlap near the line.
 */
export const syntheticBinarySourceSchema = z.strictObject({
  type: z.literal('synthetic-binary'),
  n: count,
  seed,
  noise: z.number().min(0).default(0),
  name: nameSchema,
});

export const dataSourceSchema = z.discriminatedUnion('type', [
  idxSourceSchema,
  csvSourceSchema,
  syntheticLinearSourceSchema,
  syntheticBinarySourceSchema,
  textSourceSchema,
]);

/** A data source as written in a job file (defaults may be left out). */
export type DataSourceInput = z.input<typeof dataSourceSchema>;
/** A validated data source with defaults filled in. */
export type DataSource = z.output<typeof dataSourceSchema>;
export type IdxSource = z.output<typeof idxSourceSchema>;
export type CsvSource = z.output<typeof csvSourceSchema>;
export type SyntheticLinearSource = z.output<typeof syntheticLinearSourceSchema>;
export type SyntheticBinarySource = z.output<typeof syntheticBinarySourceSchema>;

/** Validates a data source, with an error that lists every problem and where it is. */
export function parseDataSource(input: unknown): DataSource {
  const parsed = dataSourceSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new Error(
    `invalid data source: ${formatIssues(parsed.error, '(root)')}. ` +
      `Expected one of type: idx (images, labels), csv (url, features, label), synthetic-linear (n, w, seed), synthetic-binary (n, seed) or text (files or dir, context).`,
  );
}
