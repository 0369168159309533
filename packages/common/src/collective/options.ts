// Settings of a NATS collective, validated once when it is created. Every rank of a job must use
// the same chunkBytes (chunk boundaries are part of the wire contract).
import { z } from 'zod';
import { workerIdSchema } from '../control/messages.js';
import type { Logger } from '../log.js';
import { isValidJobId, type MessageObserver } from '../protocol/index.js';

const MiB = 1024 * 1024;

export const natsCollectiveOptionsSchema = z
  .object({
    job: z.string().refine(isValidJobId, { message: "expected 1-64 characters from A-Z, a-z, 0-9, '_' and '-'" }),
    /** Membership generation; chunks of other generations are never received. */
    generation: z.number().int().min(0),
    rank: z.number().int().min(0),
    worldSize: z.number().int().min(1).max(65_535),
    /**
     * The members' worker ids in rank order (the generation's membership). They name the sender in
     * every data-plane subject, which is what a NATS server's per-worker permissions bind to a
     * credential; omitted: subjects name ranks.
     */
    members: z.array(workerIdSchema).optional(),
    /** Default deadline of an operation. */
    timeoutMs: z.number().int().positive().default(30_000),
    /**
     * Chunk size before the cap by the server's max_payload. At 64 MiB over 4 ranks, 256-512 KiB
     * chunks were up to twice as slow (per-message cost); 2-4 MiB were no faster than 1 MiB and
     * delay each owner's first reduction.
     */
    chunkBytes: z.number().int().min(64).default(MiB),
    /** Published bytes between flushes of the outbound pipe (see flow-control.ts). */
    flushBytes: z
      .number()
      .int()
      .positive()
      .default(4 * MiB),
    /**
     * Bound on chunks held for operations this rank has not started yet, shared equally by the
     * senders (each peer rank may hold maxQueuedBytes / (worldSize − 1)); beyond its part a sender's
     * chunks are dropped.
     */
    maxQueuedBytes: z
      .number()
      .int()
      .min(0)
      .default(256 * MiB),
  })
  .strict()
  .refine((o) => o.rank < o.worldSize, { message: 'rank must be below worldSize', path: ['rank'] })
  .refine((o) => !o.members || (o.members.length === o.worldSize && new Set(o.members).size === o.worldSize), {
    message: 'members must list worldSize distinct worker ids, one per rank',
    path: ['members'],
  });

export type NatsCollectiveSettings = z.output<typeof natsCollectiveOptionsSchema>;

export type NatsCollectiveOptions = z.input<typeof natsCollectiveOptionsSchema> & {
  /** Receives every dropped message; defaults to a counting observer that logs through `log`. */
  observer?: MessageObserver;
  log?: Logger;
};
