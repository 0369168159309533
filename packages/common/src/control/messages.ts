// The control plane's messages (DESIGN §5): one zod schema per message, the TypeScript types
// inferred from them, so the wire format is defined once and validated on every receipt. The codec
// adds and checks the protocol version field `v`, so it is not part of these schemas.
import { z } from 'zod';

const workerId = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/);
const int = z.number().int().nonnegative();
const float = z.number();

/** A rank's part of a step: [start, count) into the epoch's permutation (or the split, for evaluation). */
export const sliceSchema = z.tuple([int, int]);

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
});
export type RegisterReply = z.infer<typeof registerReplySchema>;

export const heartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  job: z.string(),
  workerId,
  gen: int,
  rank: z.number().int().min(-1),
  tensors: int,
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

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
  /** Sent once every member has joined (subscribed), so the broadcast from rank 0 reaches everyone. */
  z.object({ ...base, type: z.literal('sync'), gen: int, op: int }),
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

export const timingsSchema = z.object({
  data: float,
  compute: float,
  readback: float,
  allreduce: float,
  apply: float,
});
export type StepTimings = z.infer<typeof timingsSchema>;

/** Workers → coordinator. */
export const reportSchema = z.discriminatedUnion('type', [
  z.object({ ...base, type: z.literal('joined'), workerId, gen: int, rank: int }),
  z.object({ ...base, type: z.literal('ready'), workerId, gen: int, rank: int, hash: z.string().max(128) }),
  z.object({
    ...base,
    type: z.literal('stepDone'),
    workerId,
    gen: int,
    rank: int,
    step: int,
    lossSum: float,
    count: int,
    hash: z.string().max(128).optional(),
    timings: timingsSchema,
    tensors: int,
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
    lossSum: float,
    count: int,
    correct: int,
    tp: int,
    fp: int,
    tn: int,
    fn: int,
  }),
  z.object({ ...base, type: z.literal('done'), workerId, gen: int, id: int }),
  z.object({
    ...base,
    type: z.literal('saved'),
    workerId,
    id: int,
    files: z.array(z.object({ name: z.string().max(256), bytes: int })).max(64),
    predictions: z.array(z.array(float)).max(1024),
  }),
  z.object({
    ...base,
    type: z.literal('artifact'),
    workerId,
    id: int,
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/),
    index: int,
    total: z.number().int().positive(),
    data: z.instanceof(Uint8Array),
  }),
]);
export type Report = z.infer<typeof reportSchema>;
