// The job spec: everything a training run needs, as one zod schema from which the TypeScript
// type is inferred. The coordinator, the workers and the CLI all read this one definition.
import { resolve } from 'node:path';
import { z } from 'zod';
import { commHookSpecSchema, compressionConflict } from '../collective/hooks/spec.js';
// The protocol owns the rule for job ids (they become NATS subject tokens).
import { isValidJobId } from '../protocol/index.js';
import { checkCrossFieldRules } from './checks.js';
import { show } from './messages.js';
import { jobModelSchema } from './model.js';
import { LOSS_NAMES, METRIC_NAMES, MONITORS } from './names.js';
import { jobOptimizerSchema } from './optimizer.js';
import { jobSourceSchema, validationSplitSchema } from './source.js';

const positiveInt = z.number().int().min(1);

const workersSchema = z
  .strictObject({
    /** Training starts once this many workers have registered (gang start). */
    min: positiveInt.default(1),
    /** Workers beyond min may join later, up to this many; defaults to min. */
    max: positiveInt.optional(),
  })
  .superRefine((w, ctx) => {
    if (w.max !== undefined && w.max < w.min) {
      ctx.addIssue({
        code: 'custom',
        path: ['max'],
        input: w.max,
        message: `got ${w.max}, expected a number >= workers.min (${w.min})`,
      });
    }
  })
  .transform((w) => ({ min: w.min, max: w.max ?? w.min }));

export const jobSpecSchema = z
  .strictObject({
    /** The job id; it becomes a token of the job's NATS subjects. */
    name: z.string().superRefine((name, ctx) => {
      if (!isValidJobId(name)) {
        ctx.addIssue({
          code: 'custom',
          input: name,
          message: `got ${show(name)}, expected a job id of 1-64 letters, digits, '_' or '-' (it is part of NATS subjects)`,
        });
      }
    }),
    model: jobModelSchema,
    data: z.strictObject({
      train: jobSourceSchema,
      validation: z.union([jobSourceSchema, validationSplitSchema]).optional(),
      test: jobSourceSchema.optional(),
    }),
    optimizer: jobOptimizerSchema,
    /** Optional only when the model module exports its own loss. */
    loss: z.enum(LOSS_NAMES).optional(),
    metrics: z.array(z.enum(METRIC_NAMES)).default(() => []),
    /** Global batch size: the samples of one step across all workers together. */
    batchSize: positiveInt,
    /**
     * Each rank runs its part of a step as this many micro-batches, summing their gradients before the
     * step's one all-reduce: the update of the whole batch in the memory of a micro-batch.
     */
    accumulationSteps: positiveInt.default(1),
    /** Evaluate the validation set before the first step as well; by default only language models do. */
    evaluateAtStart: z.boolean().optional(),
    epochs: positiveInt,
    earlyStopping: z
      .strictObject({
        monitor: z.enum(MONITORS).default('val_loss'),
        /** Epochs in a row without improvement after which training stops (as tf.callbacks.earlyStopping). */
        patience: z.number().int().min(0),
        /** The smallest change that counts as an improvement. */
        minDelta: z.number().min(0).default(0),
        restoreBestWeights: z.boolean().default(false),
      })
      .optional(),
    /** Seeds the data order, the validation split and the initial weights. */
    seed: z.number().int().min(0).default(42),
    workers: workersSchema.prefault({}),
    /** Directory for the trained model and summary.json; defaults to runs/<name> under the working directory. */
    output: z.string().min(1).optional(),
    timeouts: z
      .strictObject({
        /**
         * How long one training step may take before it is aborted and redone; also the most a
         * worker's main thread may stay blocked in one computation before it counts as stuck (lost).
         */
        stepMs: positiveInt.default(60_000),
        /** How long the coordinator waits for workers.min workers to register. */
        rendezvousMs: positiveInt.default(300_000),
      })
      .prefault({}),
    allreduce: z
      .strictObject({
        /** Wire format of gradient chunks; sums are always accumulated in fp32. */
        dtype: z.enum(['f32', 'f16', 'bf16']).default('f32'),
        /** Largest chunk published; defaults to the NATS server's max_payload. */
        chunkBytes: z.number().int().min(1024).optional(),
        /**
         * How gradients are reduced: none (dtype on the wire), f16, bf16, topk (ratio) or powersgd
         * (rank, warmStart); a name alone takes the defaults. See docs/performance.md.
         */
        compression: commHookSpecSchema.default({ type: 'none' }),
      })
      .superRefine((a, ctx) => {
        const conflict = compressionConflict(a.compression.type, a.dtype);
        if (conflict) ctx.addIssue({ code: 'custom', path: ['compression'], message: conflict });
      })
      .prefault({}),
    /** Steps between checks that all replicas hold identical parameters; 0 disables the check. */
    hashCheckEvery: z.number().int().min(0).default(100),
    /**
     * Steps the coordinator sends before the first of them is acknowledged by every rank: a worker
     * starts its next step as soon as its update is applied instead of waiting for a round trip to
     * the coordinator. 1 is lockstep (each step waits for every report of the one before). The window
     * never crosses an epoch end, a checkpoint or an admission of new workers.
     */
    stepsAhead: positiveInt.max(64).default(4),
    checkpoint: z
      .strictObject({
        /**
         * Where checkpoints go: a directory, or nats-obj://BUCKET[/PREFIX] for a JetStream object store;
         * defaults to <output>/checkpoints. A restarted coordinator resumes from the newest.
         */
        dir: z.string().min(1).optional(),
        /** Steps between checkpoints (0: only at the end of each epoch). */
        everySteps: z.number().int().min(0).default(0),
        /** How many checkpoints to keep. */
        keep: positiveInt.default(3),
      })
      .prefault({}),
    stragglers: z
      .strictObject({
        /** A rank is slow in a step when its compute phase exceeds the median of the other ranks' by this factor... */
        factor: z.number().gt(1).default(2),
        /** ...and by at least this many seconds, so microsecond jitter on a tiny model is not flagged. */
        minSeconds: z.number().min(0).default(0.002),
        /** Slow this many steps in a row and the rank is flagged as a straggler (log, metric, report, trace). */
        steps: positiveInt.default(5),
      })
      .prefault({}),
    faults: z
      .strictObject({
        /**
         * A worker silent this long (no heartbeat) is declared lost and the step is redone without it.
         * Heartbeats come from a thread of their own, so a worker busy in a long step is not silent.
         */
        heartbeatTimeoutMs: positiveInt.default(5_000),
        /** Below workers.min, how long to wait for workers to (re)join before the job fails. */
        rejoinTimeoutMs: positiveInt.default(60_000),
        /** Consecutive steps with NaN/Inf in the reduced gradient (each skipped) before the job fails. */
        maxNonFiniteSteps: positiveInt.default(3),
      })
      .prefault({}),
  })
  .superRefine(checkCrossFieldRules, { when: () => true })
  .transform((spec) => ({ ...spec, output: spec.output ?? resolve('runs', spec.name) }));

/** A validated job spec with every default filled in. */
export type JobSpec = z.output<typeof jobSpecSchema>;
/** What a job file may contain: the same shape with the defaulted fields optional. */
export type JobSpecInput = z.input<typeof jobSpecSchema>;
