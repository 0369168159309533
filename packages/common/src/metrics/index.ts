// Public surface of the metrics: the coordinator's and the workers' Prometheus registries, the
// observer that counts dropped messages, the step phases, bus bandwidth and the /metrics server.
export * from './phases.js';
export * from './bandwidth.js';
export * from './message-metrics.js';
export * from './worker-metrics.js';
export * from './coordinator-metrics.js';
export * from './process-metrics.js';
export * from './exposition.js';
export * from './metrics-server.js';
export type { Registry as MetricsRegistry } from 'prom-client';
