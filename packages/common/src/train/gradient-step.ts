// The worker's step math: gradients of the SUM of per-sample losses over this rank's slice, written
// flat into the caller's buffer for the all-reduce (or added to it, one micro-batch at a time); then
// the reduced sum divided by the global sample count, clipped to a global norm and applied, with
// decoupled weight decay. Summing before dividing makes N ranks' update equal one process's on the
// whole batch, uneven or empty slices included (DESIGN §3.1); the norm is taken from the reduced
// buffer, which is bit-identical on every rank, so every rank clips and skips alike.
import * as tf from '@tensorflow/tfjs';
import type { LossFn } from '../models/losses.js';
import type { TrainableModel } from '../models/trainable.js';
import { parameterCount, parameterHash, readParametersAsync, writeParameters } from './parameters.js';

export interface StepResult {
  /** Sum of the per-sample losses over this rank's samples. */
  lossSum: number;
  count: number;
  /**
   * Seconds from issuing the backward pass until its gradients were in out, adding them included (on
   * WebGPU the device's work and the copy; on cpu and wasm, which compute synchronously, little more
   * than the copy); 0 for an empty slice.
   */
  readbackSeconds: number;
}

export interface ApplyOptions {
  /** Scale the mean gradient down to this global L2 norm when it is larger. */
  clipNorm?: number;
  /** Decoupled weight decay: w -= learningRate·weightDecay·w on variables of rank >= 2 (not biases or norm gains). */
  weightDecay?: number;
  /** This step's learning rate, which the weight decay is scaled by. */
  learningRate?: number;
}

export interface ApplyResult {
  /** The reduced gradient held NaN or Inf: nothing was applied. */
  nonFinite: boolean;
  /** Global L2 norm of the mean gradient before clipping; computed only when clipping. */
  gradNorm?: number;
  /** The gradient was scaled down to clipNorm. */
  clipped: boolean;
}

export class GradientStep {
  readonly variables: readonly tf.Variable[];
  /** Floats in a flattened gradient or weight buffer. */
  readonly size: number;
  private readonly named: { name: string; tensor: tf.Tensor }[];
  /** Which variables weight decay shrinks: matrices and embeddings, as AdamW and GPT-2 do. */
  readonly decays: readonly boolean[];
  /** Where each variable starts in a flattened buffer. */
  readonly offsets: readonly number[];
  /** The mean gradient on the host, uploaded once per variable; the reduced sum stays as it was. */
  private readonly mean: Float32Array;

  constructor(
    readonly model: TrainableModel,
    readonly loss: LossFn,
  ) {
    this.variables = model.variables();
    this.size = parameterCount(this.variables);
    let offset = 0;
    this.offsets = this.variables.map((v) => {
      const at = offset;
      offset += v.size;
      return at;
    });
    this.named = this.variables.map((v) => ({ name: v.name, tensor: v }));
    this.decays = this.variables.map((v) => v.rank >= 2);
    this.mean = new Float32Array(this.size);
  }

  /**
   * Gradients of the summed loss over this batch into out (length `size`), overwriting what it holds:
   * a step's first micro-batch needs no zeroed buffer.
   */
  computeAsync(x: tf.Tensor, y: tf.Tensor, out: Float32Array): Promise<StepResult> {
    return this.writeAsync(x, y, out, false);
  }

  /**
   * computeAsync, but adds the gradients to what out holds: k micro-batches accumulated into a zeroed
   * buffer give the gradient sum of their union, ready for one all-reduce.
   */
  accumulateAsync(x: tf.Tensor, y: tf.Tensor, out: Float32Array): Promise<StepResult> {
    return this.writeAsync(x, y, out, true);
  }

  /**
   * Reads back asynchronously on every backend, since WebGPU in Node cannot read synchronously. Each
   * variable's gradient lands in out as soon as it arrives, in any order: every slice is its own.
   */
  private async writeAsync(x: tf.Tensor, y: tf.Tensor, out: Float32Array, add: boolean): Promise<StepResult> {
    const count = this.checkBatch(x, y, out);
    if (count === 0) {
      if (!add) out.fill(0);
      return { lossSum: 0, count, readbackSeconds: 0 };
    }
    const { value, grads } = tf.tidy(() => this.gradients(x, y, count));
    // The backward pass is issued: from here the wait for its values, and adding them into out, is readback.
    const issued = performance.now();
    try {
      await Promise.all(
        grads.map(async (g, i) => {
          const data = (await g.data()) as Float32Array;
          const at = this.offsets[i];
          if (!add) out.set(data, at);
          else for (let j = 0; j < data.length; j++) out[at + j] += data[j];
        }),
      );
      const lossSum = (await value.data())[0];
      return { lossSum, count, readbackSeconds: (performance.now() - issued) / 1000 };
    } finally {
      tf.dispose([value, ...grads]);
    }
  }

  /**
   * Divides the all-reduced gradient sum by the global sample count, clips it, decays the weights and
   * applies the gradient with the optimizer; a sum holding NaN or Inf is not applied at all. One walk
   * over the sum checks it is finite, takes its norm and writes the mean that is uploaded (a clipped
   * step writes it again with its divisor), so the device divides nothing. A float32 quotient is the
   * same computed in float64 and rounded once, so the bits equal a division on the device.
   */
  apply(
    reducedSum: Float32Array,
    globalCount: number,
    optimizer: tf.Optimizer,
    options: ApplyOptions = {},
  ): ApplyResult {
    this.checkBuffer(reducedSum, 'reduced gradient');
    if (!Number.isInteger(globalCount) || globalCount <= 0) {
      throw new Error(
        `globalCount must be the positive number of samples in the global batch; got ${globalCount}. ` +
          `A step in which no rank had samples has nothing to apply`,
      );
    }
    const decay = options.weightDecay ?? 0;
    if (decay > 0 && !(options.learningRate !== undefined && options.learningRate >= 0)) {
      throw new Error(
        `weight decay ${decay} needs the step's learning rate (options.learningRate); got ${options.learningRate}`,
      );
    }
    const mean = this.mean;
    const count = Math.fround(globalCount);
    // globalNorm's sum, in the same walk: float64 in index order, so every rank gets the same norm.
    let squares = 0;
    for (let i = 0; i < reducedSum.length; i++) {
      const v = reducedSum[i];
      if (!Number.isFinite(v)) return { nonFinite: true, clipped: false };
      squares += v * v;
      mean[i] = v / count;
    }
    let gradNorm: number | undefined;
    let divisor = globalCount;
    if (options.clipNorm !== undefined) {
      gradNorm = Math.sqrt(squares) / globalCount;
      // Clipping folds into the division, so an unclipped step divides exactly as without clipping.
      if (gradNorm > options.clipNorm) {
        divisor = (globalCount * gradNorm) / options.clipNorm;
        const d = Math.fround(divisor);
        for (let i = 0; i < reducedSum.length; i++) mean[i] = reducedSum[i] / d;
      }
    }
    tf.tidy(() => {
      if (decay > 0) {
        const keep = tf.scalar(1 - (options.learningRate as number) * decay, 'float32');
        this.variables.forEach((v, i) => this.decays[i] && v.assign(tf.mul(v, keep)));
      }
      for (let i = 0; i < this.variables.length; i++) {
        const v = this.variables[i];
        // The view tensor lives only inside this tidy, so the next step may rewrite the mean.
        this.named[i].tensor = tf.tensor(mean.subarray(this.offsets[i], this.offsets[i] + v.size), v.shape, 'float32');
      }
      optimizer.applyGradients(this.named);
    });
    return { nonFinite: false, gradNorm, clipped: divisor !== globalCount };
  }

  /** All parameters, flattened in variable order (the rank-0 broadcast). */
  getWeightsAsync(out: Float32Array): Promise<void> {
    return readParametersAsync(this.variables, out);
  }

  setWeights(src: Float32Array): void {
    writeParameters(this.variables, src);
  }

  /** Hash of the current parameters, for the drift check. */
  async hashAsync(scratch: Float32Array = new Float32Array(this.size)): Promise<string> {
    await this.getWeightsAsync(scratch);
    return parameterHash(scratch);
  }

  private gradients(x: tf.Tensor, y: tf.Tensor, count: number): { value: tf.Scalar; grads: tf.Tensor[] } {
    const { value, grads } = tf.variableGrads(() => {
      const perSample = this.loss(y, this.model.predict(x, { training: true }));
      if (perSample.rank !== 1 || perSample.shape[0] !== count) {
        throw new Error(
          `the loss must return one value per sample, shape [${count}]; got shape [${perSample.shape.join(', ')}]. ` +
            `Return the losses before any mean or sum: the step sums them and divides by the global count`,
        );
      }
      return tf.sum(perSample) as tf.Scalar;
    }, this.variables as tf.Variable[]);
    // A variable the loss does not reach gets no entry; its gradient is zero.
    return { value, grads: this.variables.map((v) => grads[v.name] ?? tf.zerosLike(v)) };
  }

  private checkBatch(x: tf.Tensor, y: tf.Tensor, out: Float32Array): number {
    this.checkBuffer(out, 'gradient');
    const count = x.shape[0] ?? 0;
    if (y.shape[0] !== count) {
      throw new Error(`x holds ${count} samples but y holds ${y.shape[0]}; they must be the same batch`);
    }
    return count;
  }

  private checkBuffer(buffer: Float32Array, what: string): void {
    if (buffer.length !== this.size) {
      throw new Error(
        `${what} buffer holds ${buffer.length} floats; this model has ${this.size} parameters. ` +
          `Allocate new Float32Array(step.size) once and reuse it`,
      );
    }
  }
}

/**
 * L2 norm of a buffer, summed in float64 in index order: the same bits in give the same norm on every
 * rank. GradientStep.apply takes the same sum in its one walk over the reduced gradient.
 */
export function globalNorm(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return Math.sqrt(sum);
}
