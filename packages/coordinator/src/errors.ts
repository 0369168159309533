// Errors the coordinator raises; each message says what happened and, where it can, what to do.

export class JobFailedError extends Error {
  override name = 'JobFailedError';
}

/** A step (or evaluation) that did not complete on every rank; `ranks` are the ones that failed or stayed silent. */
export class StepFailedError extends JobFailedError {
  override name = 'StepFailedError';
  constructor(
    message: string,
    readonly ranks: number[],
  ) {
    super(message);
  }
}

/**
 * With optimizer.shard, a worker that held a shard's optimizer slots left: the state cannot be
 * assembled, and training goes back to the last checkpoint (which holds every shard's slots).
 */
export class ShardStateLostError extends JobFailedError {
  override name = 'ShardStateLostError';
}
