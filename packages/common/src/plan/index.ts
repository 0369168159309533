// Public surface of the data plan: which samples each rank trains on at every step.
export * from './data-plan.js';
export * from './permutation.js';
export * from './slices.js';
