// Reusable host buffers for one rank's slice of a batch: samples are gathered into them with no
// allocation per step, and only the tensors handed to the backend are created (and disposed) per step.
import { featureSize, gatherBatch, labelSize, type Dataset, type Tf } from '@tfjs-ddp/common';
import type * as tfjs from '@tensorflow/tfjs';

export class BatchBuffers {
  private x = new Float32Array(0);
  private y = new Float32Array(0);

  constructor(private readonly tf: Tf) {}

  /** Gathers `indices` of `ds` and returns x/y tensors shaped for the model; the caller disposes them. */
  tensors(ds: Dataset, indices: ArrayLike<number>): { x: tfjs.Tensor; y: tfjs.Tensor } {
    const n = indices.length;
    const f = featureSize(ds);
    const l = labelSize(ds);
    if (this.x.length < n * f) this.x = new Float32Array(n * f);
    if (this.y.length < n * l) this.y = new Float32Array(n * l);
    gatherBatch(ds, indices, this.x, this.y);
    // The tensors may alias the buffers (the cpu backend keeps the array it is given): dispose them before
    // the next call refills the buffers.
    const x = this.tf.tensor(this.x.subarray(0, n * f), [n, ...ds.featureShape], 'float32');
    const y = this.tf.tensor(this.y.subarray(0, n * l), [n, ...(ds.labelShape ?? [1])], 'float32');
    return { x, y };
  }
}

/** Contiguous sample indices [start, start + count) of an unshuffled split (evaluation). */
export function range(start: number, count: number): Int32Array {
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = start + i;
  return out;
}
