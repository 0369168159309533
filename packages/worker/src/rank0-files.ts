// What rank 0 sends the coordinator as files (artifacts.ts chunks them): its replica state for a
// checkpoint, and the trained model with predictions of the first test samples and, for a
// one-feature regression, the fitted points the report draws.
import {
  type OptimizerState,
  featureSize,
  labelSize,
  type JobSpec,
  type NatsConnection,
  type Report,
  type Tf,
  type BuiltModel,
} from '@tfjs-ddp/common';
import type { Tensor } from '@tensorflow/tfjs';
import { shipFiles, shipModel, type Shipment } from './artifacts.js';
import { range, type BatchBuffers } from './batch.js';
import type { JobData } from './job-data.js';
import type { Replica } from './replica.js';

/** The saved report, less what the dispatcher adds (job, worker). */
export type SavedReport = Omit<Extract<Report, { type: 'saved' }>, 'job' | 'workerId'>;

export interface Rank0FilesOptions {
  nc: NatsConnection;
  /** The report subject the chunks go to. */
  subject: string;
  tf: Tf;
  spec: JobSpec;
  workerId: string;
  built: BuiltModel;
  data: JobData;
  replica: Replica;
  batches: BatchBuffers;
}

export class Rank0Files {
  constructor(private readonly o: Rank0FilesOptions) {}

  /** The replica state as state.bin, for checkpoint command `id` of generation `gen`. */
  async checkpoint(id: number, gen: number, gathered?: OptimizerState): Promise<SavedReport> {
    const bytes = await this.o.replica.encode(gathered);
    await shipFiles(this.o.nc, this.shipment(id, gen), [{ name: 'state.bin', data: bytes }]);
    return { type: 'saved', gen, id, files: [{ name: 'state.bin', bytes: bytes.length }], predictions: [] };
  }

  /** The model's files for save command `id` of generation `gen`, with predictions of the first `predictSamples` test samples. */
  async save(id: number, gen: number, predictSamples: number): Promise<SavedReport> {
    const { nc, tf, built, data, batches } = this.o;
    const files = await shipModel(nc, this.shipment(id, gen), built.model);
    const predictions: number[][] = [];
    const test = data.test;
    if (test && predictSamples > 0) {
      const n = Math.min(predictSamples, test.count);
      const { x, y } = batches.tensors(test, range(0, n));
      let pred: Tensor | undefined;
      try {
        pred = tf.tidy(() => tf.reshape(built.model.predict(x, { training: false }), [n, -1]));
        predictions.push(...((await pred.array()) as number[][]));
      } finally {
        tf.dispose(pred ? [x, y, pred] : [x, y]);
      }
    }
    return { type: 'saved', gen, id, files, predictions, fit: await this.regressionFit() };
  }

  /** Files for command `id` of generation `gen`, to the coordinator. */
  private shipment(id: number, gen: number): Shipment {
    return { subject: this.o.subject, job: this.o.spec.name, workerId: this.o.workerId, gen, id };
  }

  /** A one-feature regression (mse): up to 200 test (else train) points and their predictions, for the report. */
  private async regressionFit(): Promise<[number, number, number][] | undefined> {
    const { tf, built, data, batches } = this.o;
    const ds = data.test ?? data.train;
    const oneFeature = featureSize(ds) === 1 && labelSize(ds) === 1;
    if (built.lossName !== 'mse' || !oneFeature || ds.count === 0) return undefined;
    const n = Math.min(200, ds.count);
    const idx = new Int32Array(n).map((_, i) => Math.floor((i * ds.count) / n));
    const { x, y } = batches.tensors(ds, idx);
    let pred: Tensor | undefined;
    try {
      pred = tf.tidy(() => tf.reshape(built.model.predict(x, { training: false }), [n]));
      const [xs, ys, ps] = await Promise.all([x.data(), y.data(), pred.data()]);
      return Array.from(idx, (_, i) => [xs[i], ys[i], ps[i]] as [number, number, number]);
    } finally {
      tf.dispose(pred ? [x, y, pred] : [x, y]);
    }
  }
}
