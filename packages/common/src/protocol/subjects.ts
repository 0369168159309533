// Every NATS subject of a job, built in one place so no module hand-writes one. Control subjects
// live under `ddp.<job>.`; data-plane subjects add the membership generation, so chunks from an
// older membership never reach a collective of the current one (it does not subscribe to them).

const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Whether `job` can be used as a token of NATS subjects. */
export function isValidJobId(job: string): boolean {
  return typeof job === 'string' && JOB_ID.test(job);
}

/** Returns the job id unchanged when it can be used in a subject, otherwise throws saying why. */
export function validateJobId(job: string): string {
  if (!isValidJobId(job)) {
    throw new Error(
      `invalid job id ${JSON.stringify(job)}: expected 1-64 characters from A-Z, a-z, 0-9, '_' and '-' ` +
        `(it becomes a NATS subject token, so no dots, spaces or wildcards); rename the job`,
    );
  }
  return job;
}

function validateIndex(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new Error(`invalid ${what} ${String(n)} for a subject: expected a non-negative integer`);
  }
  return n;
}

/** Data-plane subjects of one membership generation. */
export interface DataSubjects {
  /** Reduce-scatter contributions to the owner of `shard`. */
  rs(shard: number): string;
  /** The reduced `shard`, published by its owner. */
  ag(shard: number): string;
  /** A broadcast from `root`. */
  bc(root: number): string;
}

/** All subjects of a job. */
export interface JobSubjects {
  /** Workers ask to join (request/reply). */
  readonly register: string;
  readonly heartbeat: string;
  /** Workers report step results (loss, timings, parameter hashes), evaluations and artifacts. */
  readonly report: string;
  /**
   * Every coordinator command (commandSchema in control/messages.ts: generations, steps, aborts,
   * evaluations, checkpoints, loads, stop), on one subject so workers receive them in the order sent.
   */
  readonly control: string;
  data(generation: number): DataSubjects;
}

export function jobSubjects(job: string): JobSubjects {
  const prefix = `ddp.${validateJobId(job)}`;
  return {
    register: `${prefix}.register`,
    heartbeat: `${prefix}.heartbeat`,
    report: `${prefix}.report`,
    control: `${prefix}.control`,
    data(generation: number): DataSubjects {
      const g = `${prefix}.g${validateIndex('generation', generation)}`;
      return {
        rs: (shard) => `${g}.rs.${validateIndex('shard', shard)}`,
        ag: (shard) => `${g}.ag.${validateIndex('shard', shard)}`,
        bc: (root) => `${g}.bc.${validateIndex('root rank', root)}`,
      };
    },
  };
}
