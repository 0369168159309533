// Errors a collective operation rejects with. A timeout names every rank and chunk that never
// arrived, so a hung step points at the rank to look at instead of at the network.

export type CollectivePhase = 'reduce-scatter' | 'all-gather' | 'broadcast';

export type CollectiveOperation = 'allReduce' | 'reduceScatter' | 'allGather' | 'broadcast' | 'barrier';

/** Chunks of one shard that one rank should have sent and did not. */
export interface MissingChunks {
  readonly rank: number;
  readonly phase: CollectivePhase;
  readonly shard: number;
  readonly chunks: readonly number[];
}

export class CollectiveTimeoutError extends Error {
  override readonly name = 'CollectiveTimeoutError';
  /** Direct causes (reduce-scatter senders) first, then the owners whose reduced shards did not arrive. */
  readonly missing: readonly MissingChunks[];
  readonly operation: CollectiveOperation;
  readonly op: number;
  readonly generation: number;
  readonly timeoutMs: number;

  constructor(
    operation: CollectiveOperation,
    op: number,
    generation: number,
    timeoutMs: number,
    missing: MissingChunks[],
  ) {
    const senders = silentSenders(missing);
    const list = missing
      .map((m) => `rank ${m.rank} (${m.phase} chunks ${formatChunkList(m.chunks)} of shard ${m.shard})`)
      .join('; ');
    const hint = senders.length
      ? `. ${senders.length > 1 ? `Ranks ${senders.join(', ')} did not send their` : `Rank ${senders[0]} did not send its`} ` +
        `contribution: check that ${senders.length > 1 ? 'they are' : 'it is'} alive and in generation ${generation} ` +
        `(the owners of the other shards wait on ${senders.length > 1 ? 'them' : 'it'} too)`
      : '';
    super(
      `${operation} op ${op} (generation ${generation}) timed out after ${timeoutMs} ms waiting for: ` +
        `${list || "this rank's own chunks to be flushed to the NATS server"}${hint}`,
    );
    this.missing = missing;
    this.operation = operation;
    this.op = op;
    this.generation = generation;
    this.timeoutMs = timeoutMs;
  }

  /** Ranks whose own contribution is missing: the ones to look at first. */
  get senders(): number[] {
    return silentSenders(this.missing);
  }
}

export class CollectiveAbortedError extends Error {
  override readonly name = 'CollectiveAbortedError';
  readonly reason: string;
  readonly operation: CollectiveOperation;
  readonly op: number;

  constructor(operation: CollectiveOperation, op: number, generation: number, reason: string) {
    super(`${operation} op ${op} (generation ${generation}) aborted: ${reason}`);
    this.reason = reason;
    this.operation = operation;
    this.op = op;
  }
}

/** How a NATS server an operation uses failed it: gone mid-operation, back after a gap, or down at its start. */
export type ServerFailure = 'lost' | 'reconnected' | 'down' | 'closed';

/**
 * An operation that cannot complete because a NATS server it publishes or receives through went
 * away: chunks sent through it may be lost. The collective stays usable once the server is back;
 * a new collective places its shards on the servers still connected.
 */
export class CollectiveServerError extends Error {
  override readonly name = 'CollectiveServerError';
  /** The server's URL, as listed. */
  readonly server: string;
  readonly failure: ServerFailure;
  readonly operation: CollectiveOperation;
  readonly op: number;

  constructor(
    operation: CollectiveOperation,
    op: number,
    generation: number,
    where: { server: string; index: number; count: number; shards: readonly number[] },
    failure: ServerFailure,
  ) {
    const what = {
      lost: 'lost its connection to',
      reconnected: 'was cut off for a while from',
      down: 'is not connected to',
      closed: 'has a closed connection to',
    }[failure];
    super(
      `${operation} op ${op} (generation ${generation}) failed: this rank ${what} NATS server ${where.server} ` +
        `(server ${where.index + 1} of ${where.count}, carrying shard${where.shards.length > 1 ? 's' : ''} ` +
        `${formatChunkList(where.shards)}), so chunks of this operation may be lost. Redo the operation on a new ` +
        'collective, which places the shards on the servers still connected',
    );
    this.server = where.server;
    this.failure = failure;
    this.operation = operation;
    this.op = op;
  }
}

function silentSenders(missing: readonly MissingChunks[]): number[] {
  return [...new Set(missing.filter((m) => m.phase !== 'all-gather').map((m) => m.rank))];
}

/** Compact chunk list: [0,1,2,3,7,9,10] → "0-3, 7, 9-10". */
export function formatChunkList(chunks: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < chunks.length;) {
    let j = i;
    while (j + 1 < chunks.length && chunks[j + 1] === chunks[j] + 1) j++;
    parts.push(i === j ? String(chunks[i]) : `${chunks[i]}-${chunks[j]}`);
    i = j + 1;
  }
  return parts.join(', ');
}
