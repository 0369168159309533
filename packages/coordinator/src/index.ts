// Public surface of @tfjs-ddp/coordinator.
export * from './coordinator.js';
export type { EpochSummary, GenerationRecord, JobSummary } from './summary.js';
export * from './errors.js';
export * from './early-stopping.js';
export { addSums, emptySums, metricsFromSums, type EvalSums } from './evaluation.js';
export * from './progress.js';
export * from './job-annotations.js';
export * from './timeline/index.js';
export * from './report/index.js';
export * from './checkpoints.js';
export * from './checkpoint-storage.js';
export * from './committed-ranges.js';
