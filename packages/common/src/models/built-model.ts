// What building a job's model yields: the model with the loss it trains on and the metrics worth
// reporting for it. Its own module, so every builder (zoo, layers JSON, modules, the transformer)
// returns it without importing the dispatcher that picks between them.
import type { LossFn, LossName } from './losses.js';
import type { MetricName } from './metrics.js';
import type { TrainableModel } from './trainable.js';

export interface BuiltModel {
  model: TrainableModel;
  /** Per-sample losses. */
  loss: LossFn;
  /** The built-in loss's name, or 'custom' for a module's own loss. */
  lossName: LossName | 'custom';
  metrics: MetricName[];
  /** A line for the logs saying what was built, where there is more to say than the parameter count. */
  description?: string;
}
