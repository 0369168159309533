// The worker's step math: gradients of the SUM of per-sample losses over this rank's slice, written
// flat into the caller's buffer for the all-reduce; then the reduced sum divided by the global sample
// count and applied. Summing before dividing makes N ranks' update equal one process's on the whole
// batch, uneven or empty slices included (DESIGN §3.1).
import * as tf from '@tensorflow/tfjs';
import type { LossFn } from '../models/losses.js';
import type { TrainableModel } from '../models/trainable.js';
import { parameterCount, parameterHash, readParameters, readParametersAsync, writeParameters } from './parameters.js';

export interface StepResult {
  /** Sum of the per-sample losses over this rank's samples. */
  lossSum: number;
  count: number;
}

export class GradientStep {
  readonly variables: readonly tf.Variable[];
  /** Floats in a flattened gradient or weight buffer. */
  readonly size: number;
  private readonly offsets: number[];
  private readonly named: { name: string; tensor: tf.Tensor }[];

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
  }

  /** Gradients of the summed loss into out (length `size`), read back synchronously (cpu, wasm, tensorflow). */
  compute(x: tf.Tensor, y: tf.Tensor, out: Float32Array): StepResult {
    const count = this.checkBatch(x, y, out);
    if (count === 0) {
      out.fill(0);
      return { lossSum: 0, count };
    }
    return tf.tidy(() => {
      const { value, grads } = this.gradients(x, y, count);
      for (let i = 0; i < grads.length; i++) out.set(grads[i].dataSync() as Float32Array, this.offsets[i]);
      return { lossSum: value.dataSync()[0], count };
    });
  }

  /**
   * compute for backends that only read back asynchronously (WebGPU in Node). onFilled(from, to) fires
   * as each variable's slice of out lands, so sending can start before the last one is read.
   */
  async computeAsync(
    x: tf.Tensor,
    y: tf.Tensor,
    out: Float32Array,
    onFilled?: (from: number, to: number) => void,
  ): Promise<StepResult> {
    const count = this.checkBatch(x, y, out);
    if (count === 0) {
      out.fill(0);
      onFilled?.(0, this.size);
      return { lossSum: 0, count };
    }
    const { value, grads } = tf.tidy(() => this.gradients(x, y, count));
    try {
      await Promise.all(
        grads.map(async (g, i) => {
          const data = (await g.data()) as Float32Array;
          out.set(data, this.offsets[i]);
          onFilled?.(this.offsets[i], this.offsets[i] + data.length);
        }),
      );
      return { lossSum: (await value.data())[0], count };
    } finally {
      tf.dispose([value, ...grads]);
    }
  }

  /** Divides the all-reduced gradient sum by the global sample count and applies it with the optimizer. */
  apply(reducedSum: Float32Array, globalCount: number, optimizer: tf.Optimizer): void {
    this.checkBuffer(reducedSum, 'reduced gradient');
    if (!Number.isInteger(globalCount) || globalCount <= 0) {
      throw new Error(
        `globalCount must be the positive number of samples in the global batch; got ${globalCount}. ` +
          `A step in which no rank had samples has nothing to apply`,
      );
    }
    tf.tidy(() => {
      const count = tf.scalar(globalCount, 'float32');
      for (let i = 0; i < this.variables.length; i++) {
        const v = this.variables[i];
        // The view tensor lives only inside this tidy, so the caller may reuse reducedSum afterwards.
        const sum = tf.tensor(reducedSum.subarray(this.offsets[i], this.offsets[i] + v.size), v.shape, 'float32');
        this.named[i].tensor = tf.div(sum, count);
      }
      optimizer.applyGradients(this.named);
    });
  }

  /** All parameters, flattened in variable order (the rank-0 broadcast). */
  getWeights(out: Float32Array): void {
    readParameters(this.variables, out);
  }

  getWeightsAsync(out: Float32Array): Promise<void> {
    return readParametersAsync(this.variables, out);
  }

  setWeights(src: Float32Array): void {
    writeParameters(this.variables, src);
  }

  /** Hash of the current parameters, for the drift check. */
  hash(scratch: Float32Array = new Float32Array(this.size)): string {
    this.getWeights(scratch);
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
