// Public surface of @tfjs-ddp/coordinator.
export * from './coordinator.js';
export * from './errors.js';
export * from './early-stopping.js';
export * from './evaluation.js';
export * from './progress.js';
export * from './trace.js';
export * from './report/index.js';
export * from './checkpoints.js';
export * from './checkpoint-storage.js';
