// The names a job spec may give a loss, a metric or an early-stopping monitor, defined once: the job
// schema validates them, and the models' losses and metrics are keyed by them.

export const LOSS_NAMES = [
  'mse',
  'binaryCrossentropy',
  'sparseCategoricalCrossentropy',
  'categoricalCrossentropy',
] as const;
export type LossName = (typeof LOSS_NAMES)[number];

export const METRIC_NAMES = ['accuracy', 'precision', 'recall', 'f1'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** Metrics defined for binary 0/1 labels only (one sigmoid output). */
export const BINARY_ONLY_METRICS: ReadonlySet<string> = new Set<MetricName>(['precision', 'recall', 'f1']);

type Monitored = 'loss' | MetricName;
export type Monitor = Monitored | `val_${Monitored}`;

/** What early stopping may watch: the loss or a metric, on the training or the validation set. */
export const MONITORS = (['loss', ...METRIC_NAMES] as const).flatMap((m) => [m, `val_${m}` as const]) as [
  Monitor,
  ...Monitor[],
];
