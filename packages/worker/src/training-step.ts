// One training step on this rank: gradients of the summed loss over its slice of the global batch
// (as accumulationSteps micro-batches), the communication hook's all-reduce, and the update every
// rank applies alike from the bit-identical reduced sum (or skips alike, for NaN or Inf). It owns
// the step's AbortController: the coordinator's abort releases a step blocked in the all-reduce.
import {
  setLearningRate,
  sliceIndices,
  splitEvenly,
  type Collective,
  type Command,
  type JobSpec,
  type Logger,
  type Report,
  type Tf,
  type WorkerMetrics,
} from '@tfjs-ddp/common';
import type { BatchBuffers } from './batch.js';
import { yieldToEventLoop } from './evaluation.js';
import type { JobData } from './job-data.js';
import type { Replica } from './replica.js';
import type { ShardedOptimizer } from './sharded-optimizer.js';
import { shardedReduceAndApply } from './sharded-step.js';

type StepCommand = Extract<Command, { type: 'step' }>;
/** The stepDone report, less what the dispatcher adds (generation, rank, job, worker). */
export type StepReport = Omit<Extract<Report, { type: 'stepDone' }>, 'type' | 'job' | 'workerId' | 'gen' | 'rank'>;

export interface TrainingStepOptions {
  tf: Tf;
  spec: JobSpec;
  data: JobData;
  replica: Replica;
  batches: BatchBuffers;
  log: Logger;
  metrics: WorkerMetrics;
}

export class TrainingStep {
  /** This rank's gradient sum, then the reduced sum over all ranks. */
  private readonly grad: Float32Array;
  /** The step in flight's: aborting it fails the step's collective operations at once. */
  private inFlight?: { op: number; controller: AbortController };
  /** When this rank reported its last step (performance.now()); unset after any other command. */
  private lastReport?: number;

  constructor(private readonly o: TrainingStepOptions) {
    this.grad = new Float32Array(o.replica.step.size);
  }

  /** Fails the step in flight, if its operations are below `before` (all of them without it). */
  abort(reason: string, before?: number): void {
    const step = this.inFlight;
    if (step && (before === undefined || step.op < before)) step.controller.abort(new Error(reason));
  }

  /** Another command ran since the last step: the next step's wait is not counted from it. */
  interrupted(): void {
    this.lastReport = undefined;
  }

  /** Runs `cmd` on `c`; rejects when the all-reduce fails or is aborted, with the parameters untouched. */
  async run(cmd: StepCommand, c: Collective): Promise<StepReport> {
    const inFlight = { op: cmd.op, controller: new AbortController() };
    this.inFlight = inFlight;
    try {
      return await this.runStep(cmd, c, inFlight.controller.signal);
    } finally {
      if (this.inFlight === inFlight) this.inFlight = undefined;
    }
  }

  /**
   * The step's three phases: this rank's gradient sum, the all-reduce (through the comm hook, with
   * the step's abort signal), and the update from the reduced sum.
   */
  private async runStep(cmd: StepCommand, c: Collective, signal: AbortSignal): Promise<StepReport> {
    const { tf, replica } = this.o;
    const t0 = performance.now();
    const wait = this.lastReport === undefined ? 0 : (t0 - this.lastReport) / 1000;
    const [start, count] = cmd.slices[c.rank] ?? [0, 0];
    const { lossSum, gather, readback } = await this.gradients(cmd.epoch, start, count);
    const t1 = t0 + gather;
    const t2 = performance.now();
    let t3: number;
    let result: { nonFinite: boolean; gradNorm?: number };
    if (replica.sharded) {
      // The reduce-scatter, the update of the own shard and the parameters' all-gather interleave:
      // allreduce counts the collective operations, apply the rest.
      const sharded = replica as Replica & { sharded: ShardedOptimizer };
      const done = await shardedReduceAndApply(sharded, this.o.spec, this.grad, c, cmd, signal);
      result = done;
      t3 = t2 + done.commMs;
      this.applied(cmd, result.nonFinite);
    } else {
      await replica.hook.reduce(this.grad, c, { op: cmd.op, signal });
      t3 = performance.now();
      result = this.update(cmd);
    }
    const { nonFinite, gradNorm } = result;
    const hash = cmd.hash ? await replica.hash() : undefined;
    const t4 = performance.now();
    const timings = {
      data: (t1 - t0) / 1000,
      compute: Math.max(0, (t2 - t1) / 1000 - readback),
      readback,
      allreduce: (t3 - t2) / 1000,
      apply: (t4 - t3) / 1000,
      wait,
    };
    const memory = tf.memory();
    this.lastReport = performance.now();
    this.o.metrics.step({
      timings,
      samples: count,
      lossSum,
      gradientBytes: this.grad.byteLength,
      worldSize: c.worldSize,
    });
    return {
      step: cmd.step,
      lossSum,
      count,
      hash,
      nonFinite,
      timings,
      startedAt: performance.timeOrigin + t0,
      tensors: memory.numTensors,
      gradNorm,
      // rss() alone: process.memoryUsage() walks the whole heap, too dear for every step.
      memory: { rssBytes: process.memoryUsage.rss(), tensorBytes: memory.numBytes },
    };
  }

  /**
   * Gradients of the summed loss over samples [start, start + count) of the epoch's permutation into
   * this.grad, as accumulationSteps micro-batches that add up; `gather` and `readback` in ms and s.
   */
  private async gradients(
    epoch: number,
    start: number,
    count: number,
  ): Promise<{ lossSum: number; gather: number; readback: number }> {
    const { tf, spec, data, replica, batches } = this.o;
    const indices = sliceIndices(spec.seed, epoch, data.train.count, { start, count });
    let lossSum = 0;
    let gather = 0;
    let readback = 0;
    // The first micro-batch writes the buffer, the others add to it; with none (an empty slice) it
    // is zeroed, so this rank still contributes zeros.
    let written = false;
    for (const part of splitEvenly(0, indices.length, spec.accumulationSteps)) {
      if (part.count === 0) continue;
      if (part.start > 0) await yieldToEventLoop();
      const g0 = performance.now();
      const { x, y } = batches.tensors(data.train, indices.subarray(part.start, part.start + part.count));
      gather += performance.now() - g0;
      try {
        const result = written
          ? await replica.step.accumulateAsync(x, y, this.grad)
          : await replica.step.computeAsync(x, y, this.grad);
        written = true;
        lossSum += result.lossSum;
        readback += result.readbackSeconds;
      } finally {
        tf.dispose([x, y]);
      }
    }
    if (!written) this.grad.fill(0);
    return { lossSum, gather, readback };
  }

  /** Applies the reduced sum in this.grad, at the step's learning rate, or skips it for NaN or Inf. */
  private update(cmd: StepCommand): { nonFinite: boolean; gradNorm?: number } {
    const { spec, replica } = this.o;
    setLearningRate(replica.optimizer, cmd.lr);
    // The reduced buffer is bit-identical on every rank, so every rank decides alike to skip.
    const { nonFinite, gradNorm } = replica.step.apply(this.grad, cmd.globalCount, replica.optimizer, {
      clipNorm: spec.optimizer.clipNorm,
      weightDecay: spec.optimizer.weightDecay,
      learningRate: cmd.lr,
    });
    this.applied(cmd, nonFinite);
    return { nonFinite, gradNorm };
  }

  private applied(cmd: StepCommand, nonFinite: boolean): void {
    if (nonFinite) this.o.log.warn('NaN or Inf in the reduced gradient; update skipped', { step: cmd.step });
    else this.o.replica.appliedStep = cmd.step;
  }
}
