// The control plane's messages (DESIGN §5): one zod schema per message, the TypeScript types
// inferred from them, so the wire format is defined once and validated on every receipt. The codec
// adds and checks the protocol version field `v`, so it is not part of these schemas.
import { z } from 'zod';
import { STEP_PHASES, type StepPhase } from '../metrics/phases.js';
import { MAX_CHUNKS } from './chunks.js';

/** A worker id as every message, subject and credential carries it. */
export const workerIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/);
const workerId = workerIdSchema;
const int = z.number().int().nonnegative();
const float = z.number();
/** A loss can overflow to Infinity or become NaN; the report must still carry it. */
const anyNumber = z.custom<number>((v) => typeof v === 'number', { message: 'expected a number' });

/** A file the coordinator writes into the job's output: a plain name, never a path or `.`/`..`. */
const fileName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,128}$/)
  .refine((n) => n !== '.' && n !== '..', { message: 'expected a file name, not . or ..' });

/** A rank's part of a step: [start, count) into the epoch's permutation (or the split, for evaluation). */
export const sliceSchema = z.tuple([int, int]);

/** One chunk of a blob too large for one message (see chunks.ts, which bounds the count by MAX_BLOB_BYTES). */
const chunkFields = {
  index: int.max(MAX_CHUNKS - 1),
  total: z.number().int().positive().max(MAX_CHUNKS),
  data: z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'expected bytes' }),
};

export const registerRequestSchema = z.object({
  type: z.literal('register'),
  job: z.string(),
  workerId,
  specHash: z.string().max(128),
  backend: z.string().max(64),
  host: z.string().max(256),
  pid: int,
  /** Sample counts the worker loaded; the coordinator plans from them and all workers must agree. */
  sizes: z.object({ train: int, validation: int, test: int }),
});
export type RegisterRequest = z.infer<typeof registerRequestSchema>;

export const registerReplySchema = z.object({
  type: z.literal('registered'),
  job: z.string(),
  accepted: z.boolean(),
  reason: z.string().max(4096).optional(),
  /** Identifies the coordinator process; a worker re-registers when another one says hello. */
  instance: z.string().max(64),
  /**
   * The coordinator's generation when it accepted the worker: a later generation that leaves the
   * worker out means it was dropped since (lost while frozen or cut off), and must register again.
   */
  generation: int.optional(),
});

export const heartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  job: z.string(),
  workerId,
  gen: int,
  rank: z.number().int().min(-1),
  tensors: int,
  /**
   * How long the worker's main thread has not answered its heartbeat thread, in ms: about a
   * heartbeat period at most while it is responsive, the time so far while it is busy in one long
   * synchronous computation. The coordinator waits for a busy worker up to timeouts.stepMs.
   */
  blockedMs: int.optional(),
});

const base = { job: z.string() };

/** Coordinator → workers. Every command names the generation it belongs to; workers ignore other generations. */
export const commandSchema = z.discriminatedUnion('type', [
  z.object({
    ...base,
    type: z.literal('generation'),
    gen: int,
    /** Worker ids in rank order. */
    members: z.array(workerId).min(1).max(4096),
    /** Global step the generation starts at (for logs). */
    step: int,
  }),
  /**
   * Sent once every member has joined (subscribed), so the broadcast reaches everyone: `root` (the
   * member that applied the most steps) broadcasts its state's length with op `op`, then the state
   * (parameters, optimizer slots, last applied step) with op `op + 1`.
   */
  z.object({ ...base, type: z.literal('sync'), gen: int, op: int, root: int }),
  /** Abandon the step in flight now (handled out of order, not queued): a member was lost or NATS reconnected. */
  z.object({
    ...base,
    type: z.literal('abort'),
    gen: int,
    reason: z.string().max(4096),
    /**
     * Every collective operation of the generation with an id below this fails, in flight or not yet
     * started: a rank still computing when the abort comes must not enter the aborted step's all-reduce.
     */
    before: int.optional(),
  }),
  /**
   * A coordinator (re)started: workers of an older instance drop their generation and register again.
   * Repeated while it waits for workers, naming those it dropped as lost (frozen, stuck, cut off) and
   * that did not register since: a dropped worker that is alive after all registers again. Without it,
   * a dropped worker learns it only from a generation without it, which none forms below workers.min.
   */
  z.object({
    ...base,
    type: z.literal('hello'),
    instance: z.string().max(64),
    dropped: z.array(workerId).max(4096).optional(),
  }),
  /**
   * Rank 0 ships its state to the coordinator as artifact chunks named state.bin (a checkpoint). With
   * `op` (optimizer.shard), every member first gathers the optimizer's shards with ops from `op` on.
   */
  z.object({ ...base, type: z.literal('checkpoint'), gen: int, id: int, op: int.optional() }),
  /** One chunk of a state every member loads (resuming from a checkpoint). */
  z.object({ ...base, type: z.literal('load'), gen: int, id: int, ...chunkFields }),
  z.object({
    ...base,
    type: z.literal('step'),
    gen: int,
    step: int,
    epoch: int,
    op: int,
    slices: z.array(sliceSchema).max(4096),
    globalCount: int,
    lr: float,
    /** Ask every rank for its parameter hash after the update (drift check). */
    hash: z.boolean(),
  }),
  z.object({
    ...base,
    type: z.literal('eval'),
    gen: int,
    id: int,
    split: z.enum(['validation', 'test']),
    slices: z.array(sliceSchema).max(4096),
  }),
  z.object({ ...base, type: z.literal('snapshot'), gen: int, id: int }),
  z.object({ ...base, type: z.literal('restore'), gen: int, id: int }),
  z.object({ ...base, type: z.literal('save'), gen: int, id: int, predictSamples: int }),
  z.object({ ...base, type: z.literal('stop'), reason: z.string().max(4096), failed: z.boolean() }),
]);
export type Command = z.infer<typeof commandSchema>;

/** Seconds per step phase. */
export const timingsSchema = z.object({
  ...(Object.fromEntries(STEP_PHASES.map((p) => [p, float])) as Record<StepPhase, typeof float>),
  /** Idle seconds between this rank's report of the previous step and this step's command; 0 after other commands. */
  wait: float.default(0),
});
export type StepTimings = z.infer<typeof timingsSchema>;

/** A rank's sums over its part of an evaluation split; they add exactly across ranks. */
export const evalSumsSchema = z.object({
  lossSum: anyNumber,
  count: int,
  correct: int,
  tp: int,
  fp: int,
  tn: int,
  fn: int,
});
export type EvalSums = z.infer<typeof evalSumsSchema>;

/** Workers → coordinator. */
export const reportSchema = z.discriminatedUnion('type', [
  z.object({
    ...base,
    type: z.literal('joined'),
    workerId,
    gen: int,
    rank: int,
    appliedStep: z.number().int().min(-1),
  }),
  z.object({ ...base, type: z.literal('ready'), workerId, gen: int, rank: int, hash: z.string().max(128) }),
  z.object({
    ...base,
    type: z.literal('stepDone'),
    workerId,
    gen: int,
    rank: int,
    step: int,
    lossSum: anyNumber,
    count: int,
    hash: z.string().max(128).optional(),
    /** The reduced gradient held NaN or Inf: every rank skipped the update alike. */
    nonFinite: z.boolean(),
    timings: timingsSchema,
    /** When the rank began the step (epoch ms, fractional); the trace lays the phases out from it. */
    startedAt: float.optional(),
    tensors: int,
    /** Global L2 norm of the mean gradient before clipping, when the job clips (the same on every rank). */
    gradNorm: float.optional(),
    /** The process's resident memory and the bytes its tensors hold, after the step. */
    memory: z.object({ rssBytes: int, tensorBytes: int }).optional(),
  }),
  z.object({
    ...base,
    type: z.literal('failed'),
    workerId,
    gen: int,
    rank: int,
    step: int,
    error: z.string().max(8192),
  }),
  z.object({
    ...base,
    type: z.literal('evalDone'),
    workerId,
    gen: int,
    id: int,
    ...evalSumsSchema.shape,
  }),
  z.object({
    ...base,
    type: z.literal('done'),
    workerId,
    gen: int,
    id: int,
    /** For `restore`: false when this worker holds no snapshot (it joined after it was taken). */
    restored: z.boolean().optional(),
  }),
  /**
   * Rank 0 shipped the files a `save` or `checkpoint` command asked for as artifact chunks. Both name
   * the generation they were asked in: the coordinator takes them only from that generation's rank 0.
   */
  z.object({
    ...base,
    type: z.literal('saved'),
    workerId,
    gen: int,
    id: int,
    files: z.array(z.object({ name: fileName, bytes: int })).max(64),
    predictions: z.array(z.array(float)).max(1024),
    /** For a regression on one feature: test points as [x, y, prediction], for the report's fitted line. */
    fit: z
      .array(z.tuple([float, float, float]))
      .max(1024)
      .optional(),
  }),
  z.object({
    ...base,
    type: z.literal('artifact'),
    workerId,
    gen: int,
    id: int,
    name: fileName,
    ...chunkFields,
  }),
]);
export type Report = z.infer<typeof reportSchema>;
