// The phases one training step is timed in, shared by the worker's histogram, the coordinator's
// trace and the run report, so all three name and order them the same way.

/** In the order a step runs them: `wait` is the idle time before the step command arrived. */
export const STEP_PHASES = ['wait', 'data', 'compute', 'readback', 'allreduce', 'apply'] as const;

export type StepPhase = (typeof STEP_PHASES)[number];

/** Histogram buckets for step and phase durations in seconds: 0.5 ms to 2 minutes. */
export const STEP_SECONDS_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
];
