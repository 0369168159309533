// Public surface of the per-step training math a worker runs.
export * from './gradient-step.js';
export * from './parameters.js';
export * from './optimizers.js';
export * from './optimizer-state.js';
export * from './evaluate.js';
export * from './sharded-update.js';
export * from './sharded-state.js';
