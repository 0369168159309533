// The one model shape the training step sees, whether the model is a tfjs-layers model or a custom
// module's plain variables with a predict function (a training loop with explicit gradients).
// The variable order fixed here is the layout of every flattened gradient and weight buffer.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '../write-file-atomic.js';
import { fileSaveHandler, saveNamedVariables } from './file-io.js';

export interface PredictOptions {
  /** True inside a training step: layers such as dropout behave as in training. */
  training?: boolean;
}

export interface TrainableModel {
  readonly kind: 'layers' | 'variables';
  /** Trainable variables, always in the same order. */
  variables(): tf.Variable[];
  predict(x: tf.Tensor, options?: PredictOptions): tf.Tensor;
  /** Writes the model in TensorFlow.js format (model.json + weights) into dir. */
  save(dir: string): Promise<void>;
  dispose(): void;
}

export class LayersTrainableModel implements TrainableModel {
  readonly kind = 'layers';
  private readonly vars: tf.Variable[];

  constructor(readonly model: tf.LayersModel) {
    this.vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  variables(): tf.Variable[] {
    return this.vars;
  }

  predict(x: tf.Tensor, options: PredictOptions = {}): tf.Tensor {
    return this.model.apply(x, { training: options.training ?? false }) as tf.Tensor;
  }

  async save(dir: string): Promise<void> {
    await this.model.save(fileSaveHandler(dir));
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** What a custom model module's createModel may return instead of a tf.LayersModel. */
export interface VariablesModelDefinition {
  /** Named variables (names become the saved weight names) or a list (saved as variable_0, variable_1, ...). */
  variables: Record<string, tf.Variable> | tf.Variable[];
  predict(x: tf.Tensor, options?: PredictOptions): tf.Tensor;
  dispose?(): void;
}

/**
 * Where a variables model came from, saved beside its weights as module.json: the params and seed its
 * module rebuilds it with. The module itself must be named again by whoever loads it (see persist.ts).
 */
export interface ModuleSource {
  /** Absolute path of the ES module that wrote the model; for people to read, never imported from here. */
  module: string;
  params: Record<string, unknown>;
  seed: number;
}

export const VARIABLES_FORMAT = 'tfjs-ddp-variables';
export const MODULE_JSON = 'module.json';

export class VariablesTrainableModel implements TrainableModel {
  readonly kind = 'variables';
  readonly names: string[];
  private readonly vars: tf.Variable[];

  constructor(
    private readonly definition: VariablesModelDefinition,
    readonly source: ModuleSource,
  ) {
    const entries = Array.isArray(definition.variables)
      ? definition.variables.map((v, i) => [`variable_${i}`, v] as const)
      : Object.entries(definition.variables);
    this.names = entries.map(([name]) => name);
    this.vars = entries.map(([, v]) => v);
  }

  variables(): tf.Variable[] {
    return this.vars;
  }

  predict(x: tf.Tensor, options: PredictOptions = {}): tf.Tensor {
    return this.definition.predict(x, options);
  }

  async save(dir: string): Promise<void> {
    await writeFileAtomic(
      join(dir, MODULE_JSON),
      JSON.stringify({ format: VARIABLES_FORMAT, ...this.source }, null, 2),
    );
    await saveNamedVariables(dir, this, { format: VARIABLES_FORMAT });
  }

  dispose(): void {
    if (this.definition.dispose) this.definition.dispose();
    else this.vars.forEach((v) => v.dispose());
  }
}
