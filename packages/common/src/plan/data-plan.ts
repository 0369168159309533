// The coordinator's data plan (DESIGN §3.3): each epoch visits a seeded permutation of the
// training samples; each global step takes the next min(B, remaining) of them and divides them
// over the ranks. Every sample is seen exactly once per epoch (no padding, no drops), every rank
// runs the same number of steps, and the world size is an argument of each step, so after a
// membership change the rest of the epoch is simply divided over the new world.
import { z } from 'zod';
import { formatIssues } from '../protocol/index.js';
import { permutation, sliceIndices } from './permutation.js';
import { splitEvenly, type SampleSlice } from './slices.js';

/** Where the plan stands: the next sample to hand out is position `position` of epoch `epoch`'s permutation. */
export const dataCursorSchema = z.strictObject({
  epoch: z.number().int().min(0),
  position: z.number().int().min(0),
});
export type DataCursor = z.infer<typeof dataCursorSchema>;

export const dataPlanOptionsSchema = z.strictObject({
  /** Number of training samples. */
  size: z.number().int().min(1),
  /** Global batch size B. */
  batchSize: z.number().int().min(1),
  seed: z.number().int(),
  /** Resume point, e.g. from a checkpoint; defaults to the start of epoch 0. */
  cursor: dataCursorSchema.optional(),
});
export type DataPlanOptions = z.input<typeof dataPlanOptionsSchema>;

/** One global step of the plan. */
export interface PlannedStep {
  epoch: number;
  /** Index of this step within its epoch. */
  step: number;
  stepsInEpoch: number;
  /** Position in the epoch permutation of the step's first sample. */
  start: number;
  /** Samples in this step over all ranks: B, or fewer in an epoch's last step. */
  globalCount: number;
  /** One slice per rank, in rank order; a rank can get count 0 in a short last step. */
  slices: SampleSlice[];
  /** This is the last step of the epoch. */
  epochEnd: boolean;
}

/** Global steps per epoch: ceil(size / batchSize), the last one possibly short. */
export function stepsPerEpoch(size: number, batchSize: number): number {
  if (!Number.isInteger(size) || size < 1 || !Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`stepsPerEpoch needs integers size >= 1 and batchSize >= 1, got ${size} and ${batchSize}`);
  return Math.ceil(size / batchSize);
}

function invalid(what: string, error: z.ZodError): Error {
  return new Error(`invalid ${what}: ${formatIssues(error, '(root)')}`);
}

export class DataPlan {
  readonly size: number;
  readonly batchSize: number;
  readonly seed: number;
  readonly stepsPerEpoch: number;
  #epoch = 0;
  #position = 0;

  constructor(options: DataPlanOptions) {
    const parsed = dataPlanOptionsSchema.safeParse(options);
    if (!parsed.success) throw invalid('data plan options', parsed.error);
    const o = parsed.data;
    this.size = o.size;
    this.batchSize = o.batchSize;
    this.seed = o.seed;
    this.stepsPerEpoch = stepsPerEpoch(o.size, o.batchSize);
    if (o.cursor) this.restore(o.cursor);
  }

  /**
   * The step at the cursor divided over `worldSize` ranks, without moving the cursor (e.g. to redo an
   * aborted step); with `ahead`, the step that many after it in the same epoch (steps sent before the
   * one at the cursor is acknowledged).
   */
  peek(worldSize: number, ahead = 0): PlannedStep {
    const left = this.stepsLeftInEpoch();
    if (!Number.isInteger(ahead) || ahead < 0 || ahead >= left)
      throw new Error(`peek: ${ahead} steps ahead is outside the epoch, which has ${left} steps left`);
    const position = this.#position + ahead * this.batchSize;
    const globalCount = Math.min(this.batchSize, this.size - position);
    return {
      epoch: this.#epoch,
      step: Math.floor(position / this.batchSize),
      stepsInEpoch: this.stepsPerEpoch,
      start: position,
      globalCount,
      slices: splitEvenly(position, globalCount, worldSize),
      epochEnd: position + globalCount === this.size,
    };
  }

  /** Steps of the current epoch from the cursor on, the one at the cursor included. */
  stepsLeftInEpoch(): number {
    return this.stepsPerEpoch - Math.floor(this.#position / this.batchSize);
  }

  /** Moves the cursor past the step {@link peek} describes, into the next epoch after its last step. */
  advance(): void {
    this.#position += Math.min(this.batchSize, this.size - this.#position);
    if (this.#position === this.size) {
      this.#epoch++;
      this.#position = 0;
    }
  }

  /** {@link peek} then {@link advance}. */
  nextStep(worldSize: number): PlannedStep {
    const step = this.peek(worldSize);
    this.advance();
    return step;
  }

  /** What a checkpoint stores to resume at the exact sample. */
  cursor(): DataCursor {
    return { epoch: this.#epoch, position: this.#position };
  }

  restore(cursor: DataCursor): void {
    const parsed = dataCursorSchema.safeParse(cursor);
    if (!parsed.success) throw invalid('data plan cursor', parsed.error);
    const { epoch, position } = parsed.data;
    if (position > this.size)
      throw new Error(
        `data plan cursor position ${position} is beyond the ${this.size} training samples; ` +
          `the checkpoint was made for a different dataset or validation split`,
      );
    this.#epoch = position === this.size ? epoch + 1 : epoch;
    this.#position = position === this.size ? 0 : position;
  }

  /** The sample order of `epoch`; shared, do not modify. */
  permutation(epoch: number): Int32Array {
    return permutation(this.seed, epoch, this.size);
  }

  /** The sample indices of one rank's slice of a step of `epoch`. */
  indices(epoch: number, slice: SampleSlice): Int32Array {
    return sliceIndices(this.seed, epoch, this.size, slice);
  }
}
