// The data source part of a job spec: one definition, validated at runtime, naming where the
// samples come from (files addressed by URL, so pods need no shared volume, or a seeded generator).
import { z } from 'zod';
import { textSourceSchema } from '../text/source-spec.js';

/**
 * Where a file lives: a local path, file://, http(s):// (downloaded once into the cache) or
 * nats-obj://bucket/name (a NATS JetStream object store).
 */
const urlSchema = z.string().min(1, 'a URL or path is required');

const sha256Schema = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'a sha256 checksum is 64 hex digits')
  .transform((s) => s.toLowerCase());

const nameSchema = z.string().min(1).optional();

/** MNIST-format IDX files (raw or gzip), e.g. Fashion-MNIST; images become [rows, cols, 1] floats. */
export const idxSourceSchema = z.strictObject({
  type: z.literal('idx'),
  images: urlSchema,
  labels: urlSchema,
  /** Checksums the files must have; a mismatch fails the load. */
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
export const csvSourceSchema = z.strictObject({
  type: z.literal('csv'),
  url: urlSchema,
  sha256: sha256Schema.optional(),
  features: z.array(z.string().min(1)).min(1),
  label: z.string().min(1),
  labelMap: z.record(z.string(), z.number().int().min(0)).optional(),
  numClasses: z.number().int().min(2).optional(),
  delimiter: z.string().length(1).default(','),
  name: nameSchema,
});

/** y = w·x + b + noise·N(0, 1) with x ~ N(0, I): a regression problem with a known answer. */
export const syntheticLinearSourceSchema = z.strictObject({
  type: z.literal('synthetic-linear'),
  n: z.number().int().positive(),
  w: z.array(z.number()).min(1),
  b: z.number().default(0),
  noise: z.number().min(0).default(0),
  seed: z.number().int(),
  name: nameSchema,
});

/**
 * Two classes in the plane split by the line x0 + x1 = 0: x ~ N(0, I) and the label is 1 when
 * the signed distance to the line plus noise·N(0, 1) is positive. noise 0 is linearly separable;
 * more noise makes the classes overlap near the line.
 */
export const syntheticBinarySourceSchema = z.strictObject({
  type: z.literal('synthetic-binary'),
  n: z.number().int().positive(),
  seed: z.number().int(),
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
  const problems = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  throw new Error(
    `invalid data source: ${problems.join('; ')}. ` +
      `Expected one of type: idx (images, labels), csv (url, features, label), synthetic-linear (n, w, seed), synthetic-binary (n, seed) or text (files or dir, context).`,
  );
}
