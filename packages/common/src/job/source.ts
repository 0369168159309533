// Where a job's samples come from: one schema per source kind, told apart by `type`. Files are
// named by URL (a path, file://, http(s):// or nats-obj://bucket/name) so the same job runs from a
// laptop's disk, a web server or a JetStream object store.
import { z } from 'zod';
import { textSourceSchema } from '../text/source-spec.js';
import { show } from './messages.js';

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const NATS_OBJECT = /^nats-obj:\/\/[^/]+\/.+$/;

/** The URL forms a data file may take; anything without `scheme://` is a filesystem path. */
export const dataUrlSchema = z
  .string()
  .min(1)
  .superRefine((url, ctx) => {
    const scheme = SCHEME.exec(url)?.[1].toLowerCase();
    if (scheme === undefined || scheme === 'file' || scheme === 'http' || scheme === 'https') return;
    if (scheme === 'nats-obj' && NATS_OBJECT.test(url)) return;
    ctx.addIssue({
      code: 'custom',
      input: url,
      message:
        scheme === 'nats-obj'
          ? `got ${show(url)}, expected nats-obj://BUCKET/NAME (an object in a JetStream object store)`
          : `got ${show(url)}, expected a path, a file:// or http(s):// URL, or nats-obj://BUCKET/NAME`,
    });
  });

const sha256Schema = z.string().regex(/^[0-9a-fA-F]{64}$/, {
  error: (issue) => `got ${show(issue.input)}, expected a sha256 digest (64 hex digits)`,
});

const count = z.number().int().min(1);
const seed = z.number().int().min(0);

export const idxSourceSchema = z.strictObject({
  type: z.literal('idx'),
  images: dataUrlSchema,
  labels: dataUrlSchema,
  /** Digests checked after download; a mismatch fails the load. */
  sha256: z.strictObject({ images: sha256Schema.optional(), labels: sha256Schema.optional() }).optional(),
});

export const csvSourceSchema = z
  .strictObject({
    type: z.literal('csv'),
    url: dataUrlSchema,
    /** Column names of the features, in model-input order. */
    features: z.array(z.string().min(1)).min(1),
    /** Column name of the label. */
    label: z.string().min(1),
    sha256: sha256Schema.optional(),
  })
  .superRefine((csv, ctx) => {
    if (csv.features.includes(csv.label)) {
      ctx.addIssue({
        code: 'custom',
        path: ['label'],
        input: csv.label,
        message: `got ${show(csv.label)}, which is also listed in features; a column is either a feature or the label`,
      });
    }
  });

/** Samples of y = x·w + b plus Gaussian noise of standard deviation `noise`: a regression with a known answer. */
export const syntheticLinearSourceSchema = z.strictObject({
  type: z.literal('synthetic-linear'),
  n: count,
  w: z.array(z.number()).min(1),
  b: z.number(),
  noise: z.number().min(0),
  seed,
});

/** A two-class problem with 0/1 labels; `noise` makes the classes overlap. */
export const syntheticBinarySourceSchema = z.strictObject({
  type: z.literal('synthetic-binary'),
  n: count,
  seed,
  noise: z.number().min(0).optional(),
});

export const jobSourceSchema = z.discriminatedUnion('type', [
  idxSourceSchema,
  csvSourceSchema,
  syntheticLinearSourceSchema,
  syntheticBinarySourceSchema,
  textSourceSchema,
]);
export type JobSource = z.output<typeof jobSourceSchema>;

/** A validation set carved out of the training set: this fraction of it, chosen by the job's seed. */
export const validationSplitSchema = z.strictObject({ fraction: z.number().gt(0).lt(1) });
export type ValidationSplit = z.output<typeof validationSplitSchema>;
