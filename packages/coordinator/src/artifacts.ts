// Files rank 0 ships over NATS in chunks (the trained model, checkpoint states): asking for them,
// collecting the chunks, and writing them atomically into a directory, so pods need no shared volume.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ChunkAssembler,
  STATE_GATHER_OPS,
  writeFileAtomic,
  type JobSpec,
  type Logger,
  type Report,
} from '@tfjs-ddp/common';
import type { ControlPlane } from './control.js';
import { StepFailedError } from './errors.js';
import type { Membership } from './membership.js';

type Saved = Extract<Report, { type: 'saved' }>;

export interface SavedModel {
  /** Paths relative to the job's output directory. */
  files: string[];
  predictions: number[][];
  fit?: [number, number, number][];
}

export async function writeAssembled(chunks: ChunkAssembler, names: readonly string[], dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  for (const name of names) await writeFileAtomic(join(dir, name), chunks.take(name));
  return [...names];
}

export class Rank0Files {
  constructor(private readonly o: { spec: JobSpec; control: ControlPlane; membership: Membership; log: Logger }) {}

  /** Rank 0's replica state (parameters, optimizer slots, last applied step), for a checkpoint. */
  async fetchState(): Promise<Uint8Array> {
    const { control, membership, spec } = this.o;
    // A sharded optimizer's slots are spread over the members: all of them gather them for rank 0.
    const op = spec.optimizer.shard ? { op: control.takeOps(STATE_GATHER_OPS) } : {};
    const { assembler } = await this.receive('checkpoint', (id) =>
      control.broadcast({ type: 'checkpoint', gen: membership.generation, id, ...op }),
    );
    return assembler.take('state.bin');
  }

  /** The trained model's files into OUTPUT/model, with predictions of the first `predictSamples` test samples. */
  async saveModel(predictSamples: number): Promise<SavedModel> {
    const { control, membership, spec } = this.o;
    const { assembler, saved } = await this.receive('the trained model', (id) =>
      control.broadcast({ type: 'save', gen: membership.generation, id, predictSamples }),
    );
    const modelDir = join(spec.output, 'model');
    const files = await writeAssembled(
      assembler,
      saved.files.map((f) => f.name),
      modelDir,
    );
    this.o.log.info('model saved', { dir: modelDir, files: files.join(',') });
    return { files: files.map((f) => join('model', f)), predictions: saved.predictions, fit: saved.fit };
  }

  /**
   * Sends a command (through `send`, given a fresh id) that makes rank 0 ship files as artifact
   * chunks followed by a `saved` report, and collects them. Rank 0 failing or going silent
   * rejects with a StepFailedError, so the caller can recover and ask again.
   */
  private async receive(
    what: string,
    send: (id: number) => Promise<void>,
  ): Promise<{ assembler: ChunkAssembler; saved: Saved }> {
    const { control, membership, spec } = this.o;
    const id = control.takeId();
    const assembler = new ChunkAssembler();
    const rank0 = membership.members[0];
    // Only the rank 0 of the generation asked writes into the job's output.
    const gen = membership.generation;
    let saved: Saved | undefined;
    const timeoutMs = spec.timeouts.stepMs * 4;
    const result = control.awaitReports<Saved>({
      timeoutMs,
      onReport: (r, done, fail) => {
        if (r.type === 'failed' && r.workerId === rank0) {
          fail(new StepFailedError(`sending ${what} failed on rank 0: ${r.error}`, [0]));
          return;
        }
        if ((r.type !== 'artifact' && r.type !== 'saved') || r.id !== id || r.gen !== gen || r.workerId !== rank0)
          return;
        if (r.type === 'artifact') assembler.add(r.name, r.index, r.total, r.data);
        else saved = r;
        if (saved && assembler.complete(saved.files.map((f) => f.name))) done(saved);
      },
      onTimeout: () => {
        const missing = saved ? `; missing: ${assembler.missing(saved.files.map((f) => f.name)).join(', ')}` : '';
        return new StepFailedError(`rank 0 (${rank0}) did not deliver ${what} within ${timeoutMs} ms${missing}`, [0]);
      },
      lost: () =>
        membership.lostMembers().includes(0)
          ? new StepFailedError(`rank 0 (${rank0}) was lost while sending ${what}`, [0])
          : undefined,
    });
    await send(id);
    return { assembler, saved: await result };
  }
}
