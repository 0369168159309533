// When the job checkpoints and how it resumes: rank 0's replica state beside the data-plan cursor,
// the step, the generation and the run's progress, saved every checkpoint.everySteps and at every
// epoch end; a restarted coordinator picks up the newest one at the exact sample. Where checkpoints
// live (a directory or a JetStream object store) and how one is written are checkpoints.ts's.
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { DataPlan, JobSpec, Logger } from '@tfjs-ddp/common';
import type { Rank0Files } from './artifacts.js';
import { DirectoryStorage, ObjectStoreStorage } from './checkpoint-storage.js';
import { CheckpointStore } from './checkpoints.js';
import type { EarlyStopping } from './early-stopping.js';
import type { Membership } from './membership.js';
import type { Recovery } from './recovery.js';
import type { TrainingProgress } from './summary.js';

export interface CheckpointingOptions {
  spec: JobSpec;
  specHash: string;
  nc: NatsConnection;
  membership: Membership;
  recovery: Recovery;
  files: Rank0Files;
  log: Logger;
}

export interface Resumed {
  path: string;
  /** The step training continues with. */
  step: number;
  /** Rank 0's replica state, for every member to load. */
  state: Uint8Array;
}

export class Checkpointing {
  private readonly store: CheckpointStore;
  /** The newest checkpoint written or resumed from: the one to name when the job fails. */
  last?: string;

  constructor(private readonly o: CheckpointingOptions) {
    const where = o.spec.checkpoint.dir ?? join(o.spec.output, 'checkpoints');
    const storage = where.startsWith('nats-obj://') ? new ObjectStoreStorage(o.nc, where) : new DirectoryStorage(where);
    this.store = new CheckpointStore(storage, o.spec.checkpoint.keep, o.log.child('checkpoints'));
  }

  /**
   * The newest checkpoint of this job, restored into `plan`, `progress` and `early`; undefined when
   * there is none (or the job's last run completed: it starts over).
   */
  async resume(plan: DataPlan, progress: TrainingProgress, early?: EarlyStopping): Promise<Resumed | undefined> {
    const { spec, specHash, membership, log } = this.o;
    await this.store.clearIfCompleted();
    const resume = await this.store.latest(spec, specHash);
    if (!resume) return undefined;
    const m = resume.meta;
    plan.restore(m.cursor);
    Object.assign(progress, m.progress as Partial<TrainingProgress>);
    if (early && m.progress.early) early.restore(m.progress.early as ReturnType<EarlyStopping['state']>);
    membership.continueAbove(m.generation);
    this.last = resume.path;
    log.info('resuming from checkpoint', {
      path: resume.path,
      step: m.step,
      epoch: m.cursor.epoch,
      position: m.cursor.position,
    });
    return { path: resume.path, step: m.step, state: resume.state };
  }

  /** Saves a checkpoint at `step` (the next one to run), with rank 0's state fetched under recovery. */
  async save(step: number, plan: DataPlan, progress: TrainingProgress, early?: EarlyStopping): Promise<void> {
    const { spec, specHash, membership, recovery, files } = this.o;
    const cursor = plan.cursor();
    const state = await recovery.run('checkpoint', step, () => files.fetchState());
    const path = await this.store.save(
      {
        job: spec.name,
        specHash,
        spec,
        step,
        cursor,
        generation: membership.generation,
        seed: spec.seed,
        progress: { ...progress, early: early?.state() },
      },
      state,
    );
    this.last = path;
    // The store keeps the newest `keep`; the summary lists those, not the ones already deleted.
    progress.checkpoints = [...progress.checkpoints, path].slice(-spec.checkpoint.keep);
  }

  /** The job completed: its checkpoints are history, and its next run starts over. */
  markCompleted(step: number): Promise<void> {
    return this.store.markCompleted(step);
  }
}
