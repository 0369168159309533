// Every NATS subject of a job, built in one place so no module hand-writes one. Control subjects
// live under `ddp.<job>.`; data-plane subjects add the membership generation, so chunks from an
// older membership never reach a collective of the current one (it does not subscribe to them),
// and then the sender: `ddp.<job>.g<gen>.<sender>.{rs,ag,bc}.<shard>`. The sender token sits at a
// fixed position so a NATS server's publish permissions can bind it to a credential: a user allowed
// only `ddp.*.*.worker-3.>` data subjects cannot send a chunk on another worker's (nats-roles.ts).

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

/**
 * The sender token of a data-plane subject: a member's worker id, or a rank number where the
 * collective knows no ids. A worker id may hold '.' (a host name), which would split the token, so
 * '%' and '.' are percent-escaped: the mapping is one-to-one and leaves ordinary ids unchanged.
 */
export function senderToken(sender: string | number): string {
  if (typeof sender === 'number') return String(validateIndex('sender rank', sender));
  if (!/^[A-Za-z0-9_.:%-]{1,128}$/.test(sender)) {
    throw new Error(
      `invalid sender ${JSON.stringify(sender)} for a data-plane subject: expected a worker id of 1-128 characters from A-Z, a-z, 0-9, '_', '.', ':', '-'`,
    );
  }
  return sender.replace(/%/g, '%25').replace(/\./g, '%2E');
}

/** Index of the sender token among a data-plane subject's dot-separated tokens. */
export const SENDER_TOKEN_INDEX = 3;

/** Data-plane subjects of one membership generation; `sender` is the publishing member (see senderToken). */
export interface DataSubjects {
  /** `ddp.<job>.g<gen>`: every data-plane subject of the generation starts with it and a dot. */
  readonly prefix: string;
  /** Reduce-scatter contributions from `sender` to the owner of `shard`. */
  rs(shard: number, sender: string | number): string;
  /** Every sender's contributions to `shard`: the owner's one subscription. */
  rsFromAny(shard: number): string;
  /** The reduced `shard`, published by its owner `sender`. */
  ag(shard: number, sender: string | number): string;
  /** A broadcast from `root`, published by it as `sender`. */
  bc(root: number, sender: string | number): string;
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
        prefix: g,
        rs: (shard, sender) => `${g}.${senderToken(sender)}.rs.${validateIndex('shard', shard)}`,
        rsFromAny: (shard) => `${g}.*.rs.${validateIndex('shard', shard)}`,
        ag: (shard, sender) => `${g}.${senderToken(sender)}.ag.${validateIndex('shard', shard)}`,
        bc: (root, sender) => `${g}.${senderToken(sender)}.bc.${validateIndex('root rank', root)}`,
      };
    },
  };
}
