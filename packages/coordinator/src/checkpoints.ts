// Checkpoints: the replica state rank 0 shipped (parameters, optimizer slots, last applied
// step) beside everything the coordinator needs to resume at the exact sample, in a directory or a
// JetStream object store (checkpoint-storage.ts); a crash never leaves half of one, the state's sha256 is checked on load, and a checkpoint of another job spec is refused.
import { sha256Hex, type DataCursor, type JobSpec, type Logger } from '@tfjs-ddp/common';
import type { CheckpointStorage } from './checkpoint-storage.js';

export interface CheckpointMeta {
  format: 'tfjs-ddp-checkpoint/1';
  job: string;
  specHash: string;
  spec: JobSpec;
  /** Global steps completed; training resumes with this step. */
  step: number;
  cursor: DataCursor;
  generation: number;
  seed: number;
  stateSha256: string;
  createdAt: string;
  /** Coordinator-side progress: epoch summaries, early-stopping state, the committed data ranges. */
  progress: Record<string, unknown>;
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const PREFIX = 'ckpt-';
/** Written when a job completes: its checkpoints are history, and the next run starts over. */
const COMPLETED = 'completed.json';
const STATE = 'state.bin';
const META = 'meta.json';

export class CheckpointStore {
  constructor(
    private readonly storage: CheckpointStorage,
    private readonly keep: number,
    private readonly log: Logger,
  ) {}

  async save(meta: Omit<CheckpointMeta, 'format' | 'stateSha256' | 'createdAt'>, state: Uint8Array): Promise<string> {
    const name = `${PREFIX}${String(meta.step).padStart(10, '0')}`;
    const full: CheckpointMeta = {
      format: 'tfjs-ddp-checkpoint/1',
      ...meta,
      stateSha256: sha256Hex(state),
      createdAt: new Date().toISOString(),
    };
    // The meta file goes last: it marks the checkpoint complete.
    const path = await this.storage.write(name, [
      { name: STATE, data: state },
      { name: META, data: new TextEncoder().encode(JSON.stringify(full, null, 2) + '\n') },
    ]);
    await this.prune();
    this.log.info('checkpoint written', { path, step: meta.step, bytes: state.length });
    return path;
  }

  list(): Promise<string[]> {
    return this.storage.list(PREFIX, META);
  }

  async markCompleted(step: number): Promise<void> {
    await this.storage.putFile(
      COMPLETED,
      new TextEncoder().encode(JSON.stringify({ step, completedAt: new Date().toISOString() }) + '\n'),
    );
  }

  /** Forgets the checkpoints of a job that completed, so a new run of it starts from step 0. */
  async clearIfCompleted(): Promise<boolean> {
    if (!(await this.storage.hasFile(COMPLETED))) return false;
    for (const name of await this.list()) await this.storage.remove(name);
    await this.storage.removeFile(COMPLETED);
    this.log.info('the previous run of this job completed; starting over', { location: this.storage.location });
    return true;
  }

  /** The newest checkpoint, verified against `specHash`; undefined when there is none. */
  async latest(
    spec: JobSpec,
    specHash: string,
  ): Promise<{ meta: CheckpointMeta; state: Uint8Array; path: string } | undefined> {
    const names = await this.list();
    const name = names[names.length - 1];
    if (!name) return undefined;
    const path = `${this.storage.location.replace(/\/$/, '')}/${name}`;
    let meta: CheckpointMeta;
    try {
      meta = JSON.parse(new TextDecoder().decode(await this.storage.read(name, META))) as CheckpointMeta;
    } catch (err) {
      throw new CheckpointError(
        `checkpoint ${path} has no readable ${META}: ${(err as Error).message}; delete it to start over`,
      );
    }
    if (meta.specHash !== specHash) {
      throw new CheckpointError(
        `checkpoint ${path} belongs to another job spec (${describeDifferences(meta.spec, spec)}); ` +
          `restore the job file it was written with, or point checkpoint.dir elsewhere to start over`,
      );
    }
    const state = await this.storage.read(name, STATE);
    const sum = sha256Hex(state);
    if (sum !== meta.stateSha256) {
      throw new CheckpointError(
        `checkpoint ${path} is corrupt: ${STATE} has sha256 ${sum}, ${META} says ${meta.stateSha256}; delete it to resume from the one before`,
      );
    }
    return { meta, state, path };
  }

  private async prune(): Promise<void> {
    const names = await this.list();
    for (const old of names.slice(0, Math.max(0, names.length - this.keep))) await this.storage.remove(old);
  }
}

/** The dotted paths at which two specs differ, with both values, for a refusal that says what changed. */
export function describeDifferences(was: unknown, now: unknown, path = ''): string {
  const diffs: string[] = [];
  const walk = (a: unknown, b: unknown, p: string) => {
    if (JSON.stringify(a) === JSON.stringify(b)) return;
    if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const k of keys)
        walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], p ? `${p}.${k}` : k);
      return;
    }
    diffs.push(`${p}: was ${JSON.stringify(a)}, now ${JSON.stringify(b)}`);
  };
  walk(was, now, path);
  return diffs.slice(0, 8).join('; ') || 'no field differs, but the hash does';
}
